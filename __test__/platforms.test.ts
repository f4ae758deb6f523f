/**
 * The packed binaries where podman users run Node, not only on this machine:
 * - Debian 11 (glibc 2.31, the class of Ubuntu 20.04), a minbase userland with this machine's Node
 *   copied in: the tarballs install offline, `npx cstor image list --json` and a bit-exact
 *   `layer export` read a fixture store bind-mounted in; a binary that needs a newer glibc gives
 *   the one-line `GLIBC_2.xx not found` error.
 * - arm64: npm installs the arm64 package (`--cpu=arm64`), and Debian's arm64 Node runs it under
 *   qemu-user (`qemu-aarch64-static -L`; this machine has no binfmt_misc): `image list` and a
 *   bit-exact `layer export`.
 * Userlands come from __test__/fixtures/build-userland.sh (cached). Runs as root (chroot, mounts).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Storage, type Layer } from '../ts/index'
import { fixtures, main, repo } from './helpers'
import { emptyProject, packAll, type Packed } from './packages'

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-platforms-'))
afterAll(() => fs.rmSync(work, { recursive: true, force: true }))

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`
const userland = (name: string) =>
  execFileSync('bash', [path.join(repo, '__test__', 'fixtures', 'build-userland.sh'), name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim()

let packed: Packed
let imageIds: string[]
/** The top layer of localhost/app:1: whiteouts, an opaque directory, hardlinks, symlinks. */
let layer: Layer
beforeAll(async () => {
  packed = packAll(path.join(work, 'tarballs'))
  const storage = await Storage.open(main)
  imageIds = (await storage.listImages()).map((i) => i.id)
  layer = (await (await storage.image('localhost/app:1')).inspect()).layers[0]
  storage.close()
}, 900_000)

describe('Debian 11 (glibc 2.31) with this machine’s Node', () => {
  const upper = path.join(work, 'bullseye', 'upper')
  let root: string
  /** The fixture stores' directory, bind-mounted at /store in the userland. */
  const storeArgs = ['--root', '/store/main/root', '--runroot', '/store/main/run']

  /**
   * Runs `script` with sh in the userland, in a mount namespace of its own: an overlay over the
   * cached userland (writes go to `upper`, kept between calls), /proc, /dev and the fixtures.
   */
  function inBullseye(script: string) {
    const mounts = `
      lower="$1"; w="$2"; fixtures="$3"; script="$4"
      mkdir -p "$w/merged" "$w/work"
      mount -t overlay overlay -o "lowerdir=$lower,upperdir=$w/upper,workdir=$w/work" "$w/merged"
      mount -t proc proc "$w/merged/proc"
      mount --rbind /dev "$w/merged/dev"
      mkdir -p "$w/merged/store"
      mount --bind "$fixtures" "$w/merged/store"
      exec chroot "$w/merged" /bin/sh -euc "$script"`
    return spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-euc', mounts, 'sh', root, path.dirname(upper), fixtures, script], {
      env: { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: '/project', npm_config_cache: '/project/.npm-cache', npm_config_update_notifier: 'false' },
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    })
  }

  beforeAll(() => {
    root = userland('bullseye-amd64')
    // This machine's Node and npm, as a user would copy them; the tarballs; an empty project.
    const npm = path.resolve(fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim()), '..', '..')
    fs.mkdirSync(path.join(upper, 'usr/local/bin'), { recursive: true })
    fs.mkdirSync(path.join(upper, 'usr/local/lib/node_modules'), { recursive: true })
    fs.copyFileSync(process.execPath, path.join(upper, 'usr/local/bin/node'))
    execFileSync('cp', ['-a', npm, path.join(upper, 'usr/local/lib/node_modules/npm')])
    fs.symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(upper, 'usr/local/bin/npm'))
    fs.symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(upper, 'usr/local/bin/npx'))
    fs.mkdirSync(path.join(upper, 'tarballs'))
    for (const tgz of [packed.main, packed.platform['linux-x64-gnu']]) fs.copyFileSync(tgz, path.join(upper, 'tarballs', path.basename(tgz)))
    emptyProject(path.join(upper, 'project'))
  }, 900_000)

  it('installs offline, lists the images and exports a layer bit for bit', () => {
    const facts = inBullseye('ldd --version | head -n 1; node -p process.version; command -v cargo rustc gcc || true')
    expect(facts.status, facts.stderr).toBe(0)
    console.log(facts.stdout.trim())
    expect(facts.stdout).toMatch(/GLIBC 2\.31|2\.31$/m)

    const install = inBullseye('cd /project && npm install --offline --no-audit --no-fund /tarballs/*.tgz')
    expect(install.status, install.stderr).toBe(0)

    const list = inBullseye(`cd /project && npx --offline cstor image list --json ${storeArgs.join(' ')}`)
    expect(list.status, list.stderr).toBe(0)
    expect(JSON.parse(list.stdout).map((i: { id: string }) => i.id)).toEqual(imageIds)

    const exported = inBullseye(`cd /project && npx --offline cstor layer export ${layer.id} -o /project/layer.tar ${storeArgs.join(' ')}`)
    expect(exported.status, exported.stderr).toBe(0)
    expect(sha256(fs.readFileSync(path.join(upper, 'project', 'layer.tar')))).toBe(layer.diffDigest)
  })

  it('names the missing GLIBC_2.xx in one line when a binary needs a newer glibc', () => {
    // A shared object linked here (glibc 2.36): pthread_create has the version GLIBC_2.34 since
    // glibc merged libpthread, which is what made the first cstor binaries fail on Debian 11.
    const source = path.join(work, 'newer-glibc.c')
    fs.writeFileSync(source, '#include <pthread.h>\nvoid *start(void *a) { return a; }\nint spawn(pthread_t *t) { return pthread_create(t, 0, start, 0); }\n')
    const slot = path.join(upper, 'project/node_modules/cstor-linux-x64-gnu/cstor.linux-x64-gnu.node')
    execFileSync('cc', ['-shared', '-fPIC', '-o', slot, source])
    expect(execFileSync('objdump', ['-T', slot], { encoding: 'utf8' })).toContain('GLIBC_2.34')

    const list = inBullseye(`cd /project && npx --offline cstor image list ${storeArgs.join(' ')}`)
    console.log(list.stderr.trimEnd())
    expect(list.status).toBe(1)
    const lines = list.stderr.trimEnd().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^cstor: cannot load cstor's native binary, package cstor-linux-x64-gnu \(this system: linux x64 glibc 2\.31\): /)
    expect(lines[0]).toMatch(/cstor\.linux-x64-gnu\.node needs a newer glibc: GLIBC_2\.34 not found \(EUNSUPPORTED\)$/)
  })
})

