/**
 * Copy to an OCI image layout, verified by the real skopeo: `skopeo inspect oci:` reads it, and
 * `skopeo copy oci: containers-storage:` into a fresh store gives the same image ID and layer
 * diff digests — for uncompressed, gzip and zstd layers.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CorruptError, InvalidArgumentError, Storage } from '../ts/index'
import { cliOn, copyStore, main, storageConf } from './helpers'

let storage: Storage
let dir: string
beforeAll(async () => {
  storage = await Storage.open(main)
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-oci-'))
})
afterAll(() => {
  // containers/storage leaves each store's overlay/ bind-mounted on itself after skopeo's copy.
  for (const store of fs.readdirSync(dir).filter((n) => n.startsWith('store-'))) {
    execFileSync('umount', [path.join(dir, store, 'root', 'overlay')], { stdio: 'ignore' })
  }
  fs.rmSync(dir, { recursive: true, force: true })
})

const env = { ...process.env, CONTAINERS_STORAGE_CONF: storageConf }
const skopeo = (...args: string[]) => execFileSync('skopeo', args, { env, maxBuffer: 1 << 26 }).toString()

/** Imports `oci:layout:name` into a new store with skopeo and opens it with cstor. */
async function importWithSkopeo(layout: string, name: string): Promise<Storage> {
  const store = fs.mkdtempSync(path.join(dir, 'store-'))
  skopeo('copy', '--quiet', `oci:${layout}:${name}`, `containers-storage:[overlay@${store}/root+${store}/run]localhost/imported:${name}`)
  return Storage.open({ root: `${store}/root`, runroot: `${store}/run` })
}

describe('copy to an OCI layout', () => {
  for (const [ref, compression] of [
    ['localhost/app:1', 'none'],
    ['quay.io/cstor/formats:1', 'gzip'],
    ['localhost/chain:55', 'zstd'],
    ['localhost/app:1', 'zstd'],
  ] as const) {
    it(`${ref}, ${compression}: skopeo reads it and imports the same image`, async () => {
      const image = await storage.image(ref)
      const layout = path.join(dir, `layout-${compression}`)
      const name = ref.replace(/[/:]/g, '-')
      const result = await image.copyToOci(layout, { compression, refName: name })
      const layers = (await image.layers()).reverse()
      expect(result.layers).toBe(layers.length)

      const inspected = JSON.parse(skopeo('inspect', `oci:${layout}:${name}`))
      expect(inspected.Digest).toBe(result.manifestDigest)
      // Uncompressed, the blobs are those the stored manifest names: it is kept byte for byte.
      if (compression === 'none') expect(result.manifestDigest).toBe(image.digest)
      if (compression === 'none') expect(inspected.Layers).toEqual(layers.map((l) => l.diffDigest))
      const raw = JSON.parse(skopeo('inspect', '--raw', `oci:${layout}:${name}`))
      expect(raw.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual(
        layers.map(() => `application/vnd.oci.image.layer.v1.tar${compression === 'none' ? '' : `+${compression}`}`),
      )

      const imported = await importWithSkopeo(layout, name)
      const copy = await imported.image(`localhost/imported:${name}`)
      expect(copy.id).toBe(image.id)
      expect((await copy.layers()).map((l) => l.diffDigest)).toEqual((await image.layers()).map((l) => l.diffDigest))
      imported.close()
    })
  }

  it('appends to a layout, replaces an entry of the same name, reuses blobs, leaves no temp files', async () => {
    const layout = path.join(dir, 'append')
    const app = await storage.image('localhost/app:1')
    const sibling = await storage.image('localhost/sibling:latest')
    const first = await app.copyToOci(layout, { refName: 'app' })
    expect(first.blobsReused).toBe(0)
    const second = await sibling.copyToOci(layout, { refName: 'sibling' })
    expect(second.blobsReused).toBe(1) // the shared base layer
    const again = await app.copyToOci(layout, { refName: 'app' })
    expect(again.bytesWritten).toBe(0)
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'))
    expect(index.manifests.map((m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name'])).toEqual([
      'sibling',
      'app',
    ])
    expect(JSON.parse(fs.readFileSync(path.join(layout, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' })
    const leftovers = [...fs.readdirSync(layout), ...fs.readdirSync(path.join(layout, 'blobs', 'sha256'))].filter((n) => n.startsWith('.'))
    expect(leftovers).toEqual([])
    expect(JSON.parse(skopeo('inspect', `oci:${layout}:sibling`)).Digest).toBe(second.manifestDigest)
  })

  it('a damaged layer fails the copy with ECORRUPT and leaves the index and blobs as they were', async () => {
    const store = copyStore(main)
    try {
      const copy = await Storage.open(store)
      const image = await copy.image('localhost/app:1')
      const top = (await image.layers())[0]
      const layout = path.join(dir, 'damaged')
      await (await copy.image('localhost/base:1')).copyToOci(layout, { refName: 'base' })
      const indexBefore = fs.readFileSync(path.join(layout, 'index.json'))
      const blobsBefore = fs.readdirSync(path.join(layout, 'blobs', 'sha256')).sort()
      fs.appendFileSync(path.join(store.root, 'overlay', top.id, 'diff', 'app', 'conf', 'new.conf'), 'x')
      await expect(image.copyToOci(layout, { refName: 'app' })).rejects.toBeInstanceOf(CorruptError)
      expect(fs.readFileSync(path.join(layout, 'index.json'))).toEqual(indexBefore)
      // Blobs of the layers below may have been added (unreferenced, harmless); no temp file.
      const blobs = fs.readdirSync(path.join(layout, 'blobs', 'sha256'))
      expect(blobsBefore.every((b) => blobs.includes(b))).toBe(true)
      expect([...blobs, ...fs.readdirSync(layout)].filter((n) => n.startsWith('.'))).toEqual([])
      copy.close()
    } finally {
      store.cleanup()
    }
  })

  it('platform: the image must be the one asked for', async () => {
    const image = await storage.image('localhost/base:1')
    const { platform } = await image.inspect()
    const layout = path.join(dir, 'platform')
    await expect(image.copyToOci(layout, { platform: 'linux/s390x' })).rejects.toBeInstanceOf(InvalidArgumentError)
    const copied = await image.copyToOci(layout, { platform: `${platform.os}/${platform.architecture}`, refName: 'base' })
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'))
    expect(index.manifests[0]).toMatchObject({ digest: copied.manifestDigest, platform: { os: platform.os, architecture: platform.architecture } })
  })

  it('CLI: copy <ref> oci:DIR:NAME with --compress and --json; bad destinations are usage errors', () => {
    const layout = path.join(dir, 'cli')
    const run = cliOn(main, ['copy', 'localhost/base:1', `oci:${layout}:base`, '--compress', 'gzip', '--json'])
    expect(run.status, run.stderr).toBe(0)
    const out = JSON.parse(run.stdout)
    expect(out).toMatchObject({ destination: `oci:${layout}:base`, layers: 1 })
    expect(JSON.parse(skopeo('inspect', `oci:${layout}:base`)).Digest).toBe(out.manifestDigest)
    expect(cliOn(main, ['copy', 'localhost/base:1', `oci:${layout}`, '--compress', 'lz4']).status).toBe(2)
  })
})
