/**
 * `image.fs` and `layer.fs` against the real thing: for every fixture image of the stores podman
 * 4.3 and podman 5.8 wrote, every path's `lstat`, content, symlink target, xattrs and directory
 * listing equal what `podman image mount` shows (copied out with `cp -a`, pictured by `tree.ts`);
 * `realpath` of absolute, relative, chained, looping and escaping symlinks equals `realpath` run
 * inside a chroot of the mount; bad input gets the `node:fs` error codes.
 */
import { createHash } from 'node:crypto'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Storage, type ImageFs } from '../ts/index'
import { cliOn, composefsStore, podman5Store, podmanFixtures, repo, storageConf, type PodmanFixture } from './helpers'
import { inPodman5 } from './podman5'
import { snapshot, type Tree } from './tree'

const images = ['localhost/base:1', 'localhost/app:1', 'localhost/sibling:latest', 'quay.io/cstor/formats:1', 'localhost/chain:55']

let top: string
beforeAll(() => {
  top = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-files-'))
})
afterAll(() => fs.rmSync(top, { recursive: true, force: true }))

/** The picture `tree.ts` takes of a directory, taken through an `ImageFs` instead. */
async function picture(tree: ImageFs): Promise<Tree> {
  const all = [await tree.lstat('/')]
  for await (const entry of tree.entries()) all.push(await tree.lstat(entry.path))
  const rel = (p: string) => (p === '/' ? '.' : p.slice(1))
  const groups = new Map<number, string[]>()
  for (const st of all) if (st.isFile() && st.nlink > 1) groups.set(st.ino, [...(groups.get(st.ino) ?? []), rel(st.path)])
  const out: Tree = {}
  for (const st of all) {
    const name = rel(st.path)
    const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? `char ${st.rdev}` : `block ${st.rdev}`
    const fields = [kind, `mode=${(st.mode & 0o7777).toString(8)}`, `owner=${st.uid}:${st.gid}`, `mtime=${st.mtimeMs / 1000}`]
    if (st.isFile()) {
      fields.push(`size=${st.size}`, `sha256=${createHash('sha256').update(await tree.readFile(st.path)).digest('hex')}`)
      const group = groups.get(st.ino)
      if (group && group.length > 1) fields.push(`links=${group.filter((p) => p !== name).sort().join(',')}`)
    }
    if (st.isSymbolicLink()) fields.push(`target=${await tree.readlink(st.path)}`)
    const names = st.isSymbolicLink() ? [] : await tree.listxattr(st.path)
    const pairs = await Promise.all(names.map(async (n) => `${n}=0s${(await tree.getxattr(st.path, n)).toString('base64')}`))
    if (pairs.length > 0) fields.push(`xattrs=${pairs.sort().join(' ')}`)
    out[name] = fields.join(' ')
  }
  return out
}

/** The root's own metadata is the top layer's `diff/` directory, which no tar header describes. */
function withoutRootMeta(tree: Tree): Tree {
  return { ...tree, '.': 'dir' }
}

/**
 * podman's partial (zstd:chunked) pulls leave directory and symlink mtimes unrestored and make no
 * fifos (verify's `layer-metadata-unrestored`): their mount differs from the layers' headers there,
 * and `image.fs` keeps to the headers.
 */
function unrestored(tree: Tree): Tree {
  const kept = Object.entries(withoutRootMeta(tree)).filter(([, fields]) => !fields.startsWith('fifo'))
  return Object.fromEntries(kept.map(([name, fields]) => [name, /^(dir|symlink) /.test(fields) ? fields.replace(/ mtime=\d+/, '') : fields]))
}

