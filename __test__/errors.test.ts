/**
 * Typed errors for bad stores: another driver, no store, damaged or booby-trapped copies of a real
 * store (cycles, links out of the store, path-like IDs, broken JSON). Never a crash or an escape.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { CorruptError, NoStoreError, Storage, UnsupportedError } from '../ts/index'
import { copyStore, fixtures, imagesJson, layersJson, main, readJson, writeJson } from './helpers'

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup()
})

function damagedCopy() {
  const copy = copyStore(main)
  cleanups.push(copy.cleanup)
  return copy
}


describe('stores cstor cannot read', () => {
  it('refuses a vfs store that podman made, and a non-overlay driver option', async () => {
    const vfs = path.join(fixtures, 'vfs', 'root')
    const err = await Storage.open({ root: vfs }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UnsupportedError)
    expect((err as UnsupportedError).code).toBe('EUNSUPPORTED')
    expect((err as Error).message).toContain('vfs')
    await expect(Storage.open({ ...main, driver: 'btrfs' })).rejects.toMatchObject({ code: 'EUNSUPPORTED' })
  })

  it('reports a missing root as ENOSTORE', async () => {
    await expect(Storage.open({ root: '/nonexistent/cstor' })).rejects.toBeInstanceOf(NoStoreError)
    await expect(Storage.open({ root: '/etc/hostname' })).rejects.toMatchObject({ code: 'ENOSTORE' })
  })
})

describe('damaged and hostile stores', () => {
  it('reports truncated layers.json and images.json as ECORRUPT', async () => {
    const copy = damagedCopy()
    const storage = await Storage.open(copy)
    fs.writeFileSync(layersJson(copy.root), fs.readFileSync(layersJson(copy.root), 'utf8').slice(0, 100))
    await expect(storage.listLayers()).rejects.toBeInstanceOf(CorruptError)
    fs.writeFileSync(imagesJson(copy.root), '{"not": "an array"}')
    await expect(storage.listImages()).rejects.toMatchObject({ code: 'ECORRUPT' })
  })

  it('refuses path-like image and layer IDs', async () => {
    const copy = damagedCopy()
    const images = readJson(imagesJson(copy.root))
    images[0].id = '../../../etc'
    writeJson(imagesJson(copy.root), images)
    const storage = await Storage.open(copy)
    await expect(storage.listImages()).rejects.toMatchObject({ code: 'ECORRUPT' })
    const layers = readJson(layersJson(copy.root))
    layers[0].id = '/etc/passwd'
    writeJson(layersJson(copy.root), layers)
    await expect(storage.listLayers()).rejects.toMatchObject({ code: 'ECORRUPT' })
  })

  it('detects a parent cycle instead of looping', async () => {
    const copy = damagedCopy()
    const storage = await Storage.open(copy)
    const image = await storage.image('localhost/app:1')
    const layers = readJson(layersJson(copy.root))
    const base = layers.find((l: { parent?: string }) => !l.parent)
    base.parent = image.topLayer
    writeJson(layersJson(copy.root), layers)
    const err = await image.layers().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CorruptError)
    expect((err as Error).message).toMatch(/cycle/)
  })

  it('refuses an overlay/l link that points outside the store, and a lower file naming itself', async () => {
    const copy = damagedCopy()
    const storage = await Storage.open(copy)
    const image = await storage.image('localhost/app:1')
    const top = image.topLayer!
    const lowerFile = path.join(copy.root, 'overlay', top, 'lower')
    const [firstLink] = fs.readFileSync(lowerFile, 'utf8').split(':')
    const linkPath = path.join(copy.root, 'overlay', firstLink)
    fs.rmSync(linkPath)
    fs.symlinkSync('/etc', linkPath)
    await expect(storage.resolveLink(path.basename(firstLink))).rejects.toMatchObject({ code: 'ECORRUPT' })
    await expect((await storage.layer(top)).lowerChain()).rejects.toMatchObject({ code: 'ECORRUPT' })

    const ownLink = fs.readFileSync(path.join(copy.root, 'overlay', top, 'link'), 'utf8')
    fs.writeFileSync(lowerFile, `l/${ownLink}`)
    await expect((await storage.layer(top)).lowerChain()).rejects.toThrow(/cycle/)
    fs.writeFileSync(lowerFile, '../../../../etc')
    await expect((await storage.layer(top)).lowerChain()).rejects.toMatchObject({ code: 'ECORRUPT' })
  })

  it('does not follow a big-data file replaced by a symlink out of the store', async () => {
    const copy = damagedCopy()
    const storage = await Storage.open(copy)
    const image = await storage.image('localhost/base:1')
    const manifest = path.join(copy.root, 'overlay-images', image.id, 'manifest')
    fs.rmSync(manifest)
    fs.symlinkSync('/etc/passwd', manifest)
    const err = await image.manifest().catch((e: unknown) => e)
    expect((err as { code?: string }).code).toMatch(/^E(ACCES|IO|CORRUPT|NOENT)$/)
    expect(String((err as Error).message)).not.toContain('root:x:0:0')
  })

  it('skips layers flagged incomplete, as containers/storage does after a crash', async () => {
    const copy = damagedCopy()
    const layers = readJson(layersJson(copy.root))
    layers[layers.length - 1].flags = { incomplete: true }
    writeJson(layersJson(copy.root), layers)
    const storage = await Storage.open(copy)
    const ids = (await storage.listLayers()).map((l) => l.id)
    expect(ids).not.toContain(layers[layers.length - 1].id)
    expect(ids).toHaveLength(layers.length - 1)
  })

  it('merges volatile-layers.json, the first record of an ID winning', async () => {
    const copy = damagedCopy()
    const layers = readJson(layersJson(copy.root))
    const moved = layers.pop()
    writeJson(layersJson(copy.root), layers)
    writeJson(path.join(copy.root, 'overlay-layers', 'volatile-layers.json'), [moved, { ...layers[0], names: ['dup'] }])
    const storage = await Storage.open(copy)
    const all = await storage.listLayers()
    expect(all).toHaveLength(layers.length + 1)
    expect(all.find((l) => l.id === moved.id)!.volatile).toBe(true)
    expect(all.find((l) => l.id === layers[0].id)!.names).toEqual(layers[0].names ?? [])
  })
})
