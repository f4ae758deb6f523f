/**
 * Writes, checked against the real tools: what cstor writes must be what podman/skopeo write for
 * the same input (same IDs, records, big data, layer tars), and podman must read it (`images`,
 * `image inspect`, `save`), skopeo too (`inspect containers-storage:`).
 */
import { execFileSync, spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InUseError, InvalidArgumentError, NoImageError, Storage } from '../ts/index'
import { cliOn, copyStore, main, storageConf, type FixtureStore } from './helpers'

const env = { ...process.env, CONTAINERS_STORAGE_CONF: storageConf }
let dir: string
const mounted: string[] = []

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-write-'))
})
afterAll(() => {
  // containers/storage leaves overlay/ bind-mounted on itself in stores podman/skopeo wrote.
  for (const root of mounted) execFileSync('sh', ['-c', `umount ${root}/overlay 2>/dev/null || true`])
  fs.rmSync(dir, { recursive: true, force: true })
})

function podman(store: FixtureStore, ...args: string[]): string {
  return execFileSync('podman', ['--root', store.root, '--runroot', store.runroot, '--storage-driver', 'overlay', ...args], {
    env,
    maxBuffer: 1 << 28,
  }).toString()
}

function skopeo(...args: string[]): string {
  return execFileSync('skopeo', args, { env, maxBuffer: 1 << 26 }).toString()
}

/** A fresh, empty store that podman has initialised. */
function emptyStore(name: string): FixtureStore {
  const store = { root: path.join(dir, name, 'root'), runroot: path.join(dir, name, 'run') }
  podman(store, 'images')
  mounted.push(store.root)
  return store
}

function storageRef(store: FixtureStore, name: string): string {
  return `containers-storage:[overlay@${store.root}+${store.runroot}]${name}`
}

const sha256 = (bytes: Buffer) => crypto.createHash('sha256').update(bytes).digest('hex')

function records(store: FixtureStore, file: 'layers' | 'images'): Record<string, unknown>[] {
  const json = path.join(store.root, `overlay-${file}`, `${file}.json`)
  return JSON.parse(fs.readFileSync(json, 'utf8')) as Record<string, unknown>[]
}

/**
 * An image record skopeo 1.9 (containers/image 5.2x) wrote, less what podman 5.8's containers/image
 * dropped and cstor does not write: an unsigned image's empty `signature-<digest>` item and its
 * `signatures-sizes` metadata (podman-5-writes.test.ts compares with podman 5.8 itself).
 */
function unsigned(record: Record<string, unknown>): Record<string, unknown> {
  const keep = (key: string) => !key.startsWith('signature-')
  const only = (map: Record<string, unknown>) => Object.fromEntries(Object.entries(map).filter(([key]) => keep(key)))
  return {
    ...record,
    metadata: '{}',
    'big-data-names': (record['big-data-names'] as string[]).filter(keep),
    'big-data-sizes': only(record['big-data-sizes'] as Record<string, unknown>),
    'big-data-digests': only(record['big-data-digests'] as Record<string, unknown>),
  }
}

/** A layer record without what differs between any two writes (the time). */
function layerShape(record: Record<string, unknown>) {
  const { created: _created, ...rest } = record
  return rest
}

async function exported(storage: Storage, id: string): Promise<string> {
  const file = path.join(dir, `${id}.tar`)
  await (await storage.layer(id)).exportToFile(file)
  const digest = sha256(fs.readFileSync(file))
  fs.rmSync(file)
  return digest
}

/** A small rootfs tar with what layers carry: dirs, files, a symlink, a hardlink, modes. */
function rootfsTar(name: string, seed: string): string {
  const root = path.join(dir, `rootfs-${name}`)
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true })
  fs.mkdirSync(path.join(root, 'usr/bin'), { recursive: true })
  fs.writeFileSync(path.join(root, 'etc/motd'), `hello ${seed}\n`)
  fs.writeFileSync(path.join(root, 'usr/bin/tool'), crypto.randomBytes(70_000))
  fs.chmodSync(path.join(root, 'usr/bin/tool'), 0o4755)
  fs.symlinkSync('motd', path.join(root, 'etc/greeting'))
  fs.linkSync(path.join(root, 'etc/motd'), path.join(root, 'usr/motd'))
  const tar = path.join(dir, `${name}.tar`)
  execFileSync('tar', ['-C', root, '-cf', tar, '.'])
  return tar
}

