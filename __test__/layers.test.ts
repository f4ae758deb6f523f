/**
 * Layer chains through `parent`, through overlay's `lower` + `l/` links (on the stores podman 4.3
 * and podman 5.8 wrote, against each one's own `image inspect`), and additional stores.
 */
import fs from 'node:fs'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { Storage } from '../ts/index'
import { extra, main, podmanFixtures, podmanJson } from './helpers'

interface PodmanInspect {
  Id: string
  RootFS: { Layers: string[] }
  GraphDriver: { Data: { LowerDir?: string; UpperDir: string } }
}

describe.each(podmanFixtures)('on the store $name wrote', ({ store, podmanJson: podmanOf }) => {
  let storage: Storage
  beforeAll(async () => {
    storage = await Storage.open(store)
  })

  describe('layer chains', () => {
    it('walks parent and lower chains the same way podman mounts them', async () => {
      for (const name of ['localhost/app:1', 'quay.io/cstor/formats:1', 'localhost/chain:55']) {
        const [podman] = podmanOf<PodmanInspect[]>(['image', 'inspect', name])
        const image = await storage.image(name)
        const top = await storage.layer(image.topLayer!)
        const chain = await top.chain()
        const lower = await top.lowerChain()
        expect(chain.map((l) => l.id)).toEqual((await image.layers()).map((l) => l.id))
        expect(lower.map((l) => l.id)).toEqual(chain.slice(1).map((l) => l.id))
        // podman's LowerDir lists <root>/overlay/<id>/diff for the same layers, parent first.
        const lowerDirs = (podman.GraphDriver.Data.LowerDir ?? '').split(':').filter(Boolean)
        expect(lowerDirs.map((d) => path.basename(path.dirname(d)))).toEqual(lower.map((l) => l.id))
        expect(path.basename(path.dirname(podman.GraphDriver.Data.UpperDir))).toBe(top.id)
      }
    })

    it('handles a 55-layer chain', async () => {
      const image = await storage.image('localhost/chain:55')
      const layers = await image.layers()
      expect(layers).toHaveLength(55)
      expect(layers.at(-1)!.parent ?? null).toBeNull()
    })

    it('resolves every overlay/l link to the layer whose diff it points at', async () => {
      const linkDir = path.join(store.root, 'overlay', 'l')
      const links = fs.readdirSync(linkDir)
      expect(links.length).toBe((await storage.listLayers()).length)
      for (const link of links) {
        const layer = await storage.resolveLink(link)
        expect(fs.readlinkSync(path.join(linkDir, link))).toBe(`../${layer.id}/diff`)
        expect(fs.readFileSync(path.join(store.root, 'overlay', layer.id, 'link'), 'utf8')).toBe(link)
      }
      await expect(storage.resolveLink('NOSUCHLINKAAAAAAAAAAAAAAAA')).rejects.toMatchObject({ code: 'ENOLAYER' })
      await expect(storage.resolveLink('../../etc')).rejects.toMatchObject({ code: 'EINVAL' })
    })

    it('reports layer metadata as layers.json has it', async () => {
      const records = JSON.parse(fs.readFileSync(path.join(store.root, 'overlay-layers', 'layers.json'), 'utf8'))
      const layers = await storage.listLayers()
      expect(layers.map((l) => l.id)).toEqual(records.map((r: { id: string }) => r.id))
      for (const record of records) {
        const layer = layers.find((l) => l.id === record.id)!
        expect(layer.diffDigest).toBe(record['diff-digest'])
        expect(layer.diffSize).toBe(record['diff-size'])
        expect(layer.compressedDiffDigest).toBe(record['compressed-diff-digest'])
        expect(layer.uidset).toEqual(record.uidset ?? [])
        expect(layer.gidset).toEqual(record.gidset ?? [])
        expect(layer.parent ?? undefined).toBe(record.parent)
        expect(layer.volatile).toBe(false)
      }
    })
  })
})

describe('additional image stores', () => {
  it('lists images of both stores once each, the main store first and writable', async () => {
    const storage = await Storage.open(main)
    const both = await Storage.open({ ...main, additionalImageStores: [extra.root] })
    expect(both.stores).toEqual([main.root, extra.root])
    const images = await both.listImages()
    const ids = images.map((i) => i.id)
    expect(new Set(ids).size).toBe(ids.length)
    const extraOnly = await both.image('localhost/extra:1')
    expect(extraOnly.readOnly).toBe(true)
    expect(extraOnly.store).toBe(extra.root)
    // chain:55 is in both stores under one ID: the main store's copy wins.
    const chain = await both.image('localhost/chain:55')
    expect(chain.readOnly).toBe(false)
    const extraLayers = await extraOnly.layers()
    expect(extraLayers.every((l) => l.readOnly && l.store === extra.root)).toBe(true)
    const mainIds = new Set((await storage.listImages()).map((i) => i.id))
    const extraImages = podmanJson<{ Id: string }[]>(extra, ['images', '--all', '--format', 'json'])
    expect(new Set(ids)).toEqual(new Set([...mainIds, ...extraImages.map((i) => i.Id)]))
  })
})
