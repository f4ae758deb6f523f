/**
 * The npm packages as a release publishes them: `scripts/pack.sh` packs the main package and one
 * platform package per target offline; every binary needs no glibc newer than 2.28; the main
 * package and this machine's platform package install offline into an empty project whose PATH has
 * node and npm but no cargo or rustc, and `npx cstor` runs from there, its loader finding the binary
 * in the platform package. When no binary loads (the package removed, the arm64 binary in the x64
 * package), the API throws `EUNSUPPORTED` and the CLI says why in one line, exit 1.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Storage } from '../ts/index'
import { main, repo, storageConf } from './helpers'
import { PLATFORMS, emptyProject, extractFrom, filesOf, installOffline, minimalPath, packAll, packageJsonOf, version, type Packed } from './packages'

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-pack-'))
afterAll(() => fs.rmSync(work, { recursive: true, force: true }))

/** What each platform package declares (npm installs it only where os, cpu and libc match) and its ELF machine. */
const EXPECTED = {
  'linux-x64-gnu': { os: ['linux'], cpu: ['x64'], libc: ['glibc'], machine: 'Advanced Micro Devices X86-64' },
  'linux-arm64-gnu': { os: ['linux'], cpu: ['arm64'], libc: ['glibc'], machine: 'AArch64' },
} as const

/** The oldest glibc the binaries must load on (RHEL 8); docs/compatibility.md. */
const GLIBC_FLOOR = [2, 28]

/** The newest `GLIBC_x.y` symbol version an ELF file needs, per `objdump -T`. */
function newestGlibc(file: string): number[] {
  const versions = [...execFileSync('objdump', ['-T', file], { encoding: 'utf8', maxBuffer: 1 << 26 }).matchAll(/GLIBC_(\d+)\.(\d+)/g)]
  return versions.map((m) => [Number(m[1]), Number(m[2])]).reduce((a, b) => (b[0] > a[0] || (b[0] === a[0] && b[1] > a[1]) ? b : a), [0, 0])
}

let packed: Packed
beforeAll(() => {
  packed = packAll(path.join(work, 'tarballs'))
}, 900_000)

describe('npm pack', () => {
  it('packs one platform package per napi target, named in the main package optionalDependencies', () => {
    const napi = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).napi
    expect(napi.targets).toEqual(['x86_64-unknown-linux-gnu', 'aarch64-unknown-linux-gnu'])
    expect(fs.readdirSync(path.join(repo, 'npm')).sort()).toEqual([...PLATFORMS].sort())
    for (const platform of PLATFORMS) {
      const { machine: _, ...declared } = EXPECTED[platform]
      expect(packageJsonOf(packed.platform[platform])).toMatchObject({ name: `cstor-${platform}`, version, ...declared, main: `cstor.${platform}.node` })
      expect(filesOf(packed.platform[platform]).sort()).toEqual([`package/README.md`, `package/cstor.${platform}.node`, 'package/package.json'].sort())
    }
    const pkg = packageJsonOf(packed.main)
    expect(pkg.optionalDependencies).toEqual(Object.fromEntries(PLATFORMS.map((p) => [`cstor-${p}`, version])))
    const files = filesOf(packed.main)
    expect(files).toEqual(expect.arrayContaining(['package/index.js', 'package/index.d.ts', 'package/dist/index.js', 'package/dist/cli/main.js']))
    expect(files.filter((f) => f.endsWith('.node'))).toEqual([])
    // Packing leaves the repository as it was.
    expect(JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).optionalDependencies).toBeUndefined()
  })

  it('builds every binary for its architecture, needing no glibc newer than 2.28', () => {
    for (const platform of PLATFORMS) {
      const binary = extractFrom(packed.platform[platform], `cstor.${platform}.node`, path.join(work, `cstor.${platform}.node`))
      expect(execFileSync('readelf', ['-h', binary], { encoding: 'utf8' })).toMatch(new RegExp(`Machine:\\s+${EXPECTED[platform].machine}\n`))
      const newest = newestGlibc(binary)
      console.log(`${platform}: newest glibc symbol version GLIBC_${newest.join('.')}`)
      expect(newest[0] * 1000 + newest[1], `${platform} needs GLIBC_${newest.join('.')}`).toBeLessThanOrEqual(GLIBC_FLOOR[0] * 1000 + GLIBC_FLOOR[1])
    }
  })
})