describe.each(podmanFixtures)('on the store $name wrote', ({ store, chunked, mergedCopy }) => {
  let storage: Storage
  beforeAll(async () => {
    storage = await Storage.open(store)
  })
  afterAll(() => storage.close())

  for (const ref of [...images, ...(chunked ? ['localhost/chunked:1'] : [])]) {
    it(`${ref}: every path equals podman image mount`, async () => {
      const merged = path.join(top, `${store.root.replace(/\W/g, '_')}-${ref.replace(/\W/g, '_')}`)
      mergedCopy(ref, merged)
      const image = await storage.image(ref)
      const [ours, theirs] = [await picture(image.fs), snapshot(merged, { mtimes: 's' })].map((tree) => (ref === 'localhost/chunked:1' ? unrestored(tree) : withoutRootMeta(tree)))
      expect(ours).toEqual(theirs)
      // Every directory lists what the mount lists, by name and type.
      for await (const dir of image.fs.entries()) {
        if (!dir.isDirectory()) continue
        const theirs = fs.readdirSync(path.join(merged, dir.path), { withFileTypes: true }).map((d) => `${d.name}:${d.isDirectory()}:${d.isSymbolicLink()}`)
        const listed = await image.fs.readdir(dir.path, { withFileTypes: true })
        const ours = listed.filter((d) => ref !== 'localhost/chunked:1' || !d.isFIFO()).map((d) => `${d.name}:${d.isDirectory()}:${d.isSymbolicLink()}`)
        expect(ours.sort(), dir.path).toEqual(theirs.sort())
      }
      expect((await image.fs.readdir('/')).sort()).toEqual(fs.readdirSync(merged).sort())
    })
  }
})

describe('a composefs store (podman 5.8, use_composefs)', () => {
  // Its layers' trees are EROFS images (issue 28 reads them); their entries come from the
  // tar-split here and their bodies from the content objects the TOC names. The same image
  // pulled without composefs, in the podman 5.8 store, is what podman image mount shows (above).
  it('localhost/chunked:1 reads as it does in the store without composefs: every path, content and xattr', async () => {
    const [composefs, plain] = await Promise.all([Storage.open(composefsStore), Storage.open(podman5Store)])
    try {
      const ours = await picture((await composefs.image('localhost/chunked:1')).fs)
      expect(ours).toEqual(await picture((await plain.image('localhost/chunked:1')).fs))
      expect(Object.keys(ours).length).toBeGreaterThan(10)
    } finally {
      composefs.close()
      plain.close()
    }
  })
})

describe.each(podmanFixtures)('image diff equals podman image diff on the store $name wrote', ({ store, chunked, podmanJson }) => {
  const pairs: [string, string?][] = [
    ['localhost/app:1'],
    ['localhost/app:1', 'localhost/base:1'],
    ['localhost/sibling:latest', 'localhost/base:1'],
    ['localhost/base:1', 'localhost/sibling:latest'],
    ['localhost/base:1'],
    ['localhost/app:1', 'localhost/app:1'],
    ['localhost/app:1', 'localhost/sibling:latest'],
    ['quay.io/cstor/formats:1', 'localhost/app:1'],
    ['localhost/chain:55'],
    ['localhost/chain:55', 'localhost/base:1'],
    ...(chunked ? ([['localhost/chunked:1'], ['localhost/chunked:1', 'localhost/base:1']] as [string, string?][]) : []),
  ]
  it.each(pairs)('%s against %s', async (image, base) => {
    const theirs = podmanJson<Record<string, string[]> | null>(['image', 'diff', '--format', 'json', image, ...(base ? [base] : [])]) ?? {}
    const expected = Object.entries(theirs).flatMap(([kind, paths]) => (paths ?? []).map((p) => `${kind[0].toUpperCase()} ${p}`))
    const storage = await Storage.open(store)
    try {
      // The fifos podman's partial pull does not make (see `unrestored`) are not in its mount.
      const missing = new Set<string>()
      if (image === 'localhost/chunked:1') for await (const e of (await storage.image(image)).fs.entries()) if (e.isFIFO()) missing.add(e.path)
      const ours = (await (await storage.image(image)).diff(base)).filter((c) => !missing.has(c.path)).map((c) => `${c.kind} ${c.path}`)
      expect(ours.sort()).toEqual(expected.sort())
      const cli = JSON.parse(cliOn(store, ['image', 'diff', image, ...(base ? [base] : []), '--json']).stdout || '{}') as Record<string, string[]>
      const cliKept = Object.fromEntries(Object.entries(cli).map(([k, v]) => [k, v.filter((p) => !missing.has(p))]))
      expect(cliKept).toEqual(Object.fromEntries(Object.entries(theirs).map(([k, v]) => [k, [...v].sort()])))
    } finally {
      storage.close()
    }
  })
})

