/**
 * Extraction against the real thing: an image extracted by cstor equals the merged view of
 * `podman image mount`; a layer extracted with overlay whiteouts equals its `diff/`; with aufs
 * whiteouts equals GNU `tar -x` of its exported tar. Reflinks are checked on a loop-mounted XFS,
 * and hostile layers or failures never write outside the target or leave half a tree. On the
 * stores podman 4.3 and podman 5.8 wrote, each compared with its own podman's mount.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { InvalidArgumentError, Storage, type Progress } from '../ts/index'
import { cliOn, copyStore, mountXfs, podmanFixtures, storageConf } from './helpers'
import { snapshot, type Tree } from './tree'

let top: string
beforeAll(() => {
  top = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-extract-'))
})
afterAll(() => fs.rmSync(top, { recursive: true, force: true }))
const cleanups: (() => void)[] = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup()
})

/**
 * A layer's `diff/` without what overlayfs writes into it whenever it is a mount's upper directory
 * (`podman image mount`, which other test files run on these stores, a container's run): the
 * kernel's bookkeeping (`origin`, `impure`, `uuid`, `nlink`, …), which no tar header carries. What
 * a layer holds of overlayfs — opaque directories, whiteouts — stays.
 */
function withoutOverlayBookkeeping(tree: Tree): Tree {
  const kept = (pair: string) => !/^(trusted|user)\.overlay\./.test(pair) || /^(trusted|user)\.overlay\.(opaque|whiteout)=/.test(pair)
  return Object.fromEntries(
    Object.entries(tree).map(([name, fields]) => {
      const [head, xattrs] = fields.split(' xattrs=')
      const pairs = xattrs?.split(' ').filter(kept) ?? []
      return [name, pairs.length > 0 ? `${head} xattrs=${pairs.join(' ')}` : head]
    }),
  )
}

const images = ['localhost/base:1', 'localhost/app:1', 'localhost/sibling:latest', 'quay.io/cstor/formats:1', 'localhost/chain:55']

describe('image extraction equals podman image mount, on a store of its own', () => {
  it('a directory of many plain files (copied by worker threads) equals the merged view too', async () => {
    const rootfs = fs.mkdtempSync(path.join(top, 'many-'))
    fs.mkdirSync(path.join(rootfs, 'data'))
    for (let i = 0; i < 64; i++) fs.writeFileSync(path.join(rootfs, 'data', `f${i}`), 'x'.repeat(1 + i * 997), { mode: i % 2 ? 0o640 : 0o4755 })
    execFileSync('setfattr', ['-n', 'user.cstor', '-v', 'many', path.join(rootfs, 'data', 'f7')])
    const store = fs.mkdtempSync(path.join(top, 'many-store-'))
    const pod = ['--root', `${store}/root`, '--runroot', `${store}/run`, '--storage-driver', 'overlay']
    const podEnv = { ...process.env, CONTAINERS_STORAGE_CONF: storageConf }
    execFileSync('sh', ['-c', `tar -C ${rootfs} --xattrs --xattrs-include='user.*' -c . | podman ${pod.join(' ')} import -q - localhost/many:1`], { env: podEnv })
    const many = await Storage.open({ root: `${store}/root`, runroot: `${store}/run` })
    const target = path.join(top, 'many-out')
    const stats = await (await many.image('localhost/many:1')).extract(target)
    expect(stats.files).toBeGreaterThanOrEqual(64)
    const merged = execFileSync('podman', [...pod, 'image', 'mount', 'localhost/many:1'], { env: podEnv }).toString().trim()
    try {
      expect(snapshot(target)).toEqual(snapshot(merged))
    } finally {
      execFileSync('podman', [...pod, 'image', 'unmount', 'localhost/many:1'], { env: podEnv })
      many.close()
      // containers/storage may leave overlay/ bind-mounted on itself.
      spawnSync('umount', [`${store}/root/overlay`], { stdio: 'ignore' })
    }
  })
})

describe('a name that is not UTF-8', () => {
  it('is refused by extraction with EUNSUPPORTED (the merge keys paths as text), nothing written', async () => {
    const rootfs = fs.mkdtempSync(path.join(top, 'latin1-'))
    fs.writeFileSync(Buffer.concat([Buffer.from(`${rootfs}/caf`), Buffer.from([0xe9])]), 'latin-1\n')
    const store = fs.mkdtempSync(path.join(top, 'latin1-store-'))
    const pod = ['--root', `${store}/root`, '--runroot', `${store}/run`, '--storage-driver', 'overlay']
    execFileSync('sh', ['-c', `tar -C ${rootfs} -c . | podman ${pod.join(' ')} import -q - localhost/latin1:1`], { env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf } })
    const storage = await Storage.open({ root: `${store}/root`, runroot: `${store}/run` })
    cleanups.push(() => {
      storage.close()
      spawnSync('umount', [`${store}/root/overlay`], { stdio: 'ignore' })
    })
    const target = path.join(top, 'latin1-out')
    await expect((await storage.image('localhost/latin1:1')).extract(target)).rejects.toMatchObject({ code: 'EUNSUPPORTED', message: expect.stringMatching(/not UTF-8/) })
    expect(fs.existsSync(target)).toBe(false)
    expect(fs.readdirSync(top).filter((n) => n.startsWith('.latin1-out'))).toEqual([])
  })
})

