/**
 * Layer export: bit for bit against `diff-digest` and `tar-split asm` for every fixture layer
 * (GNU, PAX, ustar, hardlinks, long names, xattrs, whiteouts, empty and zero-filled files, a 55-layer
 * chain), through every output (fd, file, Node stream, CLI), and typed errors on damaged layers —
 * on the stores podman 4.3 and podman 5.8 wrote (5.8's with zstd:chunked layers pulled partially).
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CorruptError, Storage, type Layer } from '../ts/index'
import { cliOn, copyStore, openFds, podmanFixtures, settledFds } from './helpers'

describe.each(podmanFixtures)('layers $name wrote', ({ store, chunked }) => {
  let storage: Storage
  let layers: Layer[]
  beforeAll(async () => {
    storage = await Storage.open(store)
    layers = await storage.listLayers()
  })

  const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

  function tarSplitAsm(root: string, id: string): Buffer {
    return execFileSync(
      'tar-split',
      ['asm', '--input', path.join(root, 'overlay-layers', `${id}.tar-split.gz`), '--path', path.join(root, 'overlay', id, 'diff'), '--output', '-'],
      { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] },
    )
  }

  async function streamed(layer: Layer, verify = true): Promise<Buffer> {
    const chunks: Buffer[] = []
    for await (const chunk of layer.export({ verify })) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks)
  }

  const cleanups: (() => void)[] = []
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup()
  })

  describe('export is bit for bit', () => {
    it('every layer: the Node stream equals tar-split asm and hashes to diff-digest', async () => {
      expect(layers.length).toBeGreaterThan(55)
      expect(layers.filter((l) => l.tocDigest)).toHaveLength(chunked ? 3 : 0)
      for (const layer of layers) {
        const ours = await streamed(layer)
        expect(sha256(ours), layer.id).toBe(layer.diffDigest)
        expect(ours.equals(tarSplitAsm(store.root, layer.id)), layer.id).toBe(true)
      }
    })

    it('covers the tar formats and member kinds of the fixtures', async () => {
      const formats = await (await storage.image('quay.io/cstor/formats:1')).layers()
      const listing = formats.map((l) => execFileSync('tar', ['-tvf', '-'], { input: tarSplitAsm(store.root, l.id) }).toString()).join('\n')
      expect(listing).toMatch(/hello\.txt link to .*hardlink\.txt/)
      expect(listing).toMatch(/symlink -> hello\.txt/)
      expect(listing).toMatch(/c{90}\.txt/)
      expect(listing).toMatch(/\.wh\.empty/)
      expect(listing).toMatch(/ünïcödé/)
      const app = await (await storage.image('localhost/app:1')).layers()
      const appListing = execFileSync('tar', ['-tvf', '-'], { input: await streamed(app[0]) }).toString()
      expect(appListing).toMatch(/\.wh\.motd/)
      expect(appListing).toMatch(/\.wh\.\.wh\.\.opq/)
    })

    it('exportToFile and the CLI write the same bytes, verified or kernel-copied', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-export-'))
      cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
      const big = layers.reduce((a, b) => ((a.diffSize ?? 0) > (b.diffSize ?? 0) ? a : b))
      for (const verify of [true, false]) {
        const file = path.join(dir, `api-${verify}.tar`)
        const stats = await big.exportToFile(file, { verify })
        expect(stats.bytes).toBe(big.diffSize)
        expect(sha256(fs.readFileSync(file))).toBe(big.diffDigest)
        expect(sha256(await streamed(big, verify))).toBe(big.diffDigest)
      }
      const viaCli = cliOn(store, ['layer', 'export', big.id.slice(0, 12), '-o', path.join(dir, 'cli.tar'), '--json'])
      expect(viaCli.status, viaCli.stderr).toBe(0)
      expect(JSON.parse(viaCli.stdout).bytes).toBe(big.diffSize)
      expect(sha256(fs.readFileSync(path.join(dir, 'cli.tar')))).toBe(big.diffDigest)
      const stdout = execFileSync(process.execPath, ['dist/cli/main.js', '--root', store.root, 'layer', 'export', big.id], { maxBuffer: 1 << 30 })
      expect(sha256(stdout)).toBe(big.diffDigest)
      expect(fs.readdirSync(dir).sort()).toEqual(['api-false.tar', 'api-true.tar', 'cli.tar'])
    })
  })

  describe('layer.parts(): segments and body fds', () => {
    it('reassemble to the exported tar, each fd handed over once', async () => {
      const before = openFds()
      for (const layer of layers) {
        const pieces: Buffer[] = []
        for await (const part of layer.parts()) {
          if (part.kind === 'segment') pieces.push(part.data)
          else {
            expect(fs.fstatSync(part.fd).size).toBe(part.size)
            expect(part.crc).toMatch(/^[0-9a-f]{16}$/)
            pieces.push(fs.readFileSync(part.fd))
            fs.closeSync(part.fd)
          }
        }
        expect(sha256(Buffer.concat(pieces)), layer.id).toBe(layer.diffDigest)
      }
      expect(openFds()).toBe(before)
    })

    it('an iteration stopped early closes the fds it fetched but did not hand over', async () => {
      const formats = await (await storage.image('quay.io/cstor/formats:1')).layers()
      const many = formats.find((l) => (l.diffSize ?? 0) > 1 << 20)!
      const before = openFds()
      for await (const part of many.parts()) {
        if (part.kind === 'file') {
          fs.closeSync(part.fd)
          break
        }
      }
      // The producer drops the fds it had queued on its own thread, just after the cancel.
      expect(await settledFds(before)).toBe(before)
    })
  })

  describe('export of damaged layers fails with typed errors, leaving nothing behind', () => {
    async function damaged(damage: (root: string, layer: Layer, body: string) => void) {
      const copy = copyStore(store)
      cleanups.push(copy.cleanup)
      const copied = await Storage.open(copy)
      const formats = await (await copied.image('quay.io/cstor/formats:1')).layers()
      const layer = formats.at(-1)! // the gnu layer: big.bin, hello.txt, ...
      damage(copy.root, layer, path.join(copy.root, 'overlay', layer.id, 'diff', 'gnu', 'big.bin'))
      return layer
    }

    async function expectCorrupt(layer: Layer, pattern: RegExp, verify = true) {
      const file = path.join(os.tmpdir(), `cstor-damaged-${process.pid}.tar`)
      const err = await layer.exportToFile(file, { verify }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(CorruptError)
      expect((err as Error).message).toMatch(pattern)
      expect(fs.existsSync(file)).toBe(false)
      const streamErr = await streamed(layer, verify).catch((e: unknown) => e)
      expect(streamErr).toBeInstanceOf(CorruptError)
    }

    it('a file in diff/ edited in place: CRC mismatch', async () => {
      const layer = await damaged((_root, _layer, body) => {
        const fd = fs.openSync(body, 'r+')
        fs.writeSync(fd, Buffer.from('X'), 0, 1, 1000)
        fs.closeSync(fd)
      })
      await expectCorrupt(layer, /CRC-64 mismatch/)
    })

    it('a missing file, a truncated file, and a file replaced by a symlink out of the store', async () => {
      await expectCorrupt(await damaged((_r, _l, body) => fs.rmSync(body)), /cannot open/, false)
      await expectCorrupt(await damaged((_r, _l, body) => fs.truncateSync(body, 10)), /bytes, the tar-split recorded/, false)
      await expectCorrupt(
        await damaged((_r, _l, body) => {
          fs.rmSync(body)
          fs.symlinkSync('/etc/passwd', body)
        }),
        /cannot open/,
      )
    })

    function rewriteTarSplit(root: string, layer: Layer, edit: (lines: string[]) => string[]) {
      const file = path.join(root, 'overlay-layers', `${layer.id}.tar-split.gz`)
      const lines = execFileSync('gzip', ['-dc', file]).toString().split('\n').filter(Boolean)
      fs.writeFileSync(file, execFileSync('gzip', ['-c'], { input: edit(lines).join('\n') + '\n' }))
    }

    it('a tar-split name with .. or a bad JSON line', async () => {
      await expectCorrupt(
        await damaged((root, layer) =>
          rewriteTarSplit(root, layer, (lines) =>
            lines.map((l) => {
              const e = JSON.parse(l)
              if (e.type === 1 && e.size > 0) e.name = '../../../../../../etc/passwd'
              return JSON.stringify(e)
            }),
          ),
        ),
        /leaves the layer/,
      )
      await expectCorrupt(await damaged((root, layer) => rewriteTarSplit(root, layer, (lines) => [lines[0], '{"type":', ...lines.slice(1)])), /bad JSON/)
    })

    it('a truncated tar-split.gz', async () => {
      const layer = await damaged((root, l) => {
        const file = path.join(root, 'overlay-layers', `${l.id}.tar-split.gz`)
        fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2))
      })
      await expectCorrupt(layer, /gzip/)
    })
  })
})
