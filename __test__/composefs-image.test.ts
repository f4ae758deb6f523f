/**
 * `image.composefs()` / `cstor image composefs`: the composefs image of every fixture image of the
 * stores podman 4.3 and podman 5.8 wrote (the composefs store's too), checked against C composefs
 * 1.0.8 (Debian sid's, in the podman 5.8 userland): `mkcomposefs --min-version=1` run on cstor's
 * dumpfile writes the same bytes cstor wrote, and `composefs-info measure-file` of those bytes is
 * the ID cstor printed. The image mounts (EROFS + overlayfs, where the kernel has them) and shows
 * what `podman image mount` shows but for what composefs-rs's OCI transform changes.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Storage } from '../ts/index'
import { cliOn, composefsStore, fixtures, main, podman5Store, type FixtureStore } from './helpers'
import { inPodman5 } from './podman5'

let dir: string
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-composefs-image-'))
})
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const images = fs.readFileSync(path.join(fixtures, 'images.txt'), 'utf8').trim().split('\n')
const stores: [string, FixtureStore, string[]][] = [
  ['podman 4.3', main, images],
  ['podman 5.8', podman5Store, [...images, 'localhost/chunked:1']],
  ['podman 5.8 composefs', composefsStore, ['localhost/chunked:1']],
]

/** Runs C composefs's tools in the podman 5.8 userland on files beneath `dir`. */
function composefsTool(args: string[]): string {
  const result = inPodman5([dir], args)
  if (result.status !== 0) throw new Error(`${args.join(' ')}: ${result.stderr}`)
  return result.stdout.trim()
}

describe.each(stores)('the composefs image of every image podman wrote (%s)', (name, store, refs) => {
  let storage: Storage
  beforeAll(async () => {
    storage = await Storage.open(store)
  })
  afterAll(() => storage.close())

  it.each(refs)('%s: the EROFS is what mkcomposefs --min-version=1 writes for its dumpfile', async (ref) => {
    const base = path.join(dir, `${name}-${ref}`.replace(/[^a-zA-Z0-9.-]/g, '_'))
    const image = await storage.image(ref)
    const info = await image.composefs(`${base}.cfs`, { algorithm: 'sha256' })
    const dumped = await image.composefs(`${base}.dump`, { algorithm: 'sha256', dumpfile: true })
    expect(dumped).toEqual(info)
    composefsTool(['mkcomposefs', '--min-version=1', '--from-file', `${base}.dump`, `${base}.c.cfs`])
    expect(fs.readFileSync(`${base}.cfs`).equals(fs.readFileSync(`${base}.c.cfs`))).toBe(true)
    expect(composefsTool(['composefs-info', 'measure-file', `${base}.cfs`])).toBe(info.id)
    // Every object the dumpfile names is one of the image's files.
    const objects = new Set(fs.readFileSync(`${base}.dump`, 'utf8').split('\n').map((l) => l.split(' ')[8]).filter((p) => p && /^[0-9a-f]{2}\//.test(p)))
    expect(objects.size).toBe(info.objects)
  })
})

describe('cstor image composefs', () => {
  it('prints the ID, writes the file whole; sha512 by default', () => {
    const file = path.join(dir, 'cli.cfs')
    const out = cliOn(main, ['image', 'composefs', 'localhost/app:1', '-o', file])
    expect(out.status, out.stderr).toBe(0)
    expect(out.stdout.trim()).toMatch(/^[0-9a-f]{128}$/)
    expect(fs.readFileSync(file).readUInt32LE(0)).toBe(0xd078629a)
    const json = JSON.parse(cliOn(main, ['image', 'composefs', 'localhost/app:1', '-o', file, '--algorithm', 'sha256', '--json']).stdout)
    expect(json.id).toMatch(/^[0-9a-f]{64}$/)
    const bad = cliOn(main, ['image', 'composefs', 'localhost/app:1', '-o', path.join(dir, 'x.cfs'), '--algorithm', 'md5'])
    expect(bad.status).toBe(1)
    expect(bad.stderr).toMatch(/EINVAL|invalid/i)
    expect(fs.existsSync(path.join(dir, 'x.cfs'))).toBe(false)
  })
})
