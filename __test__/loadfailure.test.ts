/**
 * The loader-failure message for the cases no installed package on this machine can produce
 * (pack.test.ts and platforms.test.ts cover a removed package, another architecture and a newer
 * glibc end to end): a platform cstor ships no binary for, and a damaged binary. Each runs
 * `loadFailure` on a package directory of its own, with the error Node really throws.
 */
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { UnsupportedError } from '../ts/index'
import { loadFailure } from '../ts/loadfailure'

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-loadfailure-'))
afterAll(() => fs.rmSync(work, { recursive: true, force: true }))

const glibc = (process.report.getReport() as { header: { glibcVersionRuntime: string } }).header.glibcVersionRuntime

/** A package root with a loader path and the given `napi.targets`; the loader need not exist. */
function packageWith(name: string, targets: string[]): string {
  const dir = path.join(work, name)
  fs.mkdirSync(dir)
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'cstor', napi: { binaryName: 'cstor', targets } }))
  return path.join(dir, 'index.js')
}

/** What Node throws when it requires `file`. */
function requireError(file: string): unknown {
  try {
    createRequire(file)(file)
  } catch (err) {
    return err
  }
  throw new Error(`${file} loaded`)
}

describe('loadFailure', () => {
  it('names the platform and the binaries there are when cstor ships none for this one', () => {
    const loader = packageWith('elsewhere', ['aarch64-unknown-linux-gnu', 'x86_64-unknown-linux-musl'])
    const error = loadFailure(requireError(loader), loader)
    expect(error).toBeInstanceOf(UnsupportedError)
    expect(error.code).toBe('EUNSUPPORTED')
    expect(error.message).toBe(
      `cstor has no prebuilt binary for linux-x64-gnu (this system: linux x64 glibc ${glibc}); there are binaries for linux-arm64-gnu, linux-x64-musl`,
    )
  })

  it('says a binary that is no ELF file is not one (a truncated or damaged download)', () => {
    const loader = packageWith('damaged', ['x86_64-unknown-linux-gnu'])
    const binary = path.join(path.dirname(loader), 'cstor.linux-x64-gnu.node')
    fs.writeFileSync(binary, '<html>502 Bad Gateway</html>\n')
    const error = loadFailure(requireError(binary), loader)
    expect(error.message).toBe(
      `cannot load cstor's native binary, package cstor-linux-x64-gnu (this system: linux x64 glibc ${glibc}): ${binary} is not an ELF binary`,
    )
    expect(error.message).not.toContain('\n')
  })
})
