/**
 * Copies out of the store — pushes to a registry, `docker-archive:` and `oci-archive:` files —
 * checked by the real tools: Distribution's `docker-registry` (started here on loopback, open,
 * with htpasswd, with bearer tokens), skopeo and podman pulling and loading what cstor wrote into
 * fresh stores, which must hold the same image ID and diff IDs.
 */
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidArgumentError, RemoteError, Storage, SystemError, type Image } from '../ts/index'
import { cli, cliOn, copyStore, fixtures, main, storageConf, type FixtureStore } from './helpers'
import { authFile, startRegistry, type Registry } from './registry'

const env = { ...process.env, CONTAINERS_STORAGE_CONF: storageConf }
const saved = { cache: process.env.XDG_CACHE_HOME, auth: process.env.REGISTRY_AUTH_FILE }
let dir: string
let storage: Storage
let registry: Registry
const stores: string[] = []

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-push-'))
  // The blob-info cache of these pushes, apart from the user's.
  process.env.XDG_CACHE_HOME = path.join(dir, 'cache')
  storage = await Storage.open(main)
  registry = await startRegistry(path.join(dir, 'registry'))
})
afterAll(async () => {
  await registry?.stop()
  storage?.close()
  // containers/storage leaves overlay/ bind-mounted on itself in stores podman/skopeo wrote.
  for (const root of stores) execFileSync('sh', ['-c', `umount ${root}/overlay 2>/dev/null || true`])
  fs.rmSync(dir, { recursive: true, force: true })
  for (const [name, value] of [['XDG_CACHE_HOME', saved.cache], ['REGISTRY_AUTH_FILE', saved.auth]] as const) {
    if (value === undefined) delete process.env[name]
    else process.env[name] = value
  }
})

const run = (tool: string, args: string[]) => execFileSync(tool, args, { env: { ...env, ...process.env }, maxBuffer: 1 << 26 }).toString()
const skopeo = (...args: string[]) => run('skopeo', args)

const podman = (store: FixtureStore, ...args: string[]) => run('podman', ['--root', store.root, '--runroot', store.runroot, '--storage-driver', 'overlay', ...args])
/** A new empty store that podman initialised (named shortly: podman refuses long runroots). */
function freshStore(): FixtureStore {
  const name = `s${stores.length}`
  const store = { root: path.join(dir, name, 'root'), runroot: path.join(dir, name, 'run') }
  stores.push(store.root)
  podman(store, 'images')
  return store
}

const storageRef = (store: FixtureStore, name: string) => `containers-storage:[overlay@${store.root}+${store.runroot}]${name}`

/** Image ID and diff IDs (base first) as podman reads them from a store. */
function podmanSees(store: FixtureStore, name: string): { id: string; diffIds: string[] } {
  const [inspected] = JSON.parse(podman(store, 'image', 'inspect', name)) as { Id: string; RootFS: { Layers: string[] } }[]
  return { id: inspected.Id, diffIds: inspected.RootFS.Layers }
}

async function expected(image: Image): Promise<{ id: string; diffIds: string[] }> {
  return { id: image.id, diffIds: (await image.layers()).reverse().map((l) => l.diffDigest ?? '') }
}

const fixtureImages = fs.readFileSync(path.join(fixtures, 'images.txt'), 'utf8').split('\n').filter(Boolean)

/** `host/pushed/<name>:<tag>` for a fixture image name. */
function target(host: string, name: string, repository = 'pushed'): string {
  const [repo, tag] = name.split('/').slice(1).join('/').split(':')
  return `${host}/${repository}/${repo}:${tag}`
}

/** Blob uploads the registry received: a POST opening one that is not a mount, a PATCH, a PUT closing one. */
function uploads(requests: { method: string; path: string }[]): number {
  return requests.filter((r) => r.path.includes('/blobs/uploads/') && !r.path.includes('mount=') && r.method !== 'DELETE').length
}

