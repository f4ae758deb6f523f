/**
 * The store podman 5.8 writes with `use_composefs` (Debian sid's composefs 1.0.8): `localhost/chunked:1`
 * pulled partially, each layer's `diff/` holding content objects named by digest and its tree in
 * `composefs-data/composefs.blob`. cstor lists and inspects it, exports every layer bit for bit
 * (bodies found through the layer's TOC), gives TOCs, verifies content (metadata noted as not
 * checked), and extracts the image — each layer's tree read from its EROFS blob — as podman 5.8's
 * own mount of the same store shows it.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Storage, type Layer } from '../ts/index'
import { cliOn, composefsStore, copyStore, podman5MergedCopy, podman5Store } from './helpers'
import { inPodman5, podman5Json } from './podman5'
import { snapshot } from './tree'

let storage: Storage
let layers: Layer[]
let dir: string
beforeAll(async () => {
  storage = await Storage.open(composefsStore)
  layers = await (await storage.image('localhost/chunked:1')).layers()
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-composefs-'))
})
afterAll(() => {
  storage.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

async function exported(layer: Layer): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of layer.export()) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

describe('a composefs store podman 5.8 wrote', () => {
  it('is what the fixture says: every layer a composefs one, pulled partially', () => {
    expect(layers).toHaveLength(3)
    for (const layer of layers) {
      expect(layer.tocDigest).toMatch(/^sha256:/)
      expect(fs.existsSync(path.join(composefsStore.root, 'overlay', layer.id, 'composefs-data', 'composefs.blob'))).toBe(true)
      expect(fs.existsSync(path.join(composefsStore.root, 'overlay', layer.id, 'diff', 'gnu'))).toBe(false)
    }
  })

  it('lists and inspects as podman 5.8 does', async () => {
    const [podman] = podman5Json<{ Id: string; RootFS: { Layers: string[] } }[]>(composefsStore, ['image', 'inspect', 'localhost/chunked:1'])
    const inspect = JSON.parse(cliOn(composefsStore, ['image', 'inspect', 'localhost/chunked:1', '--json']).stdout)
    expect(inspect.image.id).toBe(podman.Id)
    expect(inspect.layers.map((l: { diffDigest: string }) => l.diffDigest).reverse()).toEqual(podman.RootFS.Layers)
  })

  it('exports every layer bit for bit: the same tar as the layer podman 5.8 pulled without composefs', async () => {
    const plain = await Storage.open(podman5Store)
    const plainLayers = await (await plain.image('localhost/chunked:1')).layers()
    for (const [i, layer] of layers.entries()) {
      const tar = await exported(layer)
      expect(sha256(tar), layer.id).toBe(layer.diffDigest)
      expect(tar.equals(await exported(plainLayers[i])), layer.id).toBe(true)
    }
    plain.close()
  })

  it('gives layer TOCs with the content digests of the objects', async () => {
    const toc = await layers.at(-1)!.toc({ digests: true })
    const big = toc.entries.find((e) => e.name === 'gnu/big.bin')!
    expect(big.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    const object = path.join(composefsStore.root, 'overlay', layers.at(-1)!.id, 'diff', big.digest!.slice(7, 9), big.digest!.slice(9))
    expect(sha256(fs.readFileSync(object))).toBe(big.digest)
  })

  it('verifies clean, full or quick: content through the TOC, metadata read from the EROFS blobs', async () => {
    for (const quick of [false, true]) {
      const report = await storage.verify({ quick })
      expect(report.clean).toBe(true)
      expect(report.findings.filter((f) => f.severity !== 'info')).toEqual([])
      expect(report.bytes).toBe(quick ? 0 : layers.reduce((sum, l) => sum + (l.diffSize ?? 0), 0))
    }
  })

  it('a content object edited in place is a CRC error naming the object', async () => {
    const copy = copyStore(composefsStore)
    try {
      const big = (await layers.at(-1)!.toc({ digests: true })).entries.find((e) => e.name === 'gnu/big.bin')!
      const object = path.join('overlay', layers.at(-1)!.id, 'diff', big.digest!.slice(7, 9), big.digest!.slice(9))
      const fd = fs.openSync(path.join(copy.root, object), 'r+')
      fs.writeSync(fd, Buffer.from('X'), 0, 1, 1000)
      fs.closeSync(fd)
      const damaged = await Storage.open(copy)
      const report = await damaged.verify()
      damaged.close()
      expect(report.findings.filter((f) => f.kind === 'layer-content-modified').map((f) => [f.subject, f.message])).toEqual([
        [layers.at(-1)!.id, expect.stringMatching(new RegExp(`^${object}: CRC-64 mismatch`))],
      ])
    } finally {
      copy.cleanup()
    }
  })

  it('a blob rewritten with a changed mode is a metadata finding naming the path; a truncated one is corrupt', async () => {
    const copy = copyStore(composefsStore)
    try {
      const layer = layers.at(-1)!
      const blob = path.join(copy.root, 'overlay', layer.id, 'composefs-data', 'composefs.blob')
      const dumped = inPodman5([copy.root], ['composefs-info', 'dump', blob])
      expect(dumped.status, dumped.stderr).toBe(0)
      const line = dumped.stdout.split('\n').find((l) => l.startsWith('/gnu/flavor '))!
      const edited = dumped.stdout.replace(line, line.replace(' 100644 ', ' 100600 '))
      fs.writeFileSync(path.join(copy.root, 'edited.dump'), edited)
      const made = inPodman5([copy.root], ['mkcomposefs', '--from-file', path.join(copy.root, 'edited.dump'), blob])
      expect(made.status, made.stderr).toBe(0)
      const damaged = await Storage.open(copy)
      const report = await damaged.verify({ quick: true })
      expect(report.findings.filter((f) => f.severity !== 'info').map((f) => [f.kind, f.subject, f.path])).toEqual([['layer-metadata-modified', layer.id, 'gnu/flavor']])
      fs.truncateSync(blob, 3000)
      const truncated = await damaged.verify({ quick: true })
      expect(truncated.clean).toBe(false)
      expect(truncated.findings.find((f) => f.subject === layer.id)?.message).toMatch(/composefs\.blob/)
      await expect((await damaged.image('localhost/chunked:1')).extract(path.join(dir, 'never'))).rejects.toMatchObject({ code: 'ECORRUPT' })
      expect(fs.existsSync(path.join(dir, 'never'))).toBe(false)
      damaged.close()
    } finally {
      copy.cleanup()
    }
  })

  it('extracts the image as podman 5.8 mounts it: the trees read from the EROFS blobs, contents from the objects', async () => {
    const target = path.join(dir, 'rootfs')
    const stats = await (await storage.image('localhost/chunked:1')).extract(target)
    const merged = path.join(dir, 'merged')
    podman5MergedCopy(composefsStore, 'localhost/chunked:1', merged)
    expect(snapshot(target)).toEqual(snapshot(merged))
    expect(stats.files).toBeGreaterThan(0)
    fs.rmSync(target, { recursive: true })
    fs.rmSync(merged, { recursive: true })
  })
})
