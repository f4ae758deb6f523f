/**
 * Reference resolution: names, short names, IDs, prefixes and digests, on the stores podman 4.3
 * and podman 5.8 made, each against its own podman's `image inspect`.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { AmbiguousError, InvalidArgumentError, NoImageError, Storage } from '../ts/index'
import { podmanFixtures } from './helpers'

describe.each(podmanFixtures)('on the store $name wrote', ({ store, podmanJson }) => {
  let storage: Storage
  const idOf = (name: string) => podmanJson<{ Id: string }[]>(['image', 'inspect', name])[0].Id

  beforeAll(async () => {
    storage = await Storage.open(store)
  })

  describe('image references', () => {
    it('resolves every name form podman accepts to the same image', async () => {
      const app = idOf('localhost/app:1')
      for (const ref of ['localhost/app:1', 'localhost/app:v1.0', 'localhost/app', 'app', 'app:latest', 'localhost/app:latest']) {
        expect((await storage.image(ref)).id, ref).toBe(app)
      }
      const busybox = idOf('docker.io/library/busybox:latest')
      for (const ref of ['busybox', 'busybox:latest', 'library/busybox', 'docker.io/busybox', 'docker.io/library/busybox:latest']) {
        expect((await storage.image(ref)).id, ref).toBe(busybox)
      }
      expect((await storage.image('quay.io/cstor/formats:1')).id).toBe(busybox)
      expect((await storage.image('cstor/formats:1')).id).toBe(busybox)
    })

    it('resolves full IDs, sha256: IDs and unique prefixes', async () => {
      const base = idOf('localhost/base:1')
      expect((await storage.image(base)).id).toBe(base)
      expect((await storage.image(`sha256:${base}`)).id).toBe(base)
      expect((await storage.image(base.slice(0, 12))).id).toBe(base)
    })

    it('resolves a manifest digest, bare and as name@digest', async () => {
      const image = await storage.image('localhost/chain:55')
      expect(image.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
      expect((await storage.image(image.digest!)).id).toBe(image.id)
      expect((await storage.image(`localhost/chain@${image.digest}`)).id).toBe(image.id)
      expect((await storage.image(`chain@${image.digest}`)).id).toBe(image.id)
      await expect(storage.image(`localhost/app@${image.digest}`)).rejects.toBeInstanceOf(NoImageError)
    })

    it('reports unknown names, unknown tags and ambiguous prefixes with typed errors', async () => {
      await expect(storage.image('nonexistent')).rejects.toMatchObject({ code: 'ENOIMAGE' })
      await expect(storage.image('localhost/app:2')).rejects.toBeInstanceOf(NoImageError)
      await expect(storage.image('')).rejects.toBeInstanceOf(InvalidArgumentError)
      // Among the store's ~7 image IDs some share a first hex digit: find one such prefix.
      const ids = (await storage.listImages()).map((i) => i.id)
      const prefix = [...'0123456789abcdef'].find((c) => ids.filter((id) => id.startsWith(c)).length > 1)
      if (prefix) {
        const err = await storage.image(prefix).catch((e: unknown) => e)
        expect(err).toBeInstanceOf(AmbiguousError)
        expect((err as AmbiguousError).code).toBe('EAMBIGUOUS')
      }
    })

    it('rejects wrongly typed arguments with EINVAL, not a crash', async () => {
      await expect(storage.image(42 as unknown as string)).rejects.toMatchObject({ code: 'EINVAL' })
    })
  })

  describe('layer references', () => {
    it('finds layers by full ID and unique prefix', async () => {
      const image = await storage.image('localhost/app:1')
      const top = await storage.layer(image.topLayer!)
      expect(top.id).toBe(image.topLayer)
      expect((await storage.layer(top.id.slice(0, 16))).id).toBe(top.id)
      await expect(storage.layer('f'.repeat(64))).rejects.toMatchObject({ code: 'ENOLAYER' })
    })
  })
})
