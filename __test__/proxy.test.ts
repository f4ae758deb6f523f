/**
 * The skopeo image proxy client against Debian's real skopeo: images from `oci:` (a layout
 * skopeo wrote), `containers-storage:` (the fixture store) and `docker-archive:` (podman save),
 * every manifest, config and blob checked against its digest.
 */
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ImageProxy, RemoteError, Storage } from '../ts/index'
import { main, storageConf } from './helpers'

const env = { ...process.env, CONTAINERS_STORAGE_CONF: storageConf }
const storeRef = (name: string) => `containers-storage:[overlay@${path.resolve(main.root)}+${path.resolve(main.runroot)}]${name}`
const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

async function read(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

let dir: string
let proxy: ImageProxy
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-proxy-'))
  execFileSync('skopeo', ['copy', '--quiet', storeRef('localhost/app:1'), `oci:${dir}/layout:app`], { env })
  execFileSync('podman', ['--root', path.resolve(main.root), '--runroot', path.resolve(main.runroot), 'save', '-q', '-o', `${dir}/app.tar`, 'localhost/app:1'], { env })
  // The proxy reads storage.conf for containers-storage: references, as skopeo does.
  process.env.CONTAINERS_STORAGE_CONF = storageConf
  proxy = await ImageProxy.start()
})
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

describe('skopeo experimental-image-proxy client', () => {
  it('speaks protocol 0.2.x with Debian skopeo', () => {
    expect(proxy.protocol).toMatch(/^0\.2\./)
  })

  for (const [transport, reference] of [
    ['oci', () => `oci:${dir}/layout:app`],
    ['docker-archive', () => `docker-archive:${dir}/app.tar`],
  ] as const) {
    it(`${transport}: manifest, config and every blob hash to their digests`, async () => {
      const image = await proxy.openImage(reference())
      const { digest, manifest, raw } = await image.manifest()
      // The proxy converts a non-OCI manifest to OCI but gives the stored one's digest.
      if (transport === 'oci') expect(sha256(raw)).toBe(digest)
      else expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json')
      const config = manifest.config as { digest: string }
      expect(sha256(await image.fullConfig())).toBe(config.digest)
      const layers = manifest.layers as { digest: string; size: number }[]
      expect(layers.length).toBe(3)
      for (const layer of layers) expect(sha256(await read(await image.blob(layer.digest, layer.size)))).toBe(layer.digest)
      await image.close()
    })
  }

  it('containers-storage: layers by diff digest equal cstor exports', async () => {
    const storage = await Storage.open(main)
    const ours = await (await storage.image('localhost/app:1')).layers()
    const image = await proxy.openImage(storeRef('localhost/app:1'))
    const { manifest } = await image.manifest()
    expect((manifest.layers as unknown[]).length).toBe(ours.length)
    for (const layer of ours) {
      const theirs = await read(await image.blob(layer.diffDigest!, layer.diffSize!))
      expect(sha256(theirs)).toBe(layer.diffDigest)
      expect(theirs.equals(await read(layer.export()))).toBe(true)
    }
    await image.close()
  })

  it('docker://: an image pushed by skopeo to a local docker-registry on 127.0.0.1', async () => {
    const port = 5000 + (process.pid % 1000)
    fs.writeFileSync(
      `${dir}/registry.yml`,
      `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/registry\nhttp:\n  addr: 127.0.0.1:${port}\n`,
    )
    const registry = spawn('docker-registry', ['serve', `${dir}/registry.yml`], { stdio: 'ignore' })
    try {
      const target = `docker://127.0.0.1:${port}/cstor/app:1`
      for (let i = 0; ; i++) {
        try {
          execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', storeRef('localhost/app:1'), target], { env, stdio: 'pipe' })
          break
        } catch (e) {
          if (i > 50) throw e
          await new Promise((r) => setTimeout(r, 100))
        }
      }
      const remote = await ImageProxy.start({ skopeoOptions: ['--tls-verify=false'] })
      const image = await remote.openImage(target)
      const { digest, manifest, raw } = await image.manifest()
      expect(sha256(raw)).toBe(digest)
      for (const layer of manifest.layers as { digest: string; size: number }[]) {
        expect(sha256(await read(await image.blob(layer.digest, layer.size)))).toBe(layer.digest)
      }
      await remote.shutdown()
    } finally {
      registry.kill()
    }
  })

  it('failures are RemoteErrors: an unknown image, an unknown blob', async () => {
    await expect(proxy.openImage(`oci:${dir}/nowhere:x`)).rejects.toBeInstanceOf(RemoteError)
    const image = await proxy.openImage(`oci:${dir}/layout:app`)
    await expect(image.blob(`sha256:${'0'.repeat(64)}`, 1)).rejects.toThrow(/no such file/)
    await image.close()
  })

  it('shutdown ends skopeo and leaves no fds behind', async () => {
    const before = fs.readdirSync('/proc/self/fd').length
    const other = await ImageProxy.start()
    const image = await other.openImage(`oci:${dir}/layout:app`)
    const { manifest } = await image.manifest()
    const first = (manifest.layers as { digest: string; size: number }[])[0]
    await read(await image.blob(first.digest, first.size))
    await other.shutdown()
    await proxy.shutdown()
    expect(fs.readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(before)
    // pgrep exits 1 when no process matches.
    expect(() => execFileSync('pgrep', ['-P', String(process.pid), '-f', 'experimental-image-proxy'])).toThrow()
  })
})
