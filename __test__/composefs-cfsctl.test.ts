/**
 * cstor's composefs images against composefs-rs's own: `cfsctl` (composefs-ctl 0.9.4, built from
 * crates.io by `fixtures/build-cfsctl.sh`) imports each image from containers-storage (`cfsctl oci
 * pull containers-storage:IMAGE --local-fetch auto`) into an insecure repository; its `oci
 * compute-id` must be the ID `cstor image composefs` prints and its `oci dump` the dumpfile cstor
 * writes. The images: every fixture image of the stores podman 4.3 and podman 5.8 wrote (plain,
 * zstd:chunked, composefs), and two more `fixtures/make-cfsctl-images.mjs` adds to the 4.3 store
 * copy with skopeo: a 400-layer chain and a layer of hardlinks and xattrs. cfsctl reads
 * only the default store root, so each import runs in a private mount namespace where a copy of the
 * store is /var/lib/containers/storage. Where cfsctl itself fails — composefs-rs refuses an image
 * without /usr (it takes the root's metadata from /usr), and cannot import podman's composefs
 * layers — the test records its message, and C mkcomposefs --min-version=1 (composefs 1.0.8)
 * must write cstor's EROFS byte for byte from cstor's dumpfile instead.
 *
 * `image.copyTo('composefs:REPO:NAME')` writes the image into a repository of its own; cfsctl
 * finds it by NAME (the same ID and dump) and it holds the very objects cfsctl's import wrote,
 * byte for byte, streams and images linked alike — all but the config and manifest streams
 * cfsctl wrote first and superseded when it added the image's reference (nothing names them).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Storage } from '../ts/index'
import { cliOn, composefsStore, copyStore, fixtures, main, mountXfs, podman5Store, repo, storageConf, type FixtureStore } from './helpers'
import { inPodman5 } from './podman5'

let dir: string
let cfsctl: string
/** A copy of podman 4.3's store, with the images make-cfsctl-images.mjs adds (a 400-layer chain, hardlinks and xattrs). */
let store: ReturnType<typeof copyStore>
let storage: Storage
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-cfsctl-'))
  cfsctl = execFileSync('bash', [path.join(repo, '__test__/fixtures/build-cfsctl.sh')], { encoding: 'utf8' }).trim()
  store = copyStore(main)
  execFileSync(process.execPath, [path.join(repo, '__test__/fixtures/make-cfsctl-images.mjs'), store.root, store.runroot], {
    env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf },
  })
  // containers/storage leaves the store's overlay/ bind-mounted on itself after podman and skopeo.
  spawnSync('umount', [path.join(store.root, 'overlay')], { stdio: 'ignore' })
  storage = await Storage.open(store)
}, 1_800_000)
afterAll(() => {
  storage?.close()
  store?.cleanup()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

const lines = (file: string) => fs.readFileSync(file, 'utf8').trim().split('\n')
const images = lines(path.join(fixtures, 'images.txt'))

/** cfsctl on the repository `repoDir`, with `root` (a store copy) as the default store root. */
function cfsctlIn(repoDir: string, args: string[], root = store.root): { status: number | null; stdout: string; stderr: string } {
  const varLib = path.join(dir, 'containers')
  fs.mkdirSync(path.join(varLib, 'storage'), { recursive: true })
  const script = 'mount --bind "$1" /var/lib/containers && mount --bind "$2" /var/lib/containers/storage && shift 2 && exec "$@"'
  const result = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', varLib, root, cfsctl, '--repo', repoDir, ...args], { encoding: 'utf8' })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

/** Runs C composefs's tools (Debian sid's 1.0.8) in the podman 5.8 userland on files beneath `dir`. */
function composefsTool(args: string[]): string {
  const result = inPodman5([dir], args)
  if (result.status !== 0) throw new Error(`${args.join(' ')}: ${result.stderr}`)
  return result.stdout.trim()
}

interface Subject {
  name: string
  /** The store copy cfsctl and cstor read, and cstor opened on it. */
  open: () => Promise<{ root: string; storage: Storage; close: () => void }>
  refs: string[]
  /** The images cfsctl imports; the others are refused, each for the reason the test records. */
  compared: string[]
  /** cfsctl's own failure on every image of this store, where it has one before the /usr check. */
  refusal?: { cause: RegExp; why: string }
}

const withUsr = ['localhost/app:1', 'localhost/app:latest', 'localhost/app:v1.0', 'localhost/base:1', 'localhost/sibling:latest']
const subjects: Subject[] = [
  {
    name: 'podman 4.3',
    open: async () => ({ root: store.root, storage, close: () => {} }),
    refs: [...images, 'localhost/cfs-links:1', 'localhost/chain:400'],
    compared: [...withUsr, 'localhost/cfs-links:1', 'localhost/chain:400'],
  },
  {
    name: 'podman 5.8',
    open: () => openCopy(podman5Store),
    refs: lines(path.join(podman5Store.root, '..', 'images.txt')),
    compared: withUsr,
  },
  {
    name: 'podman 5.8 composefs',
    open: () => openCopy(composefsStore),
    refs: ['localhost/chunked:1'],
    compared: [],
    // Seen with cfsctl 0.9.4: its import writes the layer streams, then fails reading them back
    // (`finalize_oci_image`); a composefs layer's diff/ holds the bodies by content digest
    // (diff/xx/…), not at the paths its tar-split names, which is where cfsctl reads them.
    refusal: { cause: /^Unexpected EOF in splitstream$/, why: "cfsctl reads file bodies at diff/<path>; a composefs layer's diff/ holds them by digest" },
  },
]

async function openCopy(fixture: FixtureStore): Promise<{ root: string; storage: Storage; close: () => void }> {
  const copy = copyStore(fixture)
  const opened = await Storage.open(copy)
  return {
    root: copy.root,
    storage: opened,
    close: () => {
      opened.close()
      copy.cleanup()
    },
  }
}

describe.each(subjects)('cfsctl reads the image cstor computes ($name store)', ({ name, open, refs, compared: expected, refusal }) => {
  let opened: Awaited<ReturnType<Subject['open']>>
  const compared: string[] = []
  beforeAll(async () => {
    opened = await open()
  })
  afterAll(() => opened?.close())

  it.each(refs)('%s: the same composefs ID, dumpfile, objects and streams as cfsctl oci pull containers-storage:', async (ref) => {
    const repoDir = path.join(dir, `repo-${name}-${ref}`.replace(/[^a-zA-Z0-9.-]/g, '_'))
    const cfsctlOn = (repo: string, args: string[]) => cfsctlIn(repo, args, opened.root)
    execFileSync(cfsctl, ['init', '--insecure', repoDir])
    const pulled = cfsctlOn(repoDir, ['oci', 'pull', `containers-storage:${ref}`, 'pulled', '--local-fetch', 'auto'])
    const image = await opened.storage.image(ref)
    const hasUsr = (await image.toc()).entries.some((e) => e.name === 'usr' && e.type === 'dir')
    if (pulled.status !== 0) {
      // cfsctl's own failures are recorded, not hidden: each is one of the known ones.
      const cause = pulled.stderr.match(/Caused by:\s*\n\s*(.*)/)?.[1] ?? pulled.stderr.trim()
      if (refusal) {
        expect(cause, ref).toMatch(refusal.cause)
        console.log(`cfsctl cannot import ${ref} from the ${name} store: ${cause} (${refusal.why})`)
      } else {
        expect(hasUsr ? cause : 'no /usr', ref).toBe('no /usr')
        expect(cause, ref).toMatch(/"usr" does not exist/)
        console.log(`cfsctl cannot import ${ref} from the ${name} store: ${cause} (composefs-rs takes the root's metadata from /usr)`)
      }
      // C mkcomposefs instead: the EROFS it writes for cstor's dumpfile is cstor's, byte for byte.
      const base = `${repoDir}-c`
      const info = await image.composefs(`${base}.cfs`, { algorithm: 'sha256' })
      await image.composefs(`${base}.dump`, { algorithm: 'sha256', dumpfile: true })
      composefsTool(['mkcomposefs', '--min-version=1', '--from-file', `${base}.dump`, `${base}.c.cfs`])
      expect(fs.readFileSync(`${base}.cfs`).equals(fs.readFileSync(`${base}.c.cfs`)), ref).toBe(true)
      expect(composefsTool(['composefs-info', 'measure-file', `${base}.cfs`])).toBe(info.id)
      return
    }
    const id = cfsctlOn(repoDir, ['oci', 'compute-id', 'pulled'])
    expect(id.status, id.stderr).toBe(0)
    const cstorId = await image.composefs(path.join(repoDir, 'cstor.cfs'))
    expect(cstorId.id).toBe(id.stdout.trim())
    await image.composefs(path.join(repoDir, 'cstor.dump'), { dumpfile: true })
    const dumped = cfsctlOn(repoDir, ['oci', 'dump', 'pulled'])
    expect(dumped.status, dumped.stderr).toBe(0)
    expect(fs.readFileSync(path.join(repoDir, 'cstor.dump'), 'utf8')).toBe(dumped.stdout)

    const cstorRepo = `${repoDir}-cstor`
    const copied = await image.copyTo(`composefs:${cstorRepo}:named`)
    expect(copied.composefsId).toBe(cstorId.id)
    expect(cfsctlOn(cstorRepo, ['oci', 'compute-id', 'named']).stdout.trim()).toBe(cstorId.id)
    expect(cfsctlOn(cstorRepo, ['oci', 'dump', 'named']).stdout).toBe(dumped.stdout)
    const fsck = cfsctlOn(cstorRepo, ['oci', 'fsck'])
    expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0)
    expect(fsck.stdout).toMatch(/status: ok/)
    // Every object is the one cfsctl wrote, byte for byte, but the manifest stream: cfsctl names
    // its layers in HashMap order (a different file each run), cstor in diff_id order.
    const ours = objects(cstorRepo)
    const theirs = objects(repoDir)
    const ourLinks = links(cstorRepo)
    const theirLinks = links(repoDir)
    const manifestLink = [...theirLinks.keys()].find((l) => l.startsWith('streams/oci-manifest-'))!
    const manifestObject = (target: string) => path.normalize(path.join('streams', target))
    const ourManifest = manifestObject(ourLinks.get(manifestLink)!)
    const theirManifest = manifestObject(theirLinks.get(manifestLink)!)
    expect(streamRefs(path.join(cstorRepo, ourManifest))).toEqual(streamRefs(path.join(repoDir, theirManifest)))
    for (const object of ours) {
      if (object === ourManifest) continue
      expect(fs.readFileSync(path.join(cstorRepo, object)).equals(fs.readFileSync(path.join(repoDir, object))), object).toBe(true)
    }
    const superseded = [...theirs].filter((o) => !ours.has(o) && o !== theirManifest).map((o) => streamRefs(path.join(repoDir, o)).contentType).sort()
    expect(superseded, ref).toEqual(['ociconfg', 'ocimanif'])
    theirLinks.set(manifestLink, ourLinks.get(manifestLink)!)
    expect(ourLinks).toEqual(new Map([...theirLinks].map(([link, target]) => [link.replace('/oci/pulled', '/oci/named'), target])))
    compared.push(ref)
  })

  it('compared every image cfsctl imports', () => {
    expect(compared.sort()).toEqual([...expected].sort())
  })
})

/** A repository's objects, as paths relative to it. */
function objects(repoDir: string): Set<string> {
  const found = new Set<string>()
  for (const prefix of fs.readdirSync(path.join(repoDir, 'objects'))) {
    for (const name of fs.readdirSync(path.join(repoDir, 'objects', prefix))) found.add(`objects/${prefix}/${name}`)
  }
  return found
}

/** What a split stream names, whatever the order: its content type, streams and objects. */
function streamRefs(file: string): { contentType: string; streams: string[]; objects: string[] } {
  const bytes = fs.readFileSync(file)
  const info = Number(bytes.readBigUInt64LE(16))
  const size = bytes[14] === 1 ? 32 : 64
  const range = (at: number) => {
    const [start, end] = [Number(bytes.readBigUInt64LE(info + at)), Number(bytes.readBigUInt64LE(info + at + 8))]
    const digests: string[] = []
    for (let i = start; i < end; i += size) digests.push(bytes.subarray(i, i + size).toString('hex'))
    return digests
  }
  return { contentType: bytes.subarray(info + 64, info + 72).toString(), streams: range(0).sort(), objects: range(16) }
}

/** A repository's symlinks under streams/ and images/, each to its target. */
function links(repoDir: string): Map<string, string> {
  const found = new Map<string, string>()
  for (const top of ['streams', 'images']) {
    for (const entry of fs.readdirSync(path.join(repoDir, top), { recursive: true, withFileTypes: true })) {
      const full = path.join(entry.parentPath, entry.name)
      if (entry.isSymbolicLink()) found.set(path.relative(repoDir, full), fs.readlinkSync(full))
    }
  }
  return found
}

describe('cstor copy IMAGE composefs:REPO[:NAME]', () => {
  it('writes into a repository cfsctl init made (sha256), by the CLI, and again idempotently', () => {
    const repoDir = path.join(dir, 'init-sha256')
    execFileSync(cfsctl, ['init', '--insecure', '--algorithm', 'fsverity-sha256-12', repoDir])
    const meta = fs.readFileSync(path.join(repoDir, 'meta.json'))
    const first = cliOn(store, ['copy', 'localhost/app:1', `composefs:${repoDir}:app`, '--json'])
    expect(first.status, first.stderr).toBe(0)
    const id: string = JSON.parse(first.stdout).composefsId
    expect(id).toMatch(/^[0-9a-f]{64}$/)
    expect(fs.readFileSync(path.join(repoDir, 'meta.json')).equals(meta)).toBe(true)
    expect(cfsctlIn(repoDir, ['oci', 'compute-id', 'app']).stdout.trim()).toBe(id)
    const before = objects(repoDir)
    const again = cliOn(store, ['copy', 'localhost/app:1', `composefs:${repoDir}:app`, '--json'])
    expect(again.status, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({ composefsId: id, bytesWritten: 0 })
    expect(objects(repoDir)).toEqual(before)
    const human = cliOn(store, ['copy', 'localhost/app:1', `composefs:${repoDir}`])
    expect(human.stdout).toContain(`composefs ID ${id}`)
    // An object cut short (a crash before the copy's syncfs) or a symlink in an object's place
    // is not taken for the object: the next copy writes it again.
    const [cut, linked] = execFileSync('find', [path.join(repoDir, 'objects'), '-type', 'f', '-size', '+1k']).toString().trim().split('\n')
    const [cutBytes, linkedBytes] = [fs.readFileSync(cut), fs.readFileSync(linked)]
    fs.truncateSync(cut, 0)
    fs.rmSync(linked)
    fs.symlinkSync('/etc/hostname', linked)
    const repaired = cliOn(store, ['copy', 'localhost/app:1', `composefs:${repoDir}:app`, '--json'])
    expect(repaired.status, repaired.stderr).toBe(0)
    expect(fs.readFileSync(cut).equals(cutBytes)).toBe(true)
    expect(fs.lstatSync(linked).isFile() && fs.readFileSync(linked).equals(linkedBytes)).toBe(true)
    expect(cfsctlIn(repoDir, ['oci', 'fsck']).status).toBe(0)
  })

  it('a new repository gets the meta.json and the mode (0700) cfsctl init gives it', async () => {
    const made = path.join(dir, 'init-made')
    execFileSync(cfsctl, ['init', '--insecure', made])
    const ours = path.join(dir, 'cstor-made')
    await (await storage.image('localhost/base:1')).copyTo(`composefs:${ours}`)
    expect(fs.readFileSync(path.join(ours, 'meta.json'), 'utf8')).toBe(fs.readFileSync(path.join(made, 'meta.json'), 'utf8'))
    // Closed to other users as cfsctl's is (0700): objects keep no mode of the files they hold.
    expect(fs.statSync(ours).mode & 0o777).toBe(fs.statSync(made).mode & 0o777)
    expect(fs.statSync(ours).mode & 0o777).toBe(0o700)
  })

  it('on XFS with reflink=1, layer files are reflinked into objects/ (filefrag: shared extents)', async () => {
    const { mnt, cleanup } = mountXfs()
    try {
      execFileSync('cp', ['-a', store.root, path.join(mnt, 'root')])
      const onXfs = await Storage.open({ root: path.join(mnt, 'root'), runroot: path.join(mnt, 'run') })
      try {
        const repoDir = path.join(mnt, 'repo')
        const copied = await (await onXfs.image('localhost/base:1')).copyTo(`composefs:${repoDir}:base`)
        const imageLink = fs.readlinkSync(path.join(repoDir, 'images', copied.composefsId!))
        expect(imageLink).toMatch(/^\.\.\/objects\//)
        const large = [...objects(repoDir)].find((o) => fs.statSync(path.join(repoDir, o)).size > 1_000_000)!
        expect(execFileSync('filefrag', ['-v', path.join(repoDir, large)]).toString()).toMatch(/shared/)
        expect(cfsctlIn(repoDir, ['oci', 'compute-id', 'base']).stdout.trim()).toBe(copied.composefsId)
      } finally {
        onXfs.close()
      }
    } finally {
      cleanup()
    }
  })

  it('a full filesystem: ENOSPC, no temp file, no name, cfsctl still opens the repository; a new one is removed', async () => {
    const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-full-'))
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt])
    try {
      const repoDir = path.join(mnt, 'repo')
      execFileSync(cfsctl, ['init', '--insecure', repoDir])
      const base = await storage.image('localhost/base:1')
      await expect(base.copyTo(`composefs:${repoDir}:base`)).rejects.toMatchObject({ code: 'ENOSPC' })
      const left = execFileSync('find', [repoDir, '-name', '.*']).toString().trim().split('\n').filter((p) => p !== repoDir && p !== '')
      expect(left).toEqual([])
      expect(fs.readdirSync(path.join(repoDir, 'streams', 'refs', 'oci'))).toEqual([])
      const listed = cfsctlIn(repoDir, ['oci', 'images'])
      expect(listed.status, listed.stderr).toBe(0)
      expect(cfsctlIn(repoDir, ['fsck']).stdout).toMatch(/status: ok/)
      fs.rmSync(repoDir, { recursive: true })
      await expect(base.copyTo(`composefs:${repoDir}:base`)).rejects.toMatchObject({ code: 'ENOSPC' })
      expect(fs.readdirSync(mnt)).toEqual([])
    } finally {
      execFileSync('umount', [mnt])
      fs.rmSync(mnt, { recursive: true, force: true })
    }
  })

  it('--hardlink: objects are the store\'s own files (same inode, one more link), cfsctl finds the same ID, fsck ok', async () => {
    const image = await storage.image('localhost/app:1')
    const expected = await image.composefs(path.join(dir, 'hardlink-expected.cfs'))
    // The layers' files that become objects (over 64 bytes), by inode, with their link counts.
    const files = new Map<string, { file: string; nlink: number }>()
    for (const layer of await image.layers()) {
      const diff = path.join(store.root, 'overlay', layer.id, 'diff')
      for (const entry of fs.readdirSync(diff, { recursive: true, withFileTypes: true })) {
        const file = path.join(entry.parentPath, entry.name)
        const stat = fs.lstatSync(file)
        if (stat.isFile() && stat.size > 64) files.set(`${stat.dev}:${stat.ino}`, { file, nlink: stat.nlink })
      }
    }
    expect(files.size).toBeGreaterThan(0)
    const repoDir = path.join(dir, 'hardlinked')
    const copied = cliOn(store, ['copy', 'localhost/app:1', `composefs:${repoDir}:app`, '--hardlink', '--json'])
    expect(copied.status, copied.stderr).toBe(0)
    expect(JSON.parse(copied.stdout).composefsId).toBe(expected.id)
    const linked = [...objects(repoDir)].map((o) => fs.statSync(path.join(repoDir, o))).filter((stat) => files.has(`${stat.dev}:${stat.ino}`))
    expect(linked.length).toBe(files.size)
    for (const [, { file, nlink }] of files) expect(fs.statSync(file).nlink, file).toBe(nlink + 1)
    expect(cfsctlIn(repoDir, ['oci', 'compute-id', 'app']).stdout.trim()).toBe(expected.id)
    const fsck = cfsctlIn(repoDir, ['oci', 'fsck'])
    expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0)
    expect(fsck.stdout).toMatch(/status: ok/)
    // Again into the same repository: nothing new, no link added.
    await image.copyTo(`composefs:${repoDir}:app`, { hardlink: true })
    for (const [, { file, nlink }] of files) expect(fs.statSync(file).nlink, file).toBe(nlink + 1)
  })

  it('--hardlink into a repository on another mount: EXDEV before anything is written', async () => {
    const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-other-'))
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt])
    try {
      const image = await storage.image('localhost/base:1')
      const fresh = path.join(mnt, 'new', 'repo')
      await expect(image.copyTo(`composefs:${fresh}:base`, { hardlink: true })).rejects.toMatchObject({ code: 'EXDEV' })
      expect(fs.readdirSync(mnt)).toEqual([])
      const existing = path.join(mnt, 'repo')
      execFileSync(cfsctl, ['init', '--insecure', existing])
      const before = execFileSync('find', [existing]).toString()
      const cli = cliOn(store, ['copy', 'localhost/base:1', `composefs:${existing}:base`, '--hardlink'])
      expect(cli.status).toBe(1)
      expect(cli.stderr).toMatch(/EXDEV/)
      expect(execFileSync('find', [existing]).toString()).toBe(before)
    } finally {
      execFileSync('umount', [mnt])
      fs.rmSync(mnt, { recursive: true, force: true })
    }
  })

  it('refuses a bad name before writing anything', async () => {
    const target = path.join(dir, 'bad-name')
    await expect((await storage.image('localhost/base:1')).copyTo(`composefs:${target}:../x`)).rejects.toMatchObject({ code: 'EINVAL' })
    expect(fs.existsSync(target)).toBe(false)
  })
})