/** `podman save` (a docker-archive) of `ref` by the podman that wrote the fixture's store. */
function podmanSave({ name, store }: PodmanFixture, ref: string, file: string): void {
  const args = ['--root', store.root, '--runroot', store.runroot, '--storage-driver', 'overlay', 'save', '-q', '-o', file, ref]
  if (name === 'podman 4.3') execFileSync('podman', args, { env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf } })
  else {
    const result = inPodman5([store.root, store.runroot, path.dirname(file)], ['podman', ...args])
    if (result.status !== 0) throw new Error(`podman 5 save ${ref}: ${result.stderr}`)
  }
}

interface DiveExport {
  layer: { sizeBytes: number }[]
  image: { sizeBytes: number; inefficientBytes: number; efficiencyScore: number; fileReference: { count: number; sizeBytes: number; file: string }[] }
}

describe.each(podmanFixtures)('image.analyze() equals dive on the store $name wrote', (fixture) => {
  let dive: string
  beforeAll(() => {
    dive = execFileSync('bash', [path.join(repo, '__test__', 'fixtures', 'build-dive.sh')], { encoding: 'utf8' }).trim()
  })
  it.each([...images, ...(fixture.chunked ? ['localhost/chunked:1'] : [])])('%s', async (ref) => {
    const archive = path.join(top, `dive-${fixture.name.replace(/\W/g, '')}-${ref.replace(/\W/g, '_')}.tar`)
    podmanSave(fixture, ref, archive)
    execFileSync(dive, ['--source', 'docker-archive', archive, '--json', `${archive}.json`], { stdio: 'ignore' })
    const theirs = JSON.parse(fs.readFileSync(`${archive}.json`, 'utf8')) as DiveExport
    const storage = await Storage.open(fixture.store)
    try {
      const ours = await (await storage.image(ref)).analyze()
      expect(ours.layers.map((l) => l.sizeBytes)).toEqual(theirs.layer.map((l) => l.sizeBytes))
      expect(ours.sizeBytes).toBe(theirs.image.sizeBytes)
      expect(ours.wastedBytes).toBe(theirs.image.inefficientBytes)
      expect(ours.efficiency).toBeCloseTo(theirs.image.efficiencyScore, 12)
      const files = (list: { path?: string; file?: string; count: number; sizeBytes: number }[]) => list.map((f) => `${f.path ?? f.file} ${f.count} ${f.sizeBytes}`).sort()
      expect(files(ours.inefficientFiles)).toEqual(files(theirs.image.fileReference))
    } finally {
      storage.close()
    }
  })
})

