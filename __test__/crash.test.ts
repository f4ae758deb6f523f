/**
 * Crash safety and concurrency. A writer killed with SIGKILL at random points (pull, import,
 * tag, untag, rmi in a loop) must leave a store that podman reads every time and whose images
 * cstor reads whole; the next write cleans up what the killed one left. podman and cstor
 * writing to one store at once must lose nothing.
 */
import { execFileSync, spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Storage } from '../ts/index'
import { main, repo, storageConf, type FixtureStore } from './helpers'

const env = { ...process.env, CONTAINERS_STORAGE_CONF: storageConf }
const KILLS = 60
let dir: string
let layout: string
let tar: string

function podman(store: FixtureStore, ...args: string[]): string {
  return execFileSync('podman', ['--root', store.root, '--runroot', store.runroot, '--storage-driver', 'overlay', ...args], {
    env,
    maxBuffer: 1 << 28,
  }).toString()
}

function freshStore(name: string): FixtureStore {
  const store = { root: path.join(dir, name, 'root'), runroot: path.join(dir, name, 'run') }
  podman(store, 'images')
  return store
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-crash-'))
  layout = path.join(dir, 'layout')
  execFileSync('skopeo', ['copy', '--quiet', `containers-storage:[overlay@${main.root}+${main.runroot}]localhost/app:1`, `oci:${layout}:app`], { env })
  const rootfs = path.join(dir, 'rootfs')
  fs.mkdirSync(path.join(rootfs, 'data'), { recursive: true })
  for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(rootfs, 'data', `f${i}`), crypto.randomBytes(4096))
  tar = path.join(dir, 'rootfs.tar')
  execFileSync('tar', ['-C', rootfs, '-cf', tar, '.'])
})
afterAll(() => {
  for (const name of fs.readdirSync(dir)) execFileSync('sh', ['-c', `umount ${path.join(dir, name, 'root', 'overlay')} 2>/dev/null || true`])
  fs.rmSync(dir, { recursive: true, force: true })
})

/** Every image cstor lists reads whole: manifest, config, and each layer's record and files. */
async function everyImageWhole(store: FixtureStore): Promise<string[]> {
  const storage = await Storage.open(store)
  try {
    const images = await storage.listImages()
    for (const image of images) {
      const details = await image.inspect()
      expect(details.layers.length).toBe((details.config.rootfs as { diff_ids: string[] }).diff_ids.length)
    }
    return images.map((i) => i.id).sort()
  } finally {
    storage.close()
  }
}

async function killedAfter(store: FixtureStore, ms: number): Promise<void> {
  const child = spawn(process.execPath, [path.join(repo, '__test__/fixtures/write-loop.mjs'), store.root, store.runroot, layout, tar], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const outcome = await Promise.race([exited, new Promise<'timer'>((resolve) => setTimeout(() => resolve('timer'), ms))])
  if (outcome !== 'timer') throw new Error(`the writer stopped by itself (${outcome}): ${stderr}`)
  child.kill('SIGKILL')
  await exited
}

describe('a writer killed at random points', () => {
  it(`leaves a store podman reads, ${KILLS} times, and the next write cleans up`, async () => {
    const store = freshStore('killed')
    let sawDebris = 0
    for (let kill = 0; kill < KILLS; kill++) {
      await killedAfter(store, 150 + Math.floor(Math.random() * 700))
      const layersJson = path.join(store.root, 'overlay-layers/layers.json')
      // (A writer killed before its first write leaves no layers.json at all.)
      const left = (fs.existsSync(layersJson) ? JSON.parse(fs.readFileSync(layersJson, 'utf8')) : []) as { flags?: { incomplete?: boolean } }[]
      if (left.some((l) => l.flags?.incomplete)) sawDebris++
      // podman reads the store as the kill left it (and deletes incomplete layers, as it does)...
      const listed = [...new Set(podman(store, 'images', '--all', '--no-trunc', '--format', '{{.ID}}').split('\n').filter(Boolean))]
      // ...and cstor sees the same images, none of them half-written.
      expect(await everyImageWhole(store)).toEqual(listed.map((id) => id.replace('sha256:', '')).sort())
    }
    // The next write finishes what the killed ones left: no incomplete layer, no temp file.
    const storage = await Storage.open(store)
    await storage.import(tar, { name: 'localhost/after:1' })
    const layers = JSON.parse(fs.readFileSync(path.join(store.root, 'overlay-layers/layers.json'), 'utf8')) as { id: string; flags?: { incomplete?: boolean } }[]
    expect(layers.filter((l) => l.flags?.incomplete)).toEqual([])
    for (const sub of ['overlay-layers', 'overlay-images']) {
      expect(fs.readdirSync(path.join(store.root, sub)).filter((n) => n.startsWith('.tmp-'))).toEqual([])
    }
    // Every layer left is whole: it exports to its recorded digest.
    for (const layer of await storage.listLayers()) {
      const file = path.join(dir, 'layer.tar')
      await layer.exportToFile(file)
      expect(`sha256:${crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')}`).toBe(layer.diffDigest)
    }
    const report = await storage.verify()
    expect(report.findings.filter((f) => f.severity === 'error')).toEqual([])
    storage.close()
    podman(store, 'images')
    console.log(`${KILLS} kills; ${sawDebris} left an incomplete layer behind (podman and the next write delete those)`)
  }, 300_000)
})

describe('podman and cstor writing one store at once', () => {
  it('loses nothing', async () => {
    const store = freshStore('concurrent')
    const rounds = 6
    const podmanTars: string[] = []
    for (let i = 0; i < rounds; i++) {
      const file = path.join(dir, `podman-${i}.tar`)
      const root = path.join(dir, `podman-rootfs-${i}`)
      fs.mkdirSync(root, { recursive: true })
      fs.writeFileSync(path.join(root, 'id'), `podman ${i}\n`)
      execFileSync('tar', ['-C', root, '-cf', file, '.'])
      podmanTars.push(file)
    }
    const podmanSide = (async () => {
      for (let i = 0; i < rounds; i++) {
        await new Promise<void>((resolve, reject) => {
          const child = spawn('podman', ['--root', store.root, '--runroot', store.runroot, '--storage-driver', 'overlay', 'import', '--quiet', podmanTars[i], `localhost/by-podman:${i}`], { env, stdio: 'ignore' })
          child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`podman import exited ${code}`))))
        })
      }
    })()
    const storage = await Storage.open(store)
    const cstorSide = (async () => {
      for (let i = 0; i < rounds; i++) {
        await storage.pull(`oci:${layout}:app`, { name: `localhost/by-cstor:${i}` })
        await storage.tag(`localhost/by-cstor:${i}`, `localhost/by-cstor-tag:${i}`)
      }
    })()
    await Promise.all([podmanSide, cstorSide])
    const names = (JSON.parse(podman(store, 'images', '--format', 'json')) as { Names?: string[] }[]).flatMap((i) => i.Names ?? [])
    for (let i = 0; i < rounds; i++) {
      expect(names).toContain(`localhost/by-podman:${i}`)
      expect(names).toContain(`localhost/by-cstor:${i}`)
      expect(names).toContain(`localhost/by-cstor-tag:${i}`)
    }
    for (const layer of await storage.listLayers()) {
      const file = path.join(dir, 'c.tar')
      await layer.exportToFile(file)
      expect(`sha256:${crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')}`).toBe(layer.diffDigest)
    }
    const report = await storage.verify()
    expect(report.findings.filter((f) => f.severity !== 'info')).toEqual([])
    storage.close()
  }, 300_000)
})
