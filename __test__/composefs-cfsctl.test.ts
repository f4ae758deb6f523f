/**
 * cstor's composefs images against composefs-rs's own: `cfsctl` (composefs-ctl 0.9.4, built from
 * crates.io by `fixtures/build-cfsctl.sh`) imports each fixture image from containers-storage
 * (`cfsctl oci pull containers-storage:IMAGE --local-fetch auto`) into an insecure repository;
 * its `oci compute-id` must be the ID `cstor image composefs` prints and its `oci dump` the
 * dumpfile cstor writes. cfsctl reads only the default store root, so each import runs in a
 * private mount namespace where a copy of the fixture store is /var/lib/containers/storage.
 * composefs-rs refuses an image without /usr (it takes the root's metadata from /usr); the test
 * says so for those images, whose bytes are compared with C mkcomposefs in
 * composefs-image.test.ts instead.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Storage } from '../ts/index'
import { copyStore, fixtures, main, repo } from './helpers'

let dir: string
let cfsctl: string
let store: ReturnType<typeof copyStore>
let storage: Storage
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-cfsctl-'))
  cfsctl = execFileSync('bash', [path.join(repo, '__test__/fixtures/build-cfsctl.sh')], { encoding: 'utf8' }).trim()
  store = copyStore(main)
  storage = await Storage.open(store)
}, 1_800_000)
afterAll(() => {
  storage?.close()
  store?.cleanup()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

const images = fs.readFileSync(path.join(fixtures, 'images.txt'), 'utf8').trim().split('\n')

/** cfsctl on the repository `repoDir`, with the store copy as the default store root. */
function cfsctlIn(repoDir: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const root = path.join(dir, 'containers')
  fs.mkdirSync(path.join(root, 'storage'), { recursive: true })
  const script = 'mount --bind "$1" /var/lib/containers && mount --bind "$2" /var/lib/containers/storage && shift 2 && exec "$@"'
  const result = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', root, store.root, cfsctl, '--repo', repoDir, ...args], { encoding: 'utf8' })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe('cfsctl reads the image cstor computes', () => {
  it.each(images)('%s: the same composefs ID and dumpfile as cfsctl oci pull containers-storage:', async (ref) => {
    const repoDir = path.join(dir, `repo-${ref.replace(/[^a-zA-Z0-9.-]/g, '_')}`)
    execFileSync(cfsctl, ['init', '--insecure', repoDir])
    const pulled = cfsctlIn(repoDir, ['oci', 'pull', `containers-storage:${ref}`, 'pulled', '--local-fetch', 'auto'])
    const image = await storage.image(ref)
    const hasUsr = (await image.toc()).entries.some((e) => e.name === 'usr' && e.type === 'dir')
    if (pulled.status !== 0) {
      // cfsctl's own failures are recorded, not hidden: each is one of the known ones.
      const cause = pulled.stderr.match(/Caused by:\s*\n\s*(.*)/)?.[1] ?? pulled.stderr.trim()
      expect(hasUsr ? cause : 'no /usr', ref).toBe('no /usr')
      expect(cause, ref).toMatch(/"usr" does not exist/)
      console.log(`cfsctl cannot import ${ref}: ${cause} (composefs-rs takes the root's metadata from /usr)`)
      return
    }
    const id = cfsctlIn(repoDir, ['oci', 'compute-id', 'pulled'])
    expect(id.status, id.stderr).toBe(0)
    const cstorId = await image.composefs(path.join(repoDir, 'cstor.cfs'))
    expect(cstorId.id).toBe(id.stdout.trim())
    await image.composefs(path.join(repoDir, 'cstor.dump'), { dumpfile: true })
    const dumped = cfsctlIn(repoDir, ['oci', 'dump', 'pulled'])
    expect(dumped.status, dumped.stderr).toBe(0)
    expect(fs.readFileSync(path.join(repoDir, 'cstor.dump'), 'utf8')).toBe(dumped.stdout)
    compared.push(ref)
  })

  it('compared every image that has a /usr', () => {
    expect(compared.sort()).toEqual(['localhost/app:1', 'localhost/app:latest', 'localhost/app:v1.0', 'localhost/base:1', 'localhost/sibling:latest'])
  })
})

const compared: string[] = []
