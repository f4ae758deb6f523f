/**
 * Sparse members, the one thing tar-split cannot rebuild: podman imports PAX sparse files (Go's
 * reader expands them and tar-split records the expanded file, dropping the sparse map), so such
 * layers exist, and `tar-split asm` gives back a tar whose digest is not the layer's. cstor must
 * never hand out such bytes: every export path fails before writing anything, with EUNSUPPORTED
 * naming the entry. cstor's own imports of such tars write what podman 5.8 writes (diff/ and
 * tar-split), and refuse GNU type S as podman does. Inputs: Go's archive/tar test files
 * (__test__/fixtures/sparse/README.md), imported by podman 4.3 and 5.8.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Storage, UnsupportedError, type Layer } from '../ts/index'
import { cliOn, storageConf, type FixtureStore } from './helpers'
import { layerPicture } from './layer-picture'
import { inPodman5 } from './podman5'

const inputs = path.join(__dirname, 'fixtures', 'sparse')
let dir: string
let store: FixtureStore
let storage: Storage

function podman(...args: string[]): string {
  return execFileSync('podman', ['--root', store.root, '--runroot', store.runroot, '--storage-driver', 'overlay', ...args], {
    env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf },
    stdio: ['ignore', 'pipe', 'pipe'],
  }).toString()
}

/** Each tar with the sparse entry cstor must name (the first sparse member) and its format. */
const sparseTars: [string, string, string][] = []

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-sparse-'))
  store = { root: path.join(dir, 'root'), runroot: path.join(dir, 'run') }
  // sparse-formats.tar holds a GNU type S member (which podman refuses) and then the PAX formats
  // 0.0 (at byte 3584), 0.1 (10240) and 1.0 (12800): its tails are tars of the PAX ones alone.
  const formats = fs.readFileSync(path.join(inputs, 'sparse-formats.tar'))
  for (const [offset, entry, format] of [
    [3584, 'sparse-posix-0.0', 'PAX GNU.sparse 0.0'],
    [10240, 'sparse-posix-0.1', 'PAX GNU.sparse 0.1'],
    [12800, 'sparse-posix-1.0', 'PAX GNU.sparse 1.0'],
  ] as const) {
    const file = path.join(dir, `from-${offset}.tar`)
    fs.writeFileSync(file, formats.subarray(offset))
    sparseTars.push([file, entry, format])
  }
  for (const name of ['pax-nil-sparse-data', 'pax-nil-sparse-hole']) {
    sparseTars.push([path.join(inputs, `${name}.tar`), 'sparse.db', 'PAX GNU.sparse 1.0'])
  }
  for (const [tar] of sparseTars) podman('import', '--quiet', tar, `localhost/${path.basename(tar, '.tar')}:1`)
  storage = await Storage.open(store)
})

afterAll(() => {
  storage?.close()
  execFileSync('sh', ['-c', `umount ${store.root}/overlay 2>/dev/null || true`])
  fs.rmSync(dir, { recursive: true, force: true })
})

async function layerOf(tar: string): Promise<Layer> {
  return (await (await storage.image(`localhost/${path.basename(tar, '.tar')}:1`)).layers())[0]
}

