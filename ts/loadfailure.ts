/**
 * Why the native binary did not load, in one line. napi's generated loader throws "Cannot find
 * native binding. npm has a bug related to optional dependencies…" whatever happened, and hides
 * the real cause a few `cause`s deep (napi-rs issue 2934, npm/cli issue 4828): a user on Debian 11
 * saw that text when the binary needed a newer glibc. This module names what this machine is
 * (platform, architecture, libc), which package the loader wanted, and the reason: a platform
 * without a prebuilt binary, the package not installed, a binary of another architecture, or the
 * `GLIBC_2.xx` symbol version the system's glibc lacks.
 */
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { UnsupportedError } from './errors.js'

/** Rust's architecture names in `napi.targets` triples, as Node (and napi's package names) spell them. */
const NODE_ARCH: Record<string, string> = { x86_64: 'x64', aarch64: 'arm64' }

/** ELF `e_machine` values, as Node's `process.arch` spells them. */
const ELF_MACHINE: Record<number, string> = { 62: 'x64', 183: 'arm64' }

interface Libc {
  /** napi's suffix of a Linux package name. */
  abi: 'gnu' | 'musl'
  /** How a person would say it: `glibc 2.31`, `musl`. */
  found: string
}

/** The C library this Node runs on: Node's report states the glibc version, and only on glibc. */
function libc(): Libc {
  const header = process.report.getReport() as { header?: { glibcVersionRuntime?: string } }
  const glibc = header.header?.glibcVersionRuntime
  return glibc ? { abi: 'gnu', found: `glibc ${glibc}` } : { abi: 'musl', found: 'musl' }
}

/** napi's platform name of a target triple: `aarch64-unknown-linux-gnu` → `linux-arm64-gnu`. */
function platformOf(triple: string): string {
  const [arch = '', , os = '', abi] = triple.split('-')
  return [os, NODE_ARCH[arch] ?? arch, abi].filter(Boolean).join('-')
}

/** Every message down an error's `cause` chain, outermost first. */
function messages(err: unknown): string[] {
  const found: string[] = []
  for (let e = err; e instanceof Error && found.length < 32; e = e.cause) found.push(e.message)
  return found
}

/** What is wrong with `file` as a binary for this machine's architecture, if anything. */
function architectureProblem(file: string): string | undefined {
  const header = Buffer.alloc(20)
  try {
    const fd = fs.openSync(file, 'r')
    try {
      fs.readSync(fd, header, 0, header.length, 0)
    } finally {
      fs.closeSync(fd)
    }
  } catch {
    return undefined // unreadable: the loader's own message says more
  }
  if (header.toString('latin1', 0, 4) !== '\x7fELF') return `${file} is not an ELF binary`
  const machine = header.readUInt16LE(18)
  const arch = ELF_MACHINE[machine] ?? `ELF machine ${machine}`
  return arch === process.arch ? undefined : `${file} is built for ${arch}, this machine is ${process.arch}`
}

/** The files the loader tries for this platform: the one beside it (a build), then the package's. */
function candidates(loader: string, binaryName: string, platform: string): string[] {
  const beside = path.join(path.dirname(loader), `${binaryName}.${platform}.node`)
  const found = fs.existsSync(beside) ? [beside] : []
  try {
    found.push(createRequire(loader).resolve(`${binaryName}-${platform}`))
  } catch {
    // not installed: said below when nothing else was found
  }
  return found
}

/** The reason a candidate binary did not load, from its header and the loader's errors. */
function reasonFor(file: string, errors: string[]): string {
  const architecture = architectureProblem(file)
  if (architecture) return architecture
  const glibc = errors.map((m) => /version `(GLIBC_[0-9.]+)' not found/.exec(m)).find(Boolean)
  if (glibc) return `${file} needs a newer glibc: ${glibc[1]} not found`
  return errors.find((m) => m.includes(file)) ?? errors[errors.length - 1] ?? 'unknown error'
}

/**
 * The typed error for a failed load of the generated loader at `loader`: `EUNSUPPORTED`, its
 * message one line, the loader's own error kept as `cause`.
 */
export function loadFailure(err: unknown, loader: string): UnsupportedError {
  const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(loader), 'package.json'), 'utf8')) as {
    napi: { binaryName: string; targets: string[] }
  }
  const { binaryName, targets } = pkg.napi
  const c = process.platform === 'linux' ? libc() : undefined
  const platform = [process.platform, process.arch, c?.abi].filter(Boolean).join('-')
  const here = `this system: ${[process.platform, process.arch, c?.found].filter(Boolean).join(' ')}`
  const shipped = targets.map(platformOf)
  const message = (() => {
    if (!shipped.includes(platform)) {
      return `${binaryName} has no prebuilt binary for ${platform} (${here}); there are binaries for ${shipped.join(', ')}`
    }
    const expected = `${binaryName}-${platform}`
    const files = candidates(loader, binaryName, platform)
    const reason =
      files.length === 0
        ? `the package ${expected} is not installed (installed with --omit=optional, or on another platform?)`
        : reasonFor(files[files.length - 1], messages(err))
    return `cannot load ${binaryName}'s native binary, package ${expected} (${here}): ${reason}`
  })()
  return new UnsupportedError('EUNSUPPORTED', message.replace(/\s*\n\s*/g, ' '), { cause: err })
}