describe('import (podman import)', () => {
  it('writes the layer podman writes for the same tar, and podman reads the image', async () => {
    const tar = rootfsTar('import', 'a')
    const ours = emptyStore('import-cstor')
    const theirs = emptyStore('import-podman')
    const storage = await Storage.open(ours)
    const result = await storage.import(tar, { name: 'imported:1' })
    podman(theirs, 'import', '--quiet', tar, 'imported:1')

    const digest = `sha256:${sha256(fs.readFileSync(tar))}`
    expect(result.layers).toEqual([digest.slice(7)])
    expect(records(ours, 'layers').map(layerShape)).toEqual(records(theirs, 'layers').map(layerShape))
    // The layer exports bit for bit: our tar-split plus diff/ give back the input tar.
    expect(await exported(storage, result.layers[0])).toBe(digest.slice(7))
    const asm = execFileSync('tar-split', [
      'asm', '--input', path.join(ours.root, 'overlay-layers', `${result.layers[0]}.tar-split.gz`),
      '--path', path.join(ours.root, 'overlay', result.layers[0], 'diff'), '--output', '-',
    ], { maxBuffer: 1 << 26 })
    expect(sha256(asm)).toBe(digest.slice(7))

    const inspect = JSON.parse(podman(ours, 'image', 'inspect', 'localhost/imported:1'))[0]
    expect(inspect.Id).toBe(result.imageId)
    // The config is podman's byte for byte (created = the tar's mtime), so the image ID is too.
    expect(JSON.parse(podman(theirs, 'image', 'inspect', 'localhost/imported:1'))[0].Id).toBe(result.imageId)
    expect(inspect.RootFS.Layers).toEqual([digest])
    expect(podman(ours, 'images', '--format', '{{.Repository}}:{{.Tag}}').trim()).toBe('localhost/imported:1')
    podman(ours, 'save', '-o', path.join(dir, 'saved.tar'), 'localhost/imported:1')
    expect(fs.statSync(path.join(dir, 'saved.tar')).size).toBeGreaterThan(70_000)
    // podman's merged view of our layer is the tree the tar holds.
    const mount = podman(ours, 'image', 'mount', 'localhost/imported:1').trim()
    try {
      expect(fs.readFileSync(path.join(mount, 'etc/motd'), 'utf8')).toBe('hello a\n')
      expect(fs.readlinkSync(path.join(mount, 'etc/greeting'))).toBe('motd')
      expect(fs.statSync(path.join(mount, 'usr/bin/tool')).mode & 0o7777).toBe(0o4755)
      expect(fs.statSync(path.join(mount, 'usr/motd')).ino).toBe(fs.statSync(path.join(mount, 'etc/motd')).ino)
    } finally {
      podman(ours, 'image', 'unmount', 'localhost/imported:1')
    }
    storage.close()
  })
})