describe('arm64 under qemu-user with Debian’s arm64 Node', () => {
  const project = path.join(work, 'arm64')
  let root: string
  const node = (args: string[], cwd = work) =>
    spawnSync('qemu-aarch64-static', ['-L', root, path.join(root, 'usr/bin/node'), ...args], {
      cwd,
      encoding: 'utf8',
      maxBuffer: 1 << 26,
      env: { PATH: '/usr/bin:/bin', HOME: project, npm_config_update_notifier: 'false' },
    })
  const cstor = (args: string[]) => node([path.join(project, 'node_modules/cstor/dist/cli/main.js'), ...args, '--root', main.root, '--runroot', main.runroot])

  beforeAll(() => {
    root = userland('trixie-arm64')
    emptyProject(project)
  }, 900_000)

  it('installs the arm64 package, lists the images and exports a layer bit for bit', () => {
    const facts = node(['-p', '[process.arch, process.version, process.report.getReport().header.glibcVersionRuntime].join(" ")'])
    expect(facts.status, facts.stderr).toBe(0)
    console.log(`qemu-aarch64: node ${facts.stdout.trim()}`)
    expect(facts.stdout).toMatch(/^arm64 /)

    // This machine's npm (JavaScript) run by the arm64 Node: npm checks the package's os/cpu/libc
    // against an arm64 process, as on an arm64 machine.
    const npm = fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim())
    const install = node([npm, 'install', '--offline', '--no-audit', '--no-fund', `--cache=${path.join(project, '.npm-cache')}`, packed.main, packed.platform['linux-arm64-gnu']], project)
    expect(install.status, install.stderr).toBe(0)
    expect(fs.readdirSync(path.join(project, 'node_modules')).filter((d) => d.startsWith('cstor'))).toEqual(['cstor', 'cstor-linux-arm64-gnu'])

    const list = cstor(['image', 'list', '--json'])
    expect(list.status, list.stderr).toBe(0)
    expect(JSON.parse(list.stdout).map((i: { id: string }) => i.id)).toEqual(imageIds)

    const tar = path.join(work, 'arm64-layer.tar')
    const exported = cstor(['layer', 'export', layer.id, '-o', tar])
    expect(exported.status, exported.stderr).toBe(0)
    expect(sha256(fs.readFileSync(tar))).toBe(layer.diffDigest)
  })
})
