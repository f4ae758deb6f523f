/**
 * A store cstor creates from nothing, compared field by field with the store podman 5.8 (Debian
 * sid, scripts/podman5) creates from nothing for the same pulls and import: the skeleton
 * (directories, lock files, modes), every layer directory (diff/ metadata, link, lower,
 * lower-layers, work, merged, empty), the tar-splits, layers.json and images.json records and the
 * big data. Only what podman makes up at write time may differ: times of writing, the random link
 * names, layer records' `created`. Then podman 5.8's `system check` must find nothing on ours that
 * it does not find on its own, and podman 4.3 and 5.8 must list, mount and save our images.
 */
import { execFileSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Storage } from '../ts/index'
import { cli, main, repo, storageConf, type FixtureStore } from './helpers'
import { inPodman5 } from './podman5'
import { layerPicture } from './layer-picture'

let dir: string
let ours: FixtureStore
let theirs: FixtureStore
/** Nanoseconds since the epoch when the writes began: later mtimes are times of writing. */
let writesBegan: bigint
const layouts: string[] = []

function podman5(store: FixtureStore, ...args: string[]): string {
  const result = inPodman5([dir], ['podman', '--root', store.root, '--runroot', store.runroot, '--storage-driver', 'overlay', ...args])
  if (result.status !== 0 && args[0] !== 'system') throw new Error(`podman 5 ${args.join(' ')}: ${result.stderr}`)
  return result.stdout + result.stderr
}

/** podman 4.3, with its own network backend: podman 5.8 recorded netavark in the root, which 4.3 lacks. */
function podman43(store: FixtureStore, ...args: string[]): string {
  const flags = ['--root', store.root, '--runroot', store.runroot, '--storage-driver', 'overlay', '--network-backend', 'cni']
  return execFileSync('podman', [...flags, ...args], {
    env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf },
    maxBuffer: 1 << 28,
  }).toString()
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-p5w-'))
  ours = { root: path.join(dir, 'ours', 'root'), runroot: path.join(dir, 'ours', 'run') }
  theirs = { root: path.join(dir, 'theirs', 'root'), runroot: path.join(dir, 'theirs', 'run') }
  const make = path.join(repo, '__test__', 'fixtures', 'make-oci.mjs')
  for (const kind of ['formats', 'chain', 'whiteouts']) {
    execFileSync(process.execPath, [make, kind, path.join(dir, kind)])
    layouts.push(path.join(dir, kind))
  }
  // podman's builds (whiteouts as podman build writes them, opaque dirs, hardlinks) as layouts.
  for (const image of ['localhost/app:1', 'localhost/sibling:latest']) {
    const layout = path.join(dir, image.split(/[/:]/)[1])
    execFileSync('skopeo', ['copy', '--quiet', `containers-storage:[overlay@${main.root}+${main.runroot}]${image}`, `oci:${layout}`], {
      env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf },
    })
    layouts.push(layout)
  }
  const rootfs = path.join(dir, 'rootfs')
  fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true })
  fs.writeFileSync(path.join(rootfs, 'etc', 'motd'), 'imported\n')
  fs.symlinkSync('motd', path.join(rootfs, 'etc', 'greeting'))
  execFileSync('tar', ['-C', rootfs, '-cf', path.join(dir, 'rootfs.tar'), '.'])

  writesBegan = BigInt(Date.now() - 2000) * 1_000_000n
  for (const layout of layouts) {
    const result = cli(['--root', ours.root, '--runroot', ours.runroot, 'pull', `oci:${layout}`])
    expect(result.stderr).toBe('')
    podman5(theirs, 'pull', '--quiet', `oci:${layout}`)
  }
  expect(cli(['--root', ours.root, '--runroot', ours.runroot, 'import', path.join(dir, 'rootfs.tar'), 'localhost/imported:1']).status).toBe(0)
  podman5(theirs, 'import', '--quiet', path.join(dir, 'rootfs.tar'), 'localhost/imported:1')
}, 600_000)

afterAll(() => {
  for (const root of [ours?.root, theirs?.root]) if (root) execFileSync('sh', ['-c', `umount ${root}/overlay 2>/dev/null || true`])
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

/**
 * Every path of a store with its type and mode, not descending into layer directories, `l/` (whose
 * link names are random) or image big data: those are compared on their own.
 */
function skeleton(root: string): string[] {
  const found: string[] = []
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = path.join(rel, entry.name)
      const mode = (fs.lstatSync(path.join(root, child)).mode & 0o7777).toString(8)
      found.push(`${child} ${entry.isDirectory() ? 'dir' : entry.isFile() ? 'file' : 'other'} ${mode}`)
      if (entry.isDirectory() && !/^overlay\/([0-9a-f]{64}|l)$|^overlay-images\/[0-9a-f]{64}$/.test(child)) walk(child)
    }
  }
  walk('.')
  return found.sort()
}

/** What podman adds beside containers/storage's store: libpod's state and what its runs leave. */
const podmanOnly = (entry: string) =>
  /^(db\.sql|defaultNetworkBackend|libpod|volumes|overlay\/tempdirs|overlay-layers\/tmp)( |\/)/.test(entry) ||
  // The run root's cache of kernel probes, and the mount counts podman's layer store saves.
  /^overlay\/[^/ ]+-(true|false) |^overlay-layers\/mountpoints\.json /.test(entry)