describe('image.fs on the podman 4.3 store', () => {
  const { store } = podmanFixtures[0]
  let storage: Storage
  beforeAll(async () => {
    storage = await Storage.open(store)
  })
  afterAll(() => storage.close())

  it('reads files, streams ranges, finds files by glob, and shows a layer with its whiteouts', async () => {
    const image = await storage.image('localhost/app:1')
    expect(await image.fs.readFile('etc/os-release', { encoding: 'utf8' })).toBe('NAME=cstor-fixture\nID=cstor\n')
    expect(await image.fs.readFile('/app/conf/../conf/new.conf', 'utf8')).toBe('fresh\n')
    // Its target went with the old /app/conf: the link is there, what it names is not.
    expect((await image.fs.lstat('/app/bin/b-symlink')).isSymbolicLink()).toBe(true)
    await expect(image.fs.stat('/app/bin/b-symlink')).rejects.toMatchObject({ code: 'ENOENT' })
    const range = await image.fs.createReadStream('/etc/os-release', { start: 5, end: 17 }).toArray()
    expect(Buffer.concat(range).toString()).toBe('cstor-fixture')
    await expect(image.fs.createReadStream('/etc').toArray()).rejects.toMatchObject({ code: 'EISDIR' })
    const found = []
    for await (const entry of image.fs.entries({ match: ['etc/os-*', '**/new.conf'] })) found.push(`${entry.path} ${entry.type} ${entry.layer.length}`)
    expect(found).toEqual(['/app/conf/new.conf reg 64', '/etc/os-release reg 64'])
    const [top] = await image.layers()
    const whiteouts = []
    for await (const entry of top.fs.entries()) if (entry.type === 'whiteout') whiteouts.push(entry.path)
    expect(whiteouts.sort()).toEqual(['/etc/motd', '/usr/share/doc', '/var/lib/data/file2'])
    expect((await top.fs.lstat('/etc/motd')).isCharacterDevice()).toBe(true)
    await expect(top.fs.readFile('/etc/motd')).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('bad input gets the node:fs codes, with path and syscall', async () => {
    const image = await storage.image('localhost/app:1')
    const code = (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e: { code: string; path?: string; syscall?: string }) => `${e.code} ${e.syscall} ${e.path}`,
      )
    expect(await code(image.fs.readFile('/nope'))).toBe('ENOENT open /nope')
    expect(await code(image.fs.readFile('/etc'))).toBe('EISDIR open /etc')
    expect(await code(image.fs.stat('/etc/\0x'))).toBe('EINVAL stat /etc/\0x')
    // Deleted by app:1's second layer (a whiteout).
    expect(await code(image.fs.lstat('/etc/motd'))).toBe('ENOENT lstat /etc/motd')
    expect(await code(image.fs.readdir('/etc/os-release'))).toBe('ENOTDIR scandir /etc/os-release')
    expect(await code(image.fs.readlink('/etc/os-release'))).toBe('EINVAL readlink /etc/os-release')
    expect(await code(image.fs.getxattr('/etc/os-release', 'user.none'))).toBe('ENODATA getxattr /etc/os-release')
    expect(await code(image.fs.stat('/etc/os-release/x'))).toBe('ENOTDIR stat /etc/os-release/x')
    expect(await image.fs.exists('/etc/motd')).toBe(false)
    expect(await image.fs.exists('etc/os-release')).toBe(true)
  })
})

describe('symlinks resolve inside the image as in a chroot', () => {
  it('absolute, relative, chained, looping and escaping links: realpath equals realpath in a chroot of the mount', async () => {
    const rootfs = fs.mkdtempSync(path.join(top, 'links-'))
    for (const dir of ['bin', 'etc/deep/er', 'usr/lib']) fs.mkdirSync(path.join(rootfs, dir), { recursive: true })
    fs.copyFileSync(execFileSync('sh', ['-c', 'command -v busybox']).toString().trim(), path.join(rootfs, 'bin/busybox'))
    fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755)
    fs.writeFileSync(path.join(rootfs, 'etc/target'), 'inside\n')
    const links: Record<string, string> = {
      'etc/abs': '/etc/target',
      'etc/rel': 'target',
      'usr/lib/up': '../../etc/target',
      'etc/chain1': 'chain2',
      'etc/chain2': '/usr/lib/up',
      'etc/escape-dots': '../../../../../../../etc/target',
      'etc/escape-root': '/../../..',
      'etc/deep/er/escape-rel': '../../../../../../..',
      'etc/dir-link': 'deep/er',
      'etc/loop1': 'loop2',
      'etc/loop2': '/etc/loop1',
      'etc/self': 'self',
      'etc/dangling': '/nowhere/at/all',
      'usr/lib64': 'lib',
    }
    for (const [at, target] of Object.entries(links)) fs.symlinkSync(target, path.join(rootfs, at))
    const store = fs.mkdtempSync(path.join(top, 'links-store-'))
    const pod = ['--root', `${store}/root`, '--runroot', `${store}/run`, '--storage-driver', 'overlay']
    const podEnv = { ...process.env, CONTAINERS_STORAGE_CONF: storageConf }
    execFileSync('sh', ['-c', `tar -C ${rootfs} -c . | podman ${pod.join(' ')} import -q - localhost/links:1`], { env: podEnv })
    const storage = await Storage.open({ root: `${store}/root`, runroot: `${store}/run` })
    const merged = execFileSync('podman', [...pod, 'image', 'mount', 'localhost/links:1'], { env: podEnv }).toString().trim()
    try {
      const image = await storage.image('localhost/links:1')
      const asked = [
        ...Object.keys(links).map((l) => `/${l}`),
        'etc/rel',
        '/etc/dir-link/escape-rel/etc/target',
        '/etc/escape-root/etc/abs',
        '/../../etc/./chain1',
        '/usr/lib64/up',
        '/etc/dir-link/../target',
        '/etc/missing',
        '/etc/target/x',
      ]
      for (const p of asked) {
        // busybox's realpath lets the last component be missing; realpath(3) and node's do not.
        const script = 'test -e "$1" && /bin/busybox realpath "$1"'
        const inChroot = spawnSync('chroot', [merged, '/bin/busybox', 'sh', '-c', script, 'sh', p.startsWith('/') ? p : `/${p}`], { encoding: 'utf8' })
        const theirs = inChroot.status === 0 ? inChroot.stdout.trim() : 'error'
        const ours = await image.fs.realpath(p).catch((e: { code: string }) => `error ${e.code}`)
        expect(ours.startsWith('error') ? 'error' : ours, p).toBe(theirs)
      }
      await expect(image.fs.stat('/etc/loop1')).rejects.toMatchObject({ code: 'ELOOP' })
      await expect(image.fs.stat('/etc/self')).rejects.toMatchObject({ code: 'ELOOP' })
      await expect(image.fs.stat('/etc/dangling')).rejects.toMatchObject({ code: 'ENOENT' })
      expect(await image.fs.readFile('/etc/escape-dots', 'utf8')).toBe('inside\n')
      expect(await image.fs.readFile('etc/deep/er/escape-rel/etc/chain1', 'utf8')).toBe('inside\n')
    } finally {
      execFileSync('podman', [...pod, 'image', 'unmount', 'localhost/links:1'], { env: podEnv })
      storage.close()
      spawnSync('umount', [`${store}/root/overlay`], { stdio: 'ignore' })
    }
  })
})

