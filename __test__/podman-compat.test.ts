/**
 * `cstor image list/inspect --json` against `podman images` / `podman image inspect` on stores
 * podman and skopeo wrote — podman 4.3's and podman 5.8's, each against its own podman: IDs,
 * names, digests, layer lists, sizes and platforms must agree.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { cliOn, podmanFixtures } from './helpers'

interface PodmanImage {
  Id: string
  Names?: string[]
  Digest: string
  RepoDigests?: string[]
  Size: number
}

interface PodmanInspect {
  Id: string
  Digest: string
  RepoTags: string[]
  RepoDigests: string[]
  Size: number
  Architecture: string
  Os: string
  RootFS: { Layers: string[] }
}

interface CstorImage {
  id: string
  names: string[]
  digest: string
  repoDigests: string[]
  size: number
  topLayer: string
}

describe.each(podmanFixtures)('on the store $name wrote', ({ store, podmanJson, chunked }) => {
  let podmanImages: PodmanImage[]
  let cstorImages: CstorImage[]
  beforeAll(() => {
    podmanImages = podmanJson<PodmanImage[]>(['images', '--all', '--format', 'json'])
    cstorImages = JSON.parse(cliOn(store, ['image', 'list', '--json']).stdout) as CstorImage[]
  })

  describe('image list agrees with podman images --all', () => {
    it('lists the same image IDs', () => {
      const podmanIds = [...new Set(podmanImages.map((i) => i.Id))].sort()
      expect(cstorImages.map((i) => i.id).sort()).toEqual(podmanIds)
      expect(podmanIds.length).toBeGreaterThanOrEqual(6)
    })

    it('gives each image the same names, digest, repo digests and size', () => {
      for (const podman of podmanImages) {
        const ours = cstorImages.find((i) => i.id === podman.Id)!
        expect(ours.names.slice().sort(), podman.Id).toEqual((podman.Names ?? []).slice().sort())
        expect(ours.digest).toBe(podman.Digest)
        expect(ours.repoDigests.slice().sort()).toEqual((podman.RepoDigests ?? []).slice().sort())
        expect(ours.size).toBe(podman.Size)
      }
    })
  })

  describe('image inspect agrees with podman image inspect', () => {
    for (const name of ['localhost/base:1', 'localhost/app:latest', 'localhost/sibling:latest', 'quay.io/cstor/formats:1', 'localhost/chain:55', ...(chunked ? ['localhost/chunked:1'] : [])]) {
      it(name, () => {
        const [podman] = podmanJson<PodmanInspect[]>(['image', 'inspect', name])
        const result = cliOn(store, ['image', 'inspect', name, '--json'])
        expect(result.status, result.stderr).toBe(0)
        const ours = JSON.parse(result.stdout)
        expect(ours.image.id).toBe(podman.Id)
        expect(ours.image.digest).toBe(podman.Digest)
        expect(ours.image.names.slice().sort()).toEqual(podman.RepoTags.slice().sort())
        expect(ours.image.repoDigests.slice().sort()).toEqual(podman.RepoDigests.slice().sort())
        expect(ours.size).toBe(podman.Size)
        expect(ours.platform.os).toBe(podman.Os)
        expect(ours.platform.architecture).toBe(podman.Architecture)
        // podman lists diff IDs base first; cstor lists layers top first.
        const diffIds = ours.layers.map((l: { diffDigest: string }) => l.diffDigest).reverse()
        expect(diffIds).toEqual(podman.RootFS.Layers)
        expect(ours.config.rootfs.diff_ids).toEqual(podman.RootFS.Layers)
      })
    }

    it('image layers lists the chain top first, matching inspect', () => {
      const layers = JSON.parse(cliOn(store, ['image', 'layers', 'localhost/chain:55', '--json']).stdout)
      expect(layers).toHaveLength(55)
      const [podman] = podmanJson<PodmanInspect[]>(['image', 'inspect', 'localhost/chain:55'])
      expect(layers.map((l: { diffDigest: string }) => l.diffDigest).reverse()).toEqual(podman.RootFS.Layers)
    })
  })
})