describe('a store cstor creates from nothing (pulls of OCI layouts, an import)', () => {
  it('has the directories, lock files and modes podman 5.8 creates', () => {
    expect(skeleton(ours.root)).toEqual(skeleton(theirs.root).filter((entry) => !podmanOnly(entry)))
    expect(skeleton(ours.runroot)).toEqual(skeleton(theirs.runroot).filter((entry) => !podmanOnly(entry)))
    expect(fs.readFileSync(path.join(ours.root, 'overlay', '.has-mount-program'), 'utf8')).toBe('false')
  })

  it('writes every layer directory and tar-split as podman 5.8 does', () => {
    const ids = fs.readdirSync(path.join(theirs.root, 'overlay')).filter((n) => /^[0-9a-f]{64}$/.test(n))
    expect(ids.length).toBeGreaterThan(60)
    expect(fs.readdirSync(path.join(ours.root, 'overlay')).filter((n) => /^[0-9a-f]{64}$/.test(n)).sort()).toEqual(ids.sort())
    for (const id of ids) {
      expect(layerPicture(ours.root, id, writesBegan), id).toEqual(layerPicture(theirs.root, id, writesBegan))
      const tarSplit = (root: string) => execFileSync('zcat', [path.join(root, 'overlay-layers', `${id}.tar-split.gz`)])
      expect(tarSplit(ours.root).equals(tarSplit(theirs.root)), `tar-split of ${id}`).toBe(true)
    }
  })

  it('writes the records and big data podman 5.8 writes', () => {
    const records = (s: FixtureStore, file: 'layers' | 'images') =>
      (JSON.parse(fs.readFileSync(path.join(s.root, `overlay-${file}`, `${file}.json`), 'utf8')) as Record<string, unknown>[])
        .map(({ created, ...rest }) => (file === 'images' ? { created, ...rest } : rest))
        .sort((a, b) => String(a.id).localeCompare(String(b.id)))
    expect(records(ours, 'layers')).toEqual(records(theirs, 'layers'))
    expect(records(ours, 'images')).toEqual(records(theirs, 'images'))
    for (const image of records(theirs, 'images')) {
      const bigData = path.join('overlay-images', String(image.id))
      for (const file of fs.readdirSync(path.join(theirs.root, bigData))) {
        expect(fs.readFileSync(path.join(ours.root, bigData, file)), file).toEqual(fs.readFileSync(path.join(theirs.root, bigData, file)))
      }
    }
  })

  it('gets no finding from podman 5.8 system check that podman 5.8 does not get for its own writes', () => {
    // Layer IDs are the same in both stores; only times of writing differ in the messages.
    const findings = (store: FixtureStore) =>
      new Set(
        podman5(store, 'system', 'check')
          .split('\n')
          .filter((line) => line.trim().startsWith('* '))
          .map((line) => line.replace(/0x([0-9a-f]+)/g, (m, hex: string) => (BigInt(`0x${hex}`) * 1_000_000_000n >= writesBegan ? 'written' : m))),
      )
    const theirFindings = findings(theirs)
    const ourFindings = findings(ours)
    const extra = [...ourFindings].filter((f) => !theirFindings.has(f))
    console.log(`podman 5.8 system check: ${theirFindings.size} findings on its own writes, ${ourFindings.size} on cstor's, ${extra.length} only on cstor's`)
    expect(extra).toEqual([])
  })

  it('is read by podman 4.3 and 5.8 (list, mount, save) and exports every layer bit for bit', async () => {
    const storage = await Storage.open(ours)
    const images = await storage.listImages()
    expect(images.length).toBe(layouts.length + 1)
    const imported = images.find((i) => i.names.includes('localhost/imported:1'))!
    for (const [name, run] of [
      ['5.8', (...args: string[]) => podman5(ours, ...args)],
      ['4.3', (...args: string[]) => podman43(ours, ...args)],
    ] as const) {
      expect(run('images', '--quiet', '--no-trunc').split('\n').filter(Boolean).sort(), name).toEqual(images.map((i) => `sha256:${i.id}`).sort())
      for (const image of images) {
        const saved = path.join(dir, `saved-${name}.tar`)
        run('save', '--format', 'oci-archive', '-o', saved, image.id)
        expect(fs.statSync(saved).size, `${name} save ${image.id}`).toBeGreaterThan(0)
        fs.rmSync(saved)
      }
    }
    // Mounted by podman 4.3 here, and by podman 5.8 inside its mount namespace.
    const mount = podman43(ours, 'image', 'mount', imported.id).trim()
    expect(fs.readFileSync(path.join(mount, 'etc', 'motd'), 'utf8')).toBe('imported\n')
    podman43(ours, 'image', 'unmount', imported.id)
    const flags = `--root ${ours.root} --runroot ${ours.runroot} --storage-driver overlay`
    const read = inPodman5([dir], ['sh', '-c', `m=$(podman ${flags} image mount ${imported.id}) && cat "$m/etc/motd" && podman ${flags} image unmount ${imported.id} >/dev/null`])
    expect(read.stdout, read.stderr).toBe('imported\n')
    for (const layer of await storage.listLayers()) {
      const file = path.join(dir, 'layer.tar')
      await layer.exportToFile(file)
      const digest = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')
      expect(`sha256:${digest}`, layer.id).toBe(layer.diffDigest)
    }
    storage.close()
  }, 300_000)
})