describe('a layer with a sparse member', () => {
  it("is one tar-split cannot rebuild: tar-split asm's tar is not the layer's", async () => {
    for (const [tar] of sparseTars) {
      const layer = await layerOf(tar)
      const asm = execFileSync('tar-split', [
        'asm', '--input', path.join(store.root, 'overlay-layers', `${layer.id}.tar-split.gz`),
        '--path', path.join(store.root, 'overlay', layer.id, 'diff'), '--output', '-',
      ], { stdio: ['ignore', 'pipe', 'ignore'] })
      expect(`sha256:${createHash('sha256').update(asm).digest('hex')}`, tar).not.toBe(layer.diffDigest)
    }
  })

  it('fails every export before writing anything, naming the entry', async () => {
    for (const [tar, entry, format] of sparseTars) {
      const layer = await layerOf(tar)
      const named = (e: unknown) => e instanceof UnsupportedError && e.message.includes(`"${entry}"`) && e.message.includes(format)
      const file = path.join(dir, 'export.tar')
      await expect(layer.exportToFile(file).catch((e: unknown) => named(e)), tar).resolves.toBe(true)
      expect(fs.existsSync(file)).toBe(false)
      const chunks: Buffer[] = []
      const streamed = (async () => {
        for await (const chunk of layer.export()) chunks.push(chunk as Buffer)
      })()
      await expect(streamed.catch((e: unknown) => named(e))).resolves.toBe(true)
      expect(Buffer.concat(chunks).length).toBe(0)
      await expect((async () => { for await (const _ of layer.parts()) break })().catch((e: unknown) => named(e))).resolves.toBe(true)
      await expect(layer.splitFdStream().catch((e: unknown) => named(e))).resolves.toBe(true)

      const toStdout = cliOn(store, ['layer', 'export', layer.id])
      expect(toStdout.status).toBe(1)
      expect(toStdout.stdout).toBe('')
      expect(toStdout.stderr).toContain(`entry "${entry}" is a sparse file (${format})`)
      expect(toStdout.stderr).toContain('(EUNSUPPORTED)')
      const toFile = cliOn(store, ['layer', 'export', layer.id, '-o', file])
      expect(toFile.status).toBe(1)
      expect(fs.existsSync(file)).toBe(false)
    }
  })

  it('is reported by verify, full and quick, as unverifiable, naming the entry, and as nothing else', async () => {
    for (const quick of [false, true]) {
      const report = await storage.verify({ quick })
      for (const [tar, entry, format] of sparseTars) {
        const layer = await layerOf(tar)
        const about = report.findings.filter((f) => f.subject === layer.id && f.kind !== 'layer-unreferenced')
        expect(about.map((f) => [f.kind, f.severity]), `${tar} quick=${quick}`).toEqual([['layer-content-unverifiable', 'warning']])
        expect(about[0].message).toContain(`entry "${entry}" is a sparse file (${format})`)
      }
    }
  })

  it('leaves the other layers of the store exportable', async () => {
    const rootfs = path.join(dir, 'plain')
    fs.mkdirSync(rootfs)
    fs.writeFileSync(path.join(rootfs, 'file'), 'plain\n')
    execFileSync('tar', ['-C', rootfs, '-cf', path.join(dir, 'plain.tar'), '.'])
    podman('import', '--quiet', path.join(dir, 'plain.tar'), 'localhost/plain:1')
    const plain = await layerOf('plain.tar')
    const file = path.join(dir, 'plain-export.tar')
    await plain.exportToFile(file)
    expect(`sha256:${createHash('sha256').update(fs.readFileSync(file)).digest('hex')}`).toBe(plain.diffDigest)
  })

  it('is written by cstor import as podman 5.8 writes it: the same diff/ and tar-split', async () => {
    const ours = { root: path.join(dir, 'ours', 'root'), runroot: path.join(dir, 'ours', 'run') }
    const theirs = { root: path.join(dir, 'theirs', 'root'), runroot: path.join(dir, 'theirs', 'run') }
    const began = BigInt(Date.now() - 2000) * 1_000_000n
    for (const [tar, entry] of sparseTars) {
      const name = `localhost/${path.basename(tar, '.tar')}:1`
      expect(cliOn(ours, ['import', tar, name]).status).toBe(0)
      const flags = ['--root', theirs.root, '--runroot', theirs.runroot, '--storage-driver', 'overlay']
      const imported = inPodman5([dir, inputs], ['podman', ...flags, 'import', '--quiet', tar, name])
      expect(imported.status, imported.stderr).toBe(0)
      const ourStore = await Storage.open(ours)
      const layer = (await (await ourStore.image(name)).layers())[0]
      // The real name and size, not GNUSparseFile.N/... with the on-tar bytes.
      expect(fs.statSync(path.join(ours.root, 'overlay', layer.id, 'diff', entry)).size).toBe(entry === 'end' ? 4 : entry === 'sparse.db' ? 1000 : 200)
      expect(layerPicture(ours.root, layer.id, began)).toEqual(layerPicture(theirs.root, layer.id, began))
      const tarSplit = (root: string) => execFileSync('zcat', [path.join(root, 'overlay-layers', `${layer.id}.tar-split.gz`)])
      expect(tarSplit(ours.root).equals(tarSplit(theirs.root)), tar).toBe(true)
      await expect(layer.exportToFile(path.join(dir, 'x.tar'))).rejects.toBeInstanceOf(UnsupportedError)
      ourStore.close()
    }
    // GNU type S: podman refuses it ("unhandled tar header type 83"), and so does cstor.
    const gnu = path.join(inputs, 'gnu-nil-sparse-data.tar')
    const refused = cliOn(ours, ['import', gnu, 'localhost/gnu:1'])
    expect(refused.status).toBe(1)
    expect(refused.stderr).toContain('(EUNSUPPORTED)')
    expect(() => podman('import', '--quiet', gnu, 'localhost/gnu:1')).toThrow(/unhandled tar header type 83/)
  })
})