describe('push to a registry', () => {
  it('every fixture image: skopeo and podman pull it back with the same image ID and diff IDs', { timeout: 600_000 }, async () => {
    const bySkopeo = freshStore()
    const byPodman = freshStore()
    for (const name of fixtureImages) {
      const image = await storage.image(name)
      const ref = target(registry.host, name)
      const result = await image.copyTo(`docker://${ref}`, { tlsVerify: false })
      expect(result.layers).toBe((await image.layers()).length)
      skopeo('copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, storageRef(bySkopeo, ref))
      podman(byPodman, 'pull', '--quiet', '--tls-verify=false', ref)
      const want = await expected(image)
      expect(podmanSees(bySkopeo, ref), name).toEqual(want)
      expect(podmanSees(byPodman, ref), name).toEqual(want)
      const raw = JSON.parse(skopeo('inspect', '--raw', '--tls-verify=false', `docker://${ref}`))
      expect(raw.layers.every((l: { mediaType: string }) => l.mediaType.endsWith('+gzip')), name).toBe(true)
    }
  })

  it('a second push uploads no blob; a push to another repository mounts the blobs', async () => {
    // A cache of its own: the blobs are new to it, as the registry's other repositories are.
    process.env.XDG_CACHE_HOME = path.join(dir, 'cache-again')
    const image = await storage.image('localhost/app:1')
    const layers = (await image.layers()).length
    const ref = `docker://${registry.host}/again/app:1`
    const first = await image.copyTo(ref, { tlsVerify: false })
    expect(first.blobsReused).toBe(0)

    let before = registry.requests().length
    const second = await image.copyTo(ref, { tlsVerify: false })
    expect(second).toMatchObject({ bytesWritten: 0, blobsReused: layers, manifestDigest: first.manifestDigest })
    expect(uploads(registry.requests().slice(before))).toBe(0)

    before = registry.requests().length
    const mounted = await image.copyTo(`docker://${registry.host}/elsewhere/app:1`, { tlsVerify: false })
    expect(mounted).toMatchObject({ bytesWritten: 0, blobsReused: layers })
    const requests = registry.requests().slice(before)
    expect(uploads(requests)).toBe(0)
    const mounts = requests.filter((r) => r.method === 'POST' && r.path.includes('mount=') && r.path.includes('from=again/app'))
    expect(mounts.map((r) => r.status)).toEqual([...Array(layers + 1)].map(() => 201)) // layers and config
  })

  it('zstd layers, and uncompressed ones under the stored manifest, pull back the same', async () => {
    const image = await storage.image('localhost/app:1')
    const zstd = `${registry.host}/zstd/app:1`
    await image.copyTo(`docker://${zstd}`, { tlsVerify: false, compression: 'zstd' })
    const raw = JSON.parse(skopeo('inspect', '--raw', '--tls-verify=false', `docker://${zstd}`))
    expect(raw.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual(raw.layers.map(() => 'application/vnd.oci.image.layer.v1.tar+zstd'))
    const store = freshStore()
    skopeo('copy', '--quiet', '--src-tls-verify=false', `docker://${zstd}`, storageRef(store, zstd))
    expect(podmanSees(store, zstd)).toEqual(await expected(image))

    const base = await storage.image('localhost/base:1')
    const plain = await base.copyTo(`docker://${registry.host}/plain/base:1`, { tlsVerify: false, compression: 'none' })
    expect(plain.manifestDigest).toBe(base.digest)
  })

  it('a push killed midway leaves the tag as it was; the next push completes', { timeout: 300_000 }, async () => {
    const copy = copyStore(main)
    try {
      const big = path.join(dir, 'big')
      fs.mkdirSync(big)
      // Incompressible, so the push takes long enough to be caught in the middle.
      fs.writeFileSync(path.join(big, 'noise'), Buffer.alloc(64 << 20).map(() => Math.floor(Math.random() * 256)))
      execFileSync('tar', ['-C', big, '-cf', path.join(dir, 'big.tar'), '.'])
      const store = await Storage.open(copy)
      await store.import(path.join(dir, 'big.tar'), { name: 'localhost/big:1' })
      const ref = `docker://${registry.host}/killed/app:1`
      const old = await (await store.image('localhost/base:1')).copyTo(ref, { tlsVerify: false })

      const uploadsDir = path.join(registry.storage, 'docker/registry/v2/repositories/killed/app/_uploads')
      const child = spawn(process.execPath, [path.join(__dirname, '..', 'dist', 'cli', 'main.js'), '--root', copy.root, '--runroot', copy.runroot, 'copy', 'localhost/big:1', ref, '--tls-verify=false'], { stdio: 'ignore' })
      const uploading = () => fs.existsSync(uploadsDir) && fs.readdirSync(uploadsDir).some((u) => fs.existsSync(path.join(uploadsDir, u, 'data')) && fs.statSync(path.join(uploadsDir, u, 'data')).size > 1 << 20)
      for (let i = 0; !uploading(); i++) {
        if (i > 3000 || child.exitCode !== null) throw new Error('the push ended before it could be killed midway')
        await new Promise((r) => setTimeout(r, 10))
      }
      child.kill('SIGKILL')
      await new Promise((resolve) => child.once('exit', resolve))
      expect(JSON.parse(skopeo('inspect', '--tls-verify=false', ref)).Digest).toBe(old.manifestDigest)

      const image = await store.image('localhost/big:1')
      const pushed = await image.copyTo(ref, { tlsVerify: false })
      expect(JSON.parse(skopeo('inspect', '--tls-verify=false', ref)).Digest).toBe(pushed.manifestDigest)
      const pulled = freshStore()
      skopeo('copy', '--quiet', '--src-tls-verify=false', ref, storageRef(pulled, 'localhost/big:1'))
      expect(podmanSees(pulled, 'localhost/big:1')).toEqual(await expected(image))
      store.close()
    } finally {
      copy.cleanup()
    }
  })
})

describe('registry credentials, where podman and skopeo keep them', () => {
  const user = { user: 'cstor', password: 'right horse battery' }

  for (const kind of ['htpasswd', 'token'] as const) {
    it(`${kind === 'htpasswd' ? 'basic auth (htpasswd)' : 'bearer tokens'}: stored credentials push and pull; wrong or none are EACCES`, async () => {
      const secured = await startRegistry(path.join(dir, `registry-${kind}`), { [kind]: user })
      try {
        const image = await storage.image('localhost/app:1')
        const ref = `docker://${secured.host}/team/app:1`
        process.env.REGISTRY_AUTH_FILE = authFile(path.join(dir, `${kind}-right.json`), secured.host, user)
        const pushed = await image.copyTo(ref, { tlsVerify: false })
        // A second repository: the mount needs access to both.
        const before = secured.requests().length
        await image.copyTo(`docker://${secured.host}/team/other:1`, { tlsVerify: false })
        expect(secured.requests().slice(before).some((r) => r.path.includes('mount=') && r.status === 201)).toBe(true)
        const store = freshStore()
        const pulling = await Storage.open(store)
        const pulled = await pulling.pull(ref, { tlsVerify: false })
        expect(pulled.imageId).toBe(image.id)
        pulling.close()
        expect(JSON.parse(skopeo('inspect', '--tls-verify=false', ref)).Digest).toBe(pushed.manifestDigest)

        process.env.REGISTRY_AUTH_FILE = authFile(path.join(dir, `${kind}-wrong.json`), secured.host, { ...user, password: 'wrong' })
        await expect(image.copyTo(ref, { tlsVerify: false })).rejects.toMatchObject({ code: 'EACCES' })
        await expect(image.copyTo(ref, { tlsVerify: false })).rejects.toBeInstanceOf(SystemError)
        const store2 = await Storage.open(freshStore())
        await expect(store2.pull(ref, { tlsVerify: false })).rejects.toMatchObject({ code: 'EACCES' })
        store2.close()

        fs.writeFileSync(path.join(dir, 'none.json'), '{"auths":{}}')
        process.env.REGISTRY_AUTH_FILE = path.join(dir, 'none.json')
        await expect(image.copyTo(ref, { tlsVerify: false })).rejects.toMatchObject({ code: 'EACCES' })
      } finally {
        delete process.env.REGISTRY_AUTH_FILE
        await secured.stop()
      }
    })
  }
})

describe('archives', () => {
  for (const name of ['localhost/app:1', 'quay.io/cstor/formats:1', 'localhost/chain:55']) {
    it(`${name}: podman load and skopeo copy read docker-archive and oci-archive with the same image ID`, async () => {
      const image = await storage.image(name)
      const want = await expected(image)
      const file = name.replace(/[/:]/g, '-')
      const docker = path.join(dir, `${file}.docker.tar`)
      const oci = path.join(dir, `${file}.oci.tar`)
      await image.copyTo(`docker-archive:${docker}:${name}`)
      await image.copyTo(`oci-archive:${oci}:${file}`)

      const loaded = freshStore()
      expect(podman(loaded, 'load', '--quiet', '--input', docker)).toContain(name)
      expect(podmanSees(loaded, name)).toEqual(want)
      const copied = freshStore()
      skopeo('copy', '--quiet', `docker-archive:${docker}`, storageRef(copied, 'localhost/from-docker-archive:1'))
      skopeo('copy', '--quiet', `oci-archive:${oci}:${file}`, storageRef(copied, 'localhost/from-oci-archive:1'))
      expect(podmanSees(copied, 'localhost/from-docker-archive:1')).toEqual(want)
      expect(podmanSees(copied, 'localhost/from-oci-archive:1')).toEqual(want)
      expect(fs.readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([])
    })
  }

  it('docker-archive holds what podman save writes: the same manifest.json, layer and config members', async () => {
    const saved = path.join(dir, 'saved.tar')
    const ours = path.join(dir, 'ours.tar')
    podman(main, 'save', '--quiet', '--format', 'docker-archive', '-o', saved, 'localhost/app:1')
    await (await storage.image('localhost/app:1')).copyTo(`docker-archive:${ours}:localhost/app:1`)
    const member = (file: string, name: string) => execFileSync('tar', ['-xOf', file, name], { maxBuffer: 1 << 26 })
    expect(member(ours, 'manifest.json').toString()).toBe(member(saved, 'manifest.json').toString())
    const layers = JSON.parse(member(ours, 'manifest.json').toString())[0].Layers as string[]
    for (const layer of layers) expect(member(ours, layer).equals(member(saved, layer))).toBe(true)
  })
})

describe('bad input', () => {
  it('an unknown transport or an empty path is EINVAL; an unreachable registry is EREMOTE', async () => {
    const image = await storage.image('localhost/base:1')
    await expect(image.copyTo('ftp://example.com/x')).rejects.toBeInstanceOf(InvalidArgumentError)
    await expect(image.copyTo('docker-archive:')).rejects.toBeInstanceOf(InvalidArgumentError)
    await expect(image.copyTo('docker://127.0.0.1:1/nobody/home:1', { tlsVerify: false })).rejects.toBeInstanceOf(RemoteError)
    await expect(image.copyTo('docker-archive:/nonexistent/dir/x.tar')).rejects.toMatchObject({ code: 'ENOENT' })
    const unknown = cliOn(main, ['copy', 'localhost/base:1', 'ftp:x'])
    expect(unknown.status).toBe(1)
    expect(unknown.stderr).toContain('EINVAL')
    expect(cli(['copy', 'localhost/base:1', `oci:${dir}/x`, '--compress', 'lz4']).status).toBe(2)
  })

  it('a full disk: ENOSPC, and no file under the destination name, nor a temp file', async () => {
    const full = path.join(dir, 'full')
    fs.mkdirSync(full)
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', full])
    try {
      const image = await storage.image('localhost/app:1') // 2 MB of layers
      for (const destination of [`docker-archive:${full}/app.tar:localhost/app:1`, `oci-archive:${full}/app.tar:app`]) {
        await expect(image.copyTo(destination, { compression: 'none' })).rejects.toMatchObject({ code: 'ENOSPC' })
        expect(fs.readdirSync(full)).toEqual([])
      }
    } finally {
      execFileSync('umount', [full])
    }
  })
})