describe('entries() streams', () => {
  it('a tree larger than a page comes in path order, each entry once, matches across pages too', async () => {
    // 3 directories of 3000 files: three pages of 4096 and a part, with page ends inside directories.
    const rootfs = fs.mkdtempSync(path.join(top, 'wide-'))
    const expected: string[] = []
    for (const dir of ['a', 'b', 'c']) {
      fs.mkdirSync(path.join(rootfs, dir))
      expected.push(dir)
      for (let i = 0; i < 3000; i++) {
        const name = `${dir}/f${String(i).padStart(4, '0')}`
        fs.writeFileSync(path.join(rootfs, name), '')
        expected.push(name)
      }
    }
    expected.sort()
    const paths = expected.map((p) => `/${p}`)
    const store = fs.mkdtempSync(path.join(top, 'wide-store-'))
    const pod = ['--root', `${store}/root`, '--runroot', `${store}/run`, '--storage-driver', 'overlay']
    execFileSync('sh', ['-c', `tar -C ${rootfs} -c . | podman ${pod.join(' ')} import -q - localhost/wide:1`], { env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf } })
    const storage = await Storage.open({ root: `${store}/root`, runroot: `${store}/run` })
    try {
      const tree = (await storage.image('localhost/wide:1')).fs
      const all: string[] = []
      for await (const entry of tree.entries()) all.push(entry.path)
      expect(all).toEqual(paths)
      const matched: string[] = []
      for await (const entry of tree.entries({ match: '*/f?999' })) matched.push(entry.path)
      expect(matched).toEqual(['a', 'b', 'c'].flatMap((d) => [0, 1, 2].map((i) => `/${d}/f${i}999`)))
      // Leaving early is fine: nothing is held for the rest.
      for await (const entry of tree.entries()) if (entry.path === '/b') break
    } finally {
      storage.close()
      spawnSync('umount', [`${store}/root/overlay`], { stdio: 'ignore' })
    }
  })
})