describe.each(podmanFixtures)('on the store $name wrote', ({ store, chunked, mergedCopy }) => {
  let storage: Storage
  let dir: string
  beforeAll(async () => {
    storage = await Storage.open(store)
    dir = fs.mkdtempSync(path.join(top, 'store-'))
  })

  describe('image extraction equals podman image mount', () => {
    for (const ref of [...images, ...(chunked ? ['localhost/chunked:1'] : [])]) {
      it(ref, async () => {
        const target = path.join(dir, ref.replace(/[/:]/g, '_'))
        const progress: Progress[] = []
        const image = await storage.image(ref)
        const stats = await image.extract(target, { onProgress: (p) => progress.push(p) })
        const merged = `${target}.merged`
        mergedCopy(ref, merged)
        expect(snapshot(target)).toEqual(snapshot(merged))
        const layers = (await image.layers()).length
        expect(progress.at(-1)).toMatchObject({ layer: layers - 1, layers })
        expect(stats.files + stats.dirs + stats.symlinks).toBeGreaterThan(0)
      })
    }

    it('app:1 has the cases that matter: whiteouts, an opaque dir, hardlinks, setuid, a fifo', async () => {
      const target = path.join(dir, 'app-cases')
      const stats = await (await storage.image('localhost/app:1')).extract(target)
      expect(stats.whiteouts).toBeGreaterThanOrEqual(3)
      expect(stats.specials).toBe(1)
      expect(fs.existsSync(path.join(target, 'etc/motd'))).toBe(false)
      expect(fs.readdirSync(path.join(target, 'app/conf'))).toEqual(['new.conf'])
      expect(fs.statSync(path.join(target, 'app/bin/tool')).mode & 0o7777).toBe(0o4755)
    })
  })

  describe('layer extraction', () => {
    it('with overlay whiteouts equals the layer diff/ itself', async () => {
      for (const layer of await (await storage.image('localhost/app:1')).layers()) {
        const target = path.join(dir, `overlay-${layer.id}`)
        await layer.extract(target)
        expect(snapshot(target), layer.id).toEqual(withoutOverlayBookkeeping(snapshot(path.join(store.root, 'overlay', layer.id, 'diff'))))
      }
    })

    it('with aufs whiteouts equals GNU tar -x of the exported layer', async () => {
      const layers = [...(await (await storage.image('localhost/app:1')).layers()), ...(await (await storage.image('quay.io/cstor/formats:1')).layers())]
      for (const layer of layers) {
        const target = path.join(dir, `aufs-${layer.id}`)
        await layer.extract(target, { whiteouts: 'aufs' })
        const untarred = path.join(dir, `tar-${layer.id}`)
        fs.mkdirSync(untarred)
        const tar = path.join(dir, `${layer.id}.tar`)
        await layer.exportToFile(tar)
        execFileSync('tar', ['-C', untarred, '--xattrs', '--xattrs-include=*', '--same-owner', '--numeric-owner', '-xpf', tar])
        // The tar has no record of the root directory, and whole seconds for times.
        // A whiteout's tar mode and time are lost in diff/ (containers/storage makes every
        // whiteout device with mode 0, at the time it applies the layer), so .wh. files are
        // compared without them.
        const [ours, theirs] = [snapshot(target, { mtimes: 's' }), snapshot(untarred, { mtimes: 's' })].map((tree) => {
          delete tree['.']
          for (const name of Object.keys(tree)) if (path.basename(name).startsWith('.wh.')) tree[name] = tree[name].replace(/ mode=\d+/, '').replace(/ mtime=\d+/, '')
          return tree
        })
        expect(ours, layer.id).toEqual(theirs)
      }
    })

    it('with whiteouts applied drops them', async () => {
      const top = (await (await storage.image('localhost/app:1')).layers())[0]
      const target = path.join(dir, 'applied')
      const stats = await top.extract(target, { whiteouts: 'apply' })
      expect(stats.whiteouts).toBeGreaterThan(0)
      const names = execFileSync('find', [target, '-printf', '%y %P\n']).toString()
      expect(names).not.toMatch(/^c /m)
      expect(names).not.toContain('.wh.')
    })
  })

  describe('reflinks', () => {
    it('on XFS with reflink=1, content shares extents with the store (filefrag), --no-reflinks copies', async () => {
      const { mnt, cleanup } = mountXfs()
      cleanups.push(cleanup)
      execFileSync('cp', ['-a', store.root, path.join(mnt, 'root')])
      const onXfs = await Storage.open({ root: path.join(mnt, 'root'), runroot: path.join(mnt, 'run') })
      cleanups.push(() => onXfs.close())
      const image = await onXfs.image('localhost/base:1')
      const stats = await image.extract(path.join(mnt, 'reflinked'))
      expect(stats.reflinkedFiles).toBe(stats.files)
      expect(stats.kernelCopiedFiles + stats.userCopiedFiles).toBe(0)
      const frag = execFileSync('filefrag', ['-v', path.join(mnt, 'reflinked', 'bin', 'busybox')]).toString()
      expect(frag).toMatch(/shared/)

      const copied = await image.extract(path.join(mnt, 'copied'), { reflinks: false })
      expect(copied.reflinkedFiles).toBe(0)
      expect(copied.kernelCopiedFiles).toBe(copied.files)
      expect(execFileSync('filefrag', ['-v', path.join(mnt, 'copied', 'bin', 'busybox')]).toString()).not.toMatch(/shared/)
      expect(snapshot(path.join(mnt, 'copied'))).toEqual(snapshot(path.join(mnt, 'reflinked')))

      const viaCli = cliOn({ root: path.join(mnt, 'root'), runroot: path.join(mnt, 'run') }, ['image', 'extract', 'localhost/base:1', path.join(mnt, 'cli'), '--json'])
      expect(viaCli.status, viaCli.stderr).toBe(0)
      expect(JSON.parse(viaCli.stdout).reflinkedFiles).toBe(stats.files)
      onXfs.close()
      await expect(onXfs.image('localhost/base:1')).rejects.toBeInstanceOf(InvalidArgumentError)
    })
  })

  describe('safety', () => {
    it('refuses a target that exists and is not empty, and writes nothing', async () => {
      const target = path.join(dir, 'occupied')
      fs.mkdirSync(target)
      fs.writeFileSync(path.join(target, 'keep'), 'mine')
      const image = await storage.image('localhost/base:1')
      await expect(image.extract(target)).rejects.toBeInstanceOf(InvalidArgumentError)
      expect(fs.readdirSync(target)).toEqual(['keep'])
      const run = cliOn(store, ['image', 'extract', 'localhost/base:1', target])
      expect(run.status).toBe(1)
      expect(run.stderr).toMatch(/EINVAL/)
    })

    it('an empty directory is a fine target', async () => {
      const target = path.join(dir, 'empty')
      fs.mkdirSync(target)
      await (await storage.image('localhost/base:1')).extract(target)
      expect(fs.readFileSync(path.join(target, 'etc/motd'), 'utf8')).toBe('cstor fixture base\n')
    })

    it('a symlink planted by a lower layer (var -> outside) is replaced, never written through', async () => {
      const copied = copyStore(store)
      cleanups.push(copied.cleanup)
      const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-outside-'))
      cleanups.push(() => fs.rmSync(outside, { recursive: true, force: true }))
      const copy = await Storage.open(copied)
      const [top, base] = await (await copy.image('localhost/sibling:latest')).layers()
      // The upper layer has var/lib/data (a whiteout in it); the base's var becomes a symlink.
      expect(fs.existsSync(path.join(copied.root, 'overlay', top.id, 'diff', 'var/lib/data'))).toBe(true)
      const baseVar = path.join(copied.root, 'overlay', base.id, 'diff', 'var')
      fs.rmSync(baseVar, { recursive: true })
      fs.symlinkSync(outside, baseVar)
      fs.mkdirSync(path.join(outside, 'lib/data'), { recursive: true })
      fs.writeFileSync(path.join(outside, 'lib/data/file1'), 'victim')
      const target = path.join(dir, 'planted')
      await (await copy.image('localhost/sibling:latest')).extract(target)
      expect(fs.readFileSync(path.join(outside, 'lib/data/file1'), 'utf8')).toBe('victim')
      expect(fs.readdirSync(outside)).toEqual(['lib'])
      expect(fs.lstatSync(path.join(target, 'var')).isDirectory()).toBe(true)
    })

    it('a failure midway leaves neither the target nor a staging directory', async () => {
      const copied = copyStore(store)
      cleanups.push(copied.cleanup)
      const copy = await Storage.open(copied)
      const [top] = await (await copy.image('localhost/app:1')).layers()
      fs.rmSync(path.join(copied.root, 'overlay', top.id, 'diff'), { recursive: true })
      const parent = fs.mkdtempSync(path.join(dir, 'fail-'))
      await expect((await copy.image('localhost/app:1')).extract(path.join(parent, 'rootfs'))).rejects.toThrow(/diff/)
      expect(fs.readdirSync(parent)).toEqual([])
    })
  })
})