/**
 * A copy that fails midway leaves nothing half-written: its layer is damaged in a copy of the
 * store where the image's tree does not look (a file the next layer's opaque directory hides, so
 * the tree is computed and the repository opened before the layer's stream meets it), or its
 * tar-split is cut short. The copy rejects with a typed code; no temp file, no name and no image
 * link of the failed image is left; a repository that held an image still holds it whole (cfsctl
 * finds it, fsck calls the repository ok), and a repository the copy created is gone (an empty
 * directory it was made in is left empty).
 */
describe('a copy into a composefs repository that fails midway', () => {
  const damages: [string, string, (layerDir: string, tarSplit: string) => void][] = [
    ['a hidden file cut short', 'ECORRUPT', (diff) => fs.truncateSync(path.join(diff, 'app/conf/b.conf'), 1)],
    ['a hidden file replaced by a FIFO', 'ECORRUPT', (diff) => {
      fs.rmSync(path.join(diff, 'app/conf/b.conf'))
      execFileSync('mkfifo', [path.join(diff, 'app/conf/b.conf')])
    }],
    ['a hidden file replaced by a directory', 'ECORRUPT', (diff) => {
      fs.rmSync(path.join(diff, 'app/conf/b.conf'))
      fs.mkdirSync(path.join(diff, 'app/conf/b.conf'))
    }],
    ['a tar-split cut short', 'ECORRUPT', (_diff, tarSplit) => fs.truncateSync(tarSplit, Math.floor(fs.statSync(tarSplit).size / 2))],
  ]

  it.each(damages)('%s: rejects with %s, nothing of the image named, the other image intact, a new repository removed', async (_what, code, damage) => {
    const damaged = copyStore(main)
    try {
      const opened = await Storage.open(damaged)
      try {
        const app = await opened.image('localhost/app:1')
        // The middle layer: the one whose /app/conf the top layer replaces with an opaque directory.
        const middle = (await app.layers())[1]
        damage(path.join(damaged.root, 'overlay', middle.id, 'diff'), path.join(damaged.root, 'overlay-layers', `${middle.id}.tar-split.gz`))
        const manifestDigest = app.digest!
        expect(manifestDigest).toMatch(/^sha256:/)

        const existing = fs.mkdtempSync(path.join(dir, 'damaged-'))
        fs.rmdirSync(existing)
        execFileSync(cfsctl, ['init', '--insecure', existing])
        const base = await (await storage.image('localhost/base:1')).copyTo(`composefs:${existing}:base`)
        await expect(app.copyTo(`composefs:${existing}:app`)).rejects.toMatchObject({ code })
        expect(execFileSync('find', [existing, '-name', '.*']).toString().trim().split('\n').filter((p) => p && p !== existing)).toEqual([])
        expect(fs.readdirSync(path.join(existing, 'streams', 'refs', 'oci'))).toEqual(['base'])
        expect(fs.readdirSync(path.join(existing, 'images'))).toEqual([base.composefsId])
        expect(fs.readdirSync(path.join(existing, 'streams')).filter((n) => n.includes(manifestDigest) || n.includes(app.id))).toEqual([])
        expect(cfsctlIn(existing, ['oci', 'compute-id', 'base']).stdout.trim()).toBe(base.composefsId)
        expect(cfsctlIn(existing, ['oci', 'images']).stdout).toMatch(/\bbase\b/)
        const fsck = cfsctlIn(existing, ['oci', 'fsck'])
        expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0)
        expect(fsck.stdout).toMatch(/status: ok/)

        const fresh = path.join(dir, `fresh-${path.basename(existing)}`)
        await expect(app.copyTo(`composefs:${fresh}:app`)).rejects.toMatchObject({ code })
        expect(fs.existsSync(fresh)).toBe(false)
        // With hard links, the store's files linked before the failure are left as they were.
        const busybox = path.join(damaged.root, 'overlay', (await app.layers())[2].id, 'diff', 'bin', 'busybox')
        const links = fs.statSync(busybox).nlink
        const linked = `${fresh}-hardlinked`
        await expect(app.copyTo(`composefs:${linked}:app`, { hardlink: true })).rejects.toMatchObject({ code })
        expect(fs.existsSync(linked)).toBe(false)
        expect(fs.statSync(busybox).nlink).toBe(links)
        // An empty directory made into a repository by the copy is left empty again.
        const empty = fs.mkdtempSync(path.join(dir, 'empty-'))
        await expect(app.copyTo(`composefs:${empty}:app`)).rejects.toMatchObject({ code })
        expect(fs.readdirSync(empty)).toEqual([])
      } finally {
        opened.close()
      }
    } finally {
      damaged.cleanup()
    }
  })
})