describe('pull from an OCI layout', () => {
  for (const compression of ['gzip', 'zstd'] as const) {
    it(`writes what skopeo writes (${compression} layers)`, async () => {
      const layout = path.join(dir, `layout-${compression}`)
      const source = { root: main.root, runroot: main.runroot }
      skopeo('copy', '--quiet', '--dest-compress-format', compression, storageRef(source, 'localhost/app:1'), `oci:${layout}:app`)
      const ours = emptyStore(`pull-${compression}-cstor`)
      const theirs = emptyStore(`pull-${compression}-skopeo`)
      const storage = await Storage.open(ours)
      const progress: number[] = []
      const pulled = await storage.pull(`oci:${layout}:app`, { name: 'localhost/app:1', onProgress: (p) => progress.push(p.layer) })
      skopeo('copy', '--quiet', `oci:${layout}:app`, storageRef(theirs, 'localhost/app:1'))

      expect(records(ours, 'layers').map(layerShape)).toEqual(records(theirs, 'layers').map(layerShape))
      const [image] = records(ours, 'images')
      const [reference] = records(theirs, 'images').map(unsigned)
      expect(image).toEqual(reference)
      expect(pulled.imageId).toBe(reference.id)
      expect(progress.length).toBeGreaterThan(0)
      for (const name of image['big-data-names'] as string[]) {
        const file = name === 'manifest' ? name : `=${Buffer.from(name).toString('base64')}`
        expect(fs.readFileSync(path.join(ours.root, 'overlay-images', pulled.imageId, file)))
          .toEqual(fs.readFileSync(path.join(theirs.root, 'overlay-images', pulled.imageId, file)))
      }
      const theirStorage = await Storage.open(theirs)
      for (const id of pulled.layers) expect(await exported(storage, id)).toBe(await exported(theirStorage, id))
      theirStorage.close()

      const inspect = JSON.parse(podman(ours, 'image', 'inspect', 'localhost/app:1'))[0]
      expect(inspect.Id).toBe(pulled.imageId)
      // (podman cannot save zstd layers as docker-archive, whoever wrote them: use oci-archive.)
      podman(ours, 'save', '--format', 'oci-archive', '-o', path.join(dir, `saved-${compression}.tar`), 'localhost/app:1')
      const skopeoInspect = JSON.parse(skopeo('inspect', storageRef(ours, 'localhost/app:1')))
      expect(skopeoInspect.Digest).toBe(image.digest)

      // Pulling again skips every layer and names the image it finds.
      const again = await storage.pull(`oci:${layout}:app`, { name: 'localhost/app:again' })
      expect(again).toMatchObject({ imageId: pulled.imageId, layersWritten: 0, existed: true })
      storage.close()
    })
  }

  it('pulls a docker-archive as skopeo does: the generated schema 2 manifest byte for byte', async () => {
    const archive = path.join(dir, 'app.docker.tar')
    podman(main, 'save', '-o', archive, 'localhost/app:1')
    const ours = emptyStore('archive-cstor')
    const theirs = emptyStore('archive-skopeo')
    const storage = await Storage.open(ours)
    const pulled = await storage.pull(`docker-archive:${archive}`, { name: 'localhost/app:1' })
    skopeo('copy', '--quiet', `docker-archive:${archive}`, storageRef(theirs, 'localhost/app:1'))
    expect(records(ours, 'layers').map(layerShape)).toEqual(records(theirs, 'layers').map(layerShape))
    expect(records(ours, 'images')).toEqual(records(theirs, 'images').map(unsigned))
    const manifest = (s: FixtureStore) => fs.readFileSync(path.join(s.root, 'overlay-images', pulled.imageId, 'manifest'))
    expect(manifest(ours)).toEqual(manifest(theirs))
    expect(JSON.parse(podman(ours, 'image', 'inspect', 'localhost/app:1'))[0].Id).toBe(pulled.imageId)
    storage.close()
  })

  it('pulls from a registry (docker:// over HTTP to a local docker-registry) as skopeo does', async () => {
    const port = 6000 + (process.pid % 1000)
    fs.writeFileSync(
      path.join(dir, 'registry.yml'),
      `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/registry\nhttp:\n  addr: 127.0.0.1:${port}\n`,
    )
    const registry = spawn('docker-registry', ['serve', path.join(dir, 'registry.yml')], { stdio: 'ignore' })
    try {
      const target = `docker://127.0.0.1:${port}/cstor/app:1`
      for (let i = 0; ; i++) {
        try {
          skopeo('copy', '--quiet', '--dest-tls-verify=false', storageRef(main, 'localhost/app:1'), target)
          break
        } catch (e) {
          if (i > 50) throw e
          await new Promise((r) => setTimeout(r, 100))
        }
      }
      const ours = emptyStore('registry-cstor')
      const theirs = emptyStore('registry-skopeo')
      const storage = await Storage.open(ours)
      const pulled = await storage.pull(target, { name: `127.0.0.1:${port}/cstor/app:1`, tlsVerify: false })
      skopeo('copy', '--quiet', '--src-tls-verify=false', target, storageRef(theirs, `127.0.0.1:${port}/cstor/app:1`))
      expect(records(ours, 'layers').map(layerShape)).toEqual(records(theirs, 'layers').map(layerShape))
      expect(records(ours, 'images')).toEqual(records(theirs, 'images').map(unsigned))
      expect(JSON.parse(podman(ours, 'image', 'inspect', pulled.imageId))[0].Id).toBe(pulled.imageId)
      await expect(storage.pull(`docker://127.0.0.1:${port}/cstor/nope:1`, { tlsVerify: false })).rejects.toBeInstanceOf(NoImageError)
      storage.close()
    } finally {
      registry.kill()
    }
  })

  it('refuses a blob whose digest is not the manifest\'s, leaving no layer behind', async () => {
    const layout = path.join(dir, 'layout-bad')
    skopeo('copy', '--quiet', storageRef(main, 'localhost/base:1'), `oci:${layout}:base`)
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'))
    const manifest = JSON.parse(fs.readFileSync(path.join(layout, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'))
    const blob = path.join(layout, 'blobs/sha256', manifest.layers[0].digest.slice(7))
    fs.appendFileSync(blob, Buffer.alloc(512))
    const ours = emptyStore('pull-bad')
    const storage = await Storage.open(ours)
    await expect(storage.pull(`oci:${layout}:base`)).rejects.toBeInstanceOf(InvalidArgumentError)
    expect(await storage.listLayers()).toEqual([])
    expect(await storage.listImages()).toEqual([])
    expect(podman(ours, 'images', '-q').trim()).toBe('')
    storage.close()
  })
})

describe('tag, untag, rmi as podman does them', () => {
  it('moves names and records history like podman tag/untag', async () => {
    const ours = copyStore(main)
    const theirs = copyStore(main)
    try {
      const storage = await Storage.open(ours)
      await storage.tag('localhost/base:1', 'localhost/app:latest', 'extra-name')
      await storage.untag('localhost/app:1', 'localhost/app:1')
      podman(theirs, 'tag', 'localhost/base:1', 'localhost/app:latest', 'extra-name')
      podman(theirs, 'untag', 'localhost/app:1', 'localhost/app:1')
      const names = (s: FixtureStore) => records(s, 'images').map((r) => [r.id, r.names ?? [], r['names-history'] ?? []])
      expect(names(ours)).toEqual(names(theirs))
      await expect(storage.tag('localhost/nope:1', 'x')).rejects.toBeInstanceOf(NoImageError)
      await expect(storage.tag('localhost/base:1', 'Not A Name')).rejects.toBeInstanceOf(InvalidArgumentError)
      storage.close()
    } finally {
      ours.cleanup()
      theirs.cleanup()
    }
  })

  it('deletes an image and exactly the layers podman rmi deletes; a name of several is only untagged', async () => {
    const ours = copyStore(main)
    const theirs = copyStore(main)
    try {
      const storage = await Storage.open(ours)
      expect(await storage.removeImage('localhost/app:1')).toEqual([])
      podman(theirs, 'rmi', 'localhost/app:1')
      const removed = [...(await storage.removeImage('localhost/app:latest')), ...(await storage.removeImage('app:v1.0'))]
      podman(theirs, 'rmi', 'localhost/app:latest')
      podman(theirs, 'rmi', 'app:v1.0')
      const ids = (s: FixtureStore, file: 'layers' | 'images') => records(s, file).map((r) => [r.id, r.names ?? []]).sort()
      expect(ids(ours, 'images')).toEqual(ids(theirs, 'images'))
      expect(ids(ours, 'layers')).toEqual(ids(theirs, 'layers'))
      expect(removed.length).toBeGreaterThan(0)
      for (const id of removed) expect(fs.existsSync(path.join(ours.root, 'overlay', id))).toBe(false)
      // The base layer, shared with other images, stays and still exports.
      const base = await storage.image('localhost/base:1')
      expect(await exported(storage, base.topLayer!)).toBe(base.topLayer)
      podman(ours, 'images')
      storage.close()
    } finally {
      ours.cleanup()
      theirs.cleanup()
    }
  })

  it('deletes a layer nothing uses, and refuses one a child, an image or a container uses', async () => {
    const ours = copyStore(main)
    try {
      podman(ours, 'create', '--name', 'c2', 'localhost/base:1', '/bin/true')
      const storage = await Storage.open(ours)
      const base = await storage.image('localhost/base:1')
      await expect(storage.removeLayer(base.topLayer!)).rejects.toBeInstanceOf(InUseError)
      const app = await storage.image('localhost/app:1')
      await expect(storage.removeLayer(app.topLayer!)).rejects.toThrow(/used by image/)
      const container = (records(ours, 'layers') as { id: string; parent?: string }[]).find((l) => !l['diff-digest' as never] && l.parent === base.topLayer)!
      await expect(storage.removeLayer(container.id)).rejects.toThrow(/container/)
      const loose = await storage.createLayer(rootfsTar('loose', 'l'))
      expect(await storage.removeLayer(loose.id)).toBe(loose.id)
      expect(fs.existsSync(path.join(ours.root, 'overlay', loose.id))).toBe(false)
      podman(ours, 'images')
      storage.close()
    } finally {
      ours.cleanup()
    }
  })

  it('refuses to delete an image a container uses', async () => {
    const ours = copyStore(main)
    try {
      podman(ours, 'create', '--name', 'c1', 'localhost/base:1', '/bin/true')
      const storage = await Storage.open(ours)
      await expect(storage.removeImage('localhost/base:1')).rejects.toBeInstanceOf(InUseError)
      expect((await storage.image('localhost/base:1')).id).toBeTruthy()
      storage.close()
    } finally {
      ours.cleanup()
    }
  })
})

describe('createLayer and createImage', () => {
  it('into an empty directory makes the store containers/storage makes, which podman then uses', async () => {
    const root = path.join(dir, 'empty-root')
    fs.mkdirSync(root)
    const storage = await Storage.open({ root })
    const layer = await storage.createLayer(rootfsTar('empty-root', 'e'))
    storage.close()
    for (const lock of ['storage.lock', 'userns.lock', 'overlay-layers/layers.lock', 'overlay-images/images.lock', 'overlay-containers/containers.lock']) {
      expect(fs.statSync(path.join(root, lock)).isFile(), lock).toBe(true)
    }
    expect(fs.readFileSync(path.join(root, 'overlay', '.has-mount-program'), 'utf8')).toBe('false')
    const store = { root, runroot: path.join(dir, 'empty-root-run') }
    mounted.push(root)
    const layers = JSON.parse(fs.readFileSync(path.join(root, 'overlay-layers', 'layers.json'), 'utf8')) as { id: string }[]
    expect(layers.map((l) => l.id)).toEqual([layer.id])
    podman(store, 'images')
    // A root that is not there is created only when asked.
    await expect(Storage.open({ root: path.join(dir, 'not-there') })).rejects.toMatchObject({ code: 'ENOSTORE' })
    const created = await Storage.open({ root: path.join(dir, 'not-there'), create: true })
    expect(await created.listImages()).toEqual([])
    created.close()
  })

  it('stacks a layer from a stream on a parent, with whiteouts and opaque dirs as podman writes them', async () => {
    const ours = copyStore(main)
    try {
      const storage = await Storage.open(ours)
      const base = await storage.image('localhost/base:1')
      const root = path.join(dir, 'child-rootfs')
      fs.mkdirSync(path.join(root, 'etc'), { recursive: true })
      fs.mkdirSync(path.join(root, 'var/lib/data'), { recursive: true })
      fs.writeFileSync(path.join(root, 'etc/.wh.motd'), '')
      fs.writeFileSync(path.join(root, 'var/lib/data/.wh..wh..opq'), '')
      fs.writeFileSync(path.join(root, 'var/lib/data/new'), 'new\n')
      const tar = execFileSync('tar', ['-C', root, '-c', '.'], { maxBuffer: 1 << 26 })
      const { Readable } = await import('node:stream')
      const layer = await storage.createLayer(Readable.from([tar]), { parent: base.topLayer! })
      expect(layer.parent).toBe(base.topLayer)
      expect(layer.diffDigest).toBe(`sha256:${sha256(tar)}`)
      const diff = path.join(ours.root, 'overlay', layer.id, 'diff')
      const whiteout = fs.lstatSync(path.join(diff, 'etc/motd'))
      expect(whiteout.isCharacterDevice() && whiteout.rdev === 0).toBe(true)
      expect(execFileSync('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', path.join(diff, 'var/lib/data')]).toString()).toBe('y')
      expect(await exported(storage, layer.id)).toBe(sha256(tar))

      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [base.topLayer, layer.id].map((id) => `sha256:${id}`) } }))
      const image = await storage.createImage({
        names: ['stacked'],
        topLayer: layer.id,
        bigData: [{ key: `sha256:${sha256(config)}`, data: config }, { key: 'manifest', data: Buffer.from('{"schemaVersion":2}') }],
      })
      expect(image.names).toEqual(['localhost/stacked:latest'])
      // podman's merged view: the whiteout hides motd, the opaque dir hides file1..3.
      const mount = podman(ours, 'image', 'mount', 'localhost/stacked:latest').trim()
      try {
        expect(fs.existsSync(path.join(mount, 'etc/motd'))).toBe(false)
        expect(fs.readdirSync(path.join(mount, 'var/lib/data'))).toEqual(['new'])
        expect(fs.existsSync(path.join(mount, 'bin/busybox'))).toBe(true)
      } finally {
        podman(ours, 'image', 'unmount', 'localhost/stacked:latest')
      }
      await expect(storage.createLayer(Readable.from([Buffer.from('not a tar at all')]))).rejects.toBeInstanceOf(InvalidArgumentError)
      expect((await storage.listLayers()).filter((l) => l.id !== layer.id && !l.readOnly).length).toBe(records(main, 'layers').length)
      storage.close()
    } finally {
      ours.cleanup()
    }
  })
})