describe('cstor image cat|ls|find|analyze, layer ls', () => {
  const { store } = podmanFixtures[0]

  it('cat prints the files one after another; a bad path exits 1 with its code', () => {
    const ok = cliOn(store, ['image', 'cat', 'localhost/app:1', 'etc/os-release', '/app/conf/new.conf'])
    expect(ok.status, ok.stderr).toBe(0)
    expect(ok.stdout).toBe('NAME=cstor-fixture\nID=cstor\nfresh\n')
    for (const [path, code] of [['/nope', 'ENOENT'], ['/etc', 'EISDIR'], ['/etc/motd', 'ENOENT'], ['/etc/os-release/x', 'ENOTDIR']]) {
      const bad = cliOn(store, ['image', 'cat', 'localhost/app:1', path])
      expect(bad.status, path).toBe(1)
      expect(bad.stderr, path).toContain(`(${code})`)
    }
  })

  it('ls lists a directory (long, recursive, JSON); find filters by name and type', () => {
    const names = cliOn(store, ['image', 'ls', 'localhost/app:1', '/app'])
    expect(names.stdout).toBe('bin\nconf\nfifo\n')
    const long = cliOn(store, ['image', 'ls', 'localhost/app:1', 'app/bin', '-l']).stdout
    expect(long).toMatch(/^lrwxrwxrwx +1 +0 +0 +14 [\d-]+ [\d:]+ b-symlink -> \.\.\/conf\/b\.conf$/m)
    expect(long).toMatch(/^-rwsr-xr-x +1 +0 +0 +4 [\d-]+ [\d:]+ tool$/m)
    const all = JSON.parse(cliOn(store, ['image', 'ls', 'localhost/app:1', '/app', '-R', '--json']).stdout) as { path: string; type: string }[]
    expect(all.map((e) => `${e.path} ${e.type}`)).toEqual(['/app/bin dir', '/app/conf dir', '/app/fifo fifo', '/app/bin/b-symlink symlink', '/app/bin/tool reg', '/app/conf/new.conf reg'])
    // /etc/resolv.conf: the empty file podman build leaves in every RUN layer.
    expect(cliOn(store, ['image', 'find', 'localhost/app:1', '--name', '*.conf', '--type', 'f']).stdout).toBe('/app/conf/new.conf\n/etc/resolv.conf\n')
    expect(cliOn(store, ['image', 'find', 'localhost/app:1', '--name', '*.conf', '--type', 'd']).stdout).toBe('')
    expect(cliOn(store, ['image', 'find', 'localhost/app:1', '--type', 'l', '--name', 'b-*']).stdout).toBe('/app/bin/b-symlink\n')
    expect(cliOn(store, ['image', 'ls']).stdout).toContain('localhost/app')
  })

  it('analyze prints each layer and dive --ci\'s figures', () => {
    const shown = cliOn(store, ['image', 'analyze', 'localhost/app:1'])
    expect(shown.status, shown.stderr).toBe(0)
    expect(shown.stdout).toMatch(/^efficiency: 99\.9987 %$/m)
    expect(shown.stdout).toMatch(/^wastedBytes: 26 bytes/m)
    expect(shown.stdout).toMatch(/^userWastedPercent: 144\.4444 %$/m)
    const json = JSON.parse(cliOn(store, ['image', 'analyze', 'localhost/app:1', '--json']).stdout)
    expect(json.layers[2].removed).toContainEqual({ path: '/etc/motd', size: 19 })
    expect(json.layers[2].added).toEqual([{ path: '/app/conf/new.conf', size: 6 }])
  })

  it('layer ls shows one layer, deletions marked', async () => {
    const storage = await Storage.open(store)
    const [top] = await (await storage.image('localhost/app:1')).layers()
    storage.close()
    const listing = cliOn(store, ['layer', 'ls', top.id])
    expect(listing.status, listing.stderr).toBe(0)
    expect(listing.stdout).toContain('/etc/motd (deleted)\n')
    const records = JSON.parse(cliOn(store, ['layer', 'ls', top.id, '--json']).stdout) as { path: string; type: string }[]
    expect(records).toContainEqual(expect.objectContaining({ path: '/app/conf/new.conf', type: 'reg' }))
    expect(records).toContainEqual(expect.objectContaining({ path: '/var/lib/data/file2', type: 'whiteout' }))
  })
})