describe('npm install', () => {
  const project = path.join(work, 'project')
  let env: NodeJS.ProcessEnv
  const run = (command: string, args: string[]) => spawnSync(command, args, { cwd: project, env, encoding: 'utf8' })
  const npxCstor = (args: string[]) => run('npx', ['--offline', 'cstor', ...args, '--root', main.root, '--runroot', main.runroot])
  const platformDir = () => path.join(project, 'node_modules', 'cstor-linux-x64-gnu')

  beforeAll(() => {
    emptyProject(project)
    env = { HOME: project, PATH: minimalPath(work), CONTAINERS_STORAGE_CONF: storageConf }
  })

  it('installs offline where there is no Rust toolchain, and npx cstor reads a store', async () => {
    expect(run('sh', ['-c', 'command -v cargo || command -v rustc']).status).not.toBe(0)
    // The arm64 package, named in optionalDependencies but not given, is skipped: npm cannot
    // fetch it offline and it is for another CPU.
    const install = installOffline(project, [packed.main, packed.platform['linux-x64-gnu']], env)
    expect(install.status, install.stderr).toBe(0)
    expect(fs.readdirSync(path.join(project, 'node_modules', 'cstor')).filter((f) => f.endsWith('.node'))).toEqual([])
    expect(fs.existsSync(path.join(project, 'node_modules', 'cstor-linux-arm64-gnu'))).toBe(false)

    const list = npxCstor(['image', 'list', '--json'])
    expect(list.status, list.stderr).toBe(0)
    const storage = await Storage.open(main)
    const expected = (await storage.listImages()).map((i) => i.id)
    storage.close()
    expect(JSON.parse(list.stdout).map((i: { id: string }) => i.id)).toEqual(expected)

    const verify = npxCstor(['verify', '--image', 'localhost/app:1'])
    expect(verify.status, verify.stderr).toBe(0)
    expect(verify.stdout).toContain('clean')
  })

  /** The CLI's and the API's failure with the binary as it is now in the project. */
  function failure() {
    const cli = npxCstor(['image', 'list'])
    const api = run('node', [
      '-e',
      `require('cstor').Storage.open(${JSON.stringify(main)}).then(
        () => console.log('opened'),
        (e) => console.log(JSON.stringify({ code: e.code, unsupported: e instanceof require('cstor').UnsupportedError, message: e.message })))`,
    ])
    expect(api.status, api.stderr).toBe(0)
    return { cli, api: JSON.parse(api.stdout) as { code: string; unsupported: boolean; message: string } }
  }

  /** One line: what this machine is, the package the loader wanted, the reason; never napi's text. */
  function expectOneLine(cli: { status: number | null; stdout: string; stderr: string }, reason: RegExp) {
    expect(cli.status).toBe(1)
    expect(cli.stdout).toBe('')
    const lines = cli.stderr.trimEnd().split('\n')
    console.log(cli.stderr.trimEnd())
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^cstor: cannot load cstor's native binary, package cstor-linux-x64-gnu \(this system: linux x64 glibc \d+\.\d+\): /)
    expect(lines[0]).toMatch(reason)
    expect(lines[0]).toMatch(/\(EUNSUPPORTED\)$/)
    expect(lines[0]).not.toMatch(/Cannot find native binding|npm has a bug/)
  }

  it('says in one line that the arm64 binary in the x64 package is built for arm64', () => {
    const slot = path.join(platformDir(), 'cstor.linux-x64-gnu.node')
    const x64 = fs.readFileSync(slot)
    extractFrom(packed.platform['linux-arm64-gnu'], 'cstor.linux-arm64-gnu.node', slot)
    try {
      const { cli, api } = failure()
      expectOneLine(cli, /cstor\.linux-x64-gnu\.node is built for arm64, this machine is x64/)
      expect(api).toMatchObject({ code: 'EUNSUPPORTED', unsupported: true })
      expect(api.message).toContain('is built for arm64')
    } finally {
      fs.writeFileSync(slot, x64)
    }
  })

  it('says in one line that the platform package is not installed', () => {
    fs.rmSync(platformDir(), { recursive: true })
    const { cli, api } = failure()
    expectOneLine(cli, /the package cstor-linux-x64-gnu is not installed/)
    expect(api).toMatchObject({ code: 'EUNSUPPORTED', unsupported: true })
    // --help needs no binary.
    expect(run('npx', ['--offline', 'cstor', '--help']).status).toBe(0)
  })
})