describe('CLI write verbs', () => {
  it('import, tag, untag, pull and rmi change the store as podman sees it; bad input exits non-zero', async () => {
    const store = emptyStore('cli')
    const tar = rootfsTar('cli', 'c')
    const imported = cliOn(store, ['--json', 'import', tar, 'cli-base:1'])
    expect(imported.status).toBe(0)
    const { imageId } = JSON.parse(imported.stdout) as { imageId: string }
    expect(cliOn(store, ['tag', 'cli-base:1', 'cli-base:2', 'quay.io/x/y:3']).status).toBe(0)
    expect(cliOn(store, ['untag', imageId, 'cli-base:1']).status).toBe(0)
    const names = () => (JSON.parse(podman(store, 'image', 'inspect', imageId))[0] as { RepoTags: string[] }).RepoTags.sort()
    expect(names()).toEqual(['localhost/cli-base:2', 'quay.io/x/y:3'])
    const layout = path.join(dir, 'cli-layout')
    skopeo('copy', '--quiet', storageRef(main, 'localhost/base:1'), `oci:${layout}:base`)
    const pulled = cliOn(store, ['--json', 'pull', `oci:${layout}:base`, 'pulled:1'])
    expect(pulled.status).toBe(0)
    expect(JSON.parse(podman(store, 'image', 'inspect', 'localhost/pulled:1'))[0].Id).toBe(JSON.parse(pulled.stdout).imageId)
    expect(cliOn(store, ['rmi', 'localhost/pulled:1', 'cli-base:2']).status).toBe(0)
    expect(cliOn(store, ['rmi', 'quay.io/x/y:3']).stdout).toContain('Deleted')
    expect(podman(store, 'images', '-q').trim()).toBe('')
    expect(fs.readdirSync(path.join(store.root, 'overlay')).filter((n) => n !== 'l' && !n.startsWith('.'))).toEqual([])

    const missing = cliOn(store, ['rmi', 'nope'])
    expect(missing.status).toBe(1)
    expect(missing.stderr).toContain('ENOIMAGE')
    expect(cliOn(store, ['import', path.join(dir, 'no-such.tar')]).status).toBe(1)
    expect(cliOn(store, ['pull', 'nosuch:thing']).stderr).toContain('EINVAL')
    expect(cliOn(store, ['tag', 'only-one-arg']).status).toBe(2)
  })
})
