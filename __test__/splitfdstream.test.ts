/**
 * splitfdstream: every fixture layer (podman 4.3's and podman 5.8's stores) encoded as a stream
 * plus fds rebuilds its exact tar, both through cstor and through an independent decoder written
 * here from the format's definition.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assembleSplitFdStream, CorruptError, Storage, type Layer, type SplitFdStream } from '../ts/index'
import { assembledAndClosed, openFds, podmanFixtures } from './helpers'

let dir: string
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-sfd-'))
})
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`
const closeAll = (s: SplitFdStream) => [s.stream, ...s.content].forEach((fd) => fs.closeSync(fd))

/** Decodes a splitfdstream by the format's definition; returns the bytes and the fd sizes used. */
function decode(s: SplitFdStream): { bytes: Buffer; fdSizes: number[] } {
  const stream = fs.readFileSync(`/proc/self/fd/${s.stream}`)
  const pieces: Buffer[] = []
  const fdSizes: number[] = []
  for (let at = 0; at < stream.length; ) {
    const prefix = stream.readBigInt64LE(at)
    at += 8
    if (prefix < 0n) {
      const n = Number(-prefix)
      pieces.push(stream.subarray(at, at + n))
      at += n
    } else {
      const content = fs.readFileSync(`/proc/self/fd/${s.content[Number(prefix) - 1]}`)
      fdSizes.push(content.length)
      pieces.push(content)
    }
  }
  return { bytes: Buffer.concat(pieces), fdSizes }
}

describe.each(podmanFixtures)('layers of the store $name wrote', ({ store }) => {
  let storage: Storage
  let layers: Layer[]
  beforeAll(async () => {
    storage = await Storage.open(store)
    layers = await storage.listLayers()
  })

  describe('splitfdstream', () => {
    it('every layer: stream + fds rebuild the exact tar, decoded here and by cstor; no fd leaks', async () => {
      const before = openFds()
      for (const layer of layers) {
        const s = await layer.splitFdStream()
        try {
          const { bytes, fdSizes } = decode(s)
          expect(sha256(bytes), layer.id).toBe(layer.diffDigest)
          expect(fdSizes.length).toBe(s.content.length)
          expect(fdSizes.every((size) => size > 4096)).toBe(true)
        } catch (e) {
          closeAll(s)
          throw e
        }
        expect(sha256(await assembledAndClosed(s, dir)), layer.id).toBe(layer.diffDigest)
      }
      expect(openFds()).toBe(before)
    })

    it('the inline threshold decides which bodies travel as fds', async () => {
      const formats = await (await storage.image('quay.io/cstor/formats:1')).layers()
      const layer = formats.find((l) => (l.diffSize ?? 0) > 1 << 20)!
      const [all, none] = [await layer.splitFdStream({ inlineThreshold: 0 }), await layer.splitFdStream({ inlineThreshold: 1 << 30 })]
      try {
        expect(all.content.length).toBeGreaterThan(0)
        expect(decode(all).fdSizes.every((size) => size > 0)).toBe(true)
        expect(none.content).toEqual([])
        expect(sha256(decode(all).bytes)).toBe(sha256(decode(none).bytes))
      } finally {
        closeAll(all)
        closeAll(none)
      }
    })

    it('a stream naming an fd it was not given is ECORRUPT', async () => {
      const formats = await (await storage.image('quay.io/cstor/formats:1')).layers()
      const s = await formats[0].splitFdStream({ inlineThreshold: 0 })
      const devNull = fs.openSync('/dev/null', 'w')
      try {
        expect(s.content.length).toBeGreaterThan(0)
        await expect(assembleSplitFdStream(s.stream, s.content.slice(1), devNull)).rejects.toBeInstanceOf(CorruptError)
        const garbage = path.join(dir, 'garbage')
        fs.writeFileSync(garbage, Buffer.from([0xff, 0xff, 0xff]))
        const fd = fs.openSync(garbage, 'r')
        await expect(assembleSplitFdStream(fd, [], devNull)).rejects.toThrow(/ends inside a chunk prefix/)
        fs.closeSync(fd)
      } finally {
        closeAll(s)
        fs.closeSync(devNull)
      }
    })
  })
})
