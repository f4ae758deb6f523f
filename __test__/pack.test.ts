/**
 * The npm packages as a release publishes them: `scripts/pack.sh` packs the main package and the
 * linux-x64-gnu platform package offline; both install offline into an empty project whose PATH
 * has node and npm but no cargo or rustc, and `npx cstor` runs from there, its loader finding the
 * binary in the platform package.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Storage } from '../ts/index'
import { main, repo, storageConf } from './helpers'

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-pack-'))
afterAll(() => fs.rmSync(work, { recursive: true, force: true }))

const version = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).version
const tarballs = path.join(work, 'tarballs')
const mainTgz = path.join(tarballs, `cstor-${version}.tgz`)
const platformTgz = path.join(tarballs, `cstor-linux-x64-gnu-${version}.tgz`)

/** A package's package.json, read from its tarball. */
function packageJsonOf(tgz: string): Record<string, unknown> {
  return JSON.parse(execFileSync('tar', ['-xzOf', tgz, 'package/package.json'], { encoding: 'utf8' }))
}

const filesOf = (tgz: string) => execFileSync('tar', ['-tzf', tgz], { encoding: 'utf8' }).trim().split('\n')

/** A bin directory with only what installing and running needs: node, npm, npx and sh. */
function minimalPath(): string {
  const bin = path.join(work, 'bin')
  fs.mkdirSync(bin)
  for (const tool of ['node', 'npm', 'npx', 'sh']) {
    const found = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim()
    fs.symlinkSync(found, path.join(bin, tool))
  }
  return bin
}

describe('npm pack and install', () => {
  beforeAll(() => {
    execFileSync('bash', [path.join(repo, 'scripts', 'pack.sh'), tarballs], { stdio: 'pipe' })
  })

  it('packs the main package and the platform package offline', () => {
    const platform = packageJsonOf(platformTgz)
    expect(platform).toMatchObject({ name: 'cstor-linux-x64-gnu', version, os: ['linux'], cpu: ['x64'], libc: ['glibc'], main: 'cstor.linux-x64-gnu.node' })
    expect(filesOf(platformTgz)).toContain('package/cstor.linux-x64-gnu.node')
    const pkg = packageJsonOf(mainTgz)
    expect(pkg.optionalDependencies).toEqual({ 'cstor-linux-x64-gnu': version })
    const files = filesOf(mainTgz)
    expect(files).toEqual(expect.arrayContaining(['package/index.js', 'package/index.d.ts', 'package/dist/index.js', 'package/dist/cli/main.js']))
    expect(files.filter((f) => f.endsWith('.node'))).toEqual([])
    // Packing leaves the repository as it was.
    expect(JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).optionalDependencies).toBeUndefined()
  })

  it('installs both offline where there is no Rust toolchain, and npx cstor reads a store', async () => {
    const project = path.join(work, 'project')
    fs.mkdirSync(project)
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'pack-probe', private: true }))
    const env = {
      HOME: project,
      PATH: minimalPath(),
      CONTAINERS_STORAGE_CONF: storageConf,
      npm_config_cache: path.join(work, 'npm-cache'), // empty: nothing can come from an earlier download
      npm_config_update_notifier: 'false',
    }
    const run = (command: string, args: string[]) => spawnSync(command, args, { cwd: project, env, encoding: 'utf8' })
    expect(run('sh', ['-c', 'command -v cargo || command -v rustc']).status).not.toBe(0)

    const install = run('npm', ['install', '--offline', '--no-audit', '--no-fund', mainTgz, platformTgz])
    expect(install.status, install.stderr).toBe(0)
    expect(fs.readdirSync(path.join(project, 'node_modules', 'cstor')).filter((f) => f.endsWith('.node'))).toEqual([])

    const list = run('npx', ['--offline', 'cstor', 'image', 'list', '--root', main.root, '--runroot', main.runroot, '--json'])
    expect(list.status, list.stderr).toBe(0)
    const storage = await Storage.open(main)
    const expected = (await storage.listImages()).map((i) => i.id)
    storage.close()
    expect(JSON.parse(list.stdout).map((i: { id: string }) => i.id)).toEqual(expected)

    const verify = run('npx', ['--offline', 'cstor', 'verify', '--root', main.root, '--image', 'localhost/app:1'])
    expect(verify.status, verify.stderr).toBe(0)
    expect(verify.stdout).toContain('clean')
  })
})
