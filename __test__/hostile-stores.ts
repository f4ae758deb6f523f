/**
 * The hostile-store corpus: copies of the main fixture store (built by real podman and skopeo),
 * each damaged one way a careless tool or an attacker could — links and names that lead out of
 * the store, cycles, absurd sizes and depths, files of the wrong type or shape. Every case lives in
 * a sandbox that also holds canary files *outside* the store, so a test can tell whether anything
 * read or wrote past the store's root.
 *
 * The victim is `localhost/app:1` (three layers; its top layer has one file body,
 * `app/conf/new.conf`, and whiteouts).
 */
import { randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'
import { main, type FixtureStore } from './helpers'
import { scratchDir } from './scratch'

export interface Sandbox {
  dir: string
  store: FixtureStore
  /** A directory beside the store holding the canaries; nothing may read or change it. */
  outside: string
  /** Where a case's exports and extractions go; nothing may appear elsewhere. */
  target: string
  /** A file outside the store whose content must never show up in any result. */
  canary: string
  /** The canary's content: a string that occurs nowhere else. */
  marker: string
  cleanup: () => void
}

/** What a case damages, found from the copied store's own records. */
export interface Victim {
  image: string
  /** Top first, base last. */
  layers: string[]
  top: string
  /** The one file body of the top layer, relative to its `diff/`. */
  body: string
}

export interface HostileCase {
  name: string
  damage: (s: Sandbox, v: Victim) => void
  /** The case edits tar headers inside segments, so a successful export may differ from diff-digest. */
  exportsMayDiffer?: true
}

const VICTIM_NAME = 'localhost/app:1'
const VICTIM_BODY = 'app/conf/new.conf'

/** A fresh copy of the main fixture store with canaries beside it. */
export function sandbox(): Sandbox {
  const dir = scratchDir('cstor-hostile-')
  const store = { root: path.join(dir, 'store', 'root'), runroot: path.join(dir, 'store', 'run') }
  fs.mkdirSync(path.dirname(store.root))
  execFileSync('cp', ['-a', main.root, store.root])
  fs.mkdirSync(store.runroot)
  const outside = path.join(dir, 'outside')
  const target = path.join(dir, 'target')
  fs.mkdirSync(outside)
  fs.mkdirSync(target)
  const marker = `CSTOR-CANARY-${randomBytes(12).toString('hex')}`
  const canary = path.join(outside, 'canary.txt')
  fs.writeFileSync(canary, `${marker}\n`)
  // Decoys shaped like store files, so that following a link out of the store would "work".
  writeJson(path.join(outside, 'layers.json'), [{ id: 'f'.repeat(64), names: [marker] }])
  fs.mkdirSync(path.join(outside, 'dir'))
  fs.writeFileSync(path.join(outside, 'dir', 'leak.txt'), `${marker}\n`)
  return { dir, store, outside, target, canary, marker, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

export function victimOf(s: Sandbox): Victim {
  const images = readJson(imagesJson(s))
  const image = images.find((i: { names?: string[] }) => i.names?.includes(VICTIM_NAME))
  const parents = new Map<string, string | undefined>(readJson(layersJson(s)).map((l: { id: string; parent?: string }) => [l.id, l.parent]))
  const layers: string[] = []
  for (let id: string | undefined = image.layer; id; id = parents.get(id)) layers.push(id)
  return { image: image.id, layers, top: layers[0], body: VICTIM_BODY }
}

/**
 * A stat of every entry under `dir` (type, size, mode, mtime, content), not following symlinks:
 * equal before and after means nothing there was written to, replaced or added.
 */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (at: string) => {
    for (const name of fs.readdirSync(at)) {
      const file = path.join(at, name)
      const st = fs.lstatSync(file)
      const content = st.isFile() ? fs.readFileSync(file).toString('base64') : st.isSymbolicLink() ? fs.readlinkSync(file) : ''
      out[path.relative(dir, file)] = `${st.mode} ${st.size} ${st.mtimeMs} ${st.ctimeMs} ${content}`
      if (st.isDirectory()) walk(file)
    }
  }
  walk(dir)
  return out
}

const layersJson = (s: Sandbox) => path.join(s.store.root, 'overlay-layers', 'layers.json')
const imagesJson = (s: Sandbox) => path.join(s.store.root, 'overlay-images', 'images.json')
const layerDir = (s: Sandbox, id: string) => path.join(s.store.root, 'overlay', id)
const diffOf = (s: Sandbox, id: string) => path.join(layerDir(s, id), 'diff')
const tarSplitOf = (s: Sandbox, id: string) => path.join(s.store.root, 'overlay-layers', `${id}.tar-split.gz`)
const linkOf = (s: Sandbox, id: string) => fs.readFileSync(path.join(layerDir(s, id), 'link'), 'utf8').trim()

function readJson(file: string) {
  return JSON.parse(fs.readFileSync(file, 'utf8'))
}

function writeJson(file: string, value: unknown) {
  fs.writeFileSync(file, JSON.stringify(value))
}

function editJson(file: string, edit: (value: any) => unknown) {
  const value = readJson(file)
  writeJson(file, edit(value) ?? value)
}

/** Replaces `file` (whatever it is) with a symlink to `to`. */
function symlinkOver(file: string, to: string) {
  fs.rmSync(file, { recursive: true, force: true })
  fs.symlinkSync(to, file)
}

/** `to` as a relative symlink target from where `link` is. */
const relativeTo = (link: string, to: string) => path.relative(path.dirname(link), to)

type TarSplitEntry = { type: number; name?: string; name_raw?: string; size?: number; payload?: string | null; position: number }

/** Rewrites a layer's tar-split: `edit` gets its entries and returns entries, or JSON lines when it must write what JSON.stringify cannot (integers past 2^53). */
function editTarSplit(s: Sandbox, id: string, edit: (entries: TarSplitEntry[]) => TarSplitEntry[] | string[]) {
  const file = tarSplitOf(s, id)
  const entries = gunzipSync(fs.readFileSync(file)).toString().split('\n').filter(Boolean).map((l) => JSON.parse(l))
  const edited = edit(entries)
  const lines = edited.map((e) => (typeof e === 'string' ? e : JSON.stringify(e)))
  fs.writeFileSync(file, gzipSync(lines.join('\n') + '\n'))
}

/** Makes the body entry `name` of a tar-split name `newName` with `bytes`' size and CRC instead. */
function retargetBody(entries: TarSplitEntry[], name: string, newName: Partial<TarSplitEntry>, bytes: Buffer): TarSplitEntry[] {
  return entries.map((e) => {
    if (e.type !== 1 || e.name !== name) return e
    const { name: _old, ...rest } = e
    return { ...rest, ...newName, size: bytes.length, payload: crc64GoIso(bytes).toString('base64') }
  })
}

const CRC64_ISO_REFLECTED = 0xd800000000000000n
const CRC64_TABLE = Array.from({ length: 256 }, (_, i) => {
  let crc = BigInt(i)
  for (let bit = 0; bit < 8; bit++) crc = crc & 1n ? (crc >> 1n) ^ CRC64_ISO_REFLECTED : crc >> 1n
  return crc
})

/** CRC-64/GO-ISO, big-endian, as tar-split records it (check: "123456789" → b90956c775a41001). */
export function crc64GoIso(bytes: Buffer): Buffer {
  const mask = (1n << 64n) - 1n
  let crc = mask
  for (const byte of bytes) crc = CRC64_TABLE[Number((crc ^ BigInt(byte)) & 0xffn)] ^ (crc >> 8n)
  const out = Buffer.alloc(8)
  out.writeBigUInt64BE(crc ^ mask)
  return out
}

/** A copy of a tar header whose size field says 8 GiB - 1 (octal 77777777777), checksum redone. */
function withHugeSize(header: Buffer): Buffer {
  const out = Buffer.from(header)
  out.write('77777777777\0', 124, 'latin1')
  out.fill(' ', 148, 156)
  let sum = 0
  for (let i = 0; i < 512; i++) sum += out[i]
  out.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1')
  return out
}

/** A ustar PAX extended header ('x') declaring an 8 GiB record, then `bytes` zeros. */
function paxBomb(bytes: number): Buffer {
  const header = Buffer.alloc(512)
  header.write('PaxHeaders/bomb', 0, 'latin1')
  header.write('0000644\0', 100, 'latin1')
  header.write('x', 156, 'latin1')
  header.write('ustar\x0000', 257, 'latin1')
  return Buffer.concat([withHugeSize(header), Buffer.alloc(bytes)])
}

/** Link names as the overlay driver writes them: 26 characters of base32. */
const fakeLink = (i: number) => `L${String(i).padStart(25, '0')}`
const fakeId = (i: number) => `${'e'.repeat(56)}${String(i).padStart(8, '0')}`

/** The cases, each one kind of damage; `hostile.test.ts` runs every public API on each. */
export const CASES: HostileCase[] = [
  // diff/: what the layer's files are
  {
    name: 'a file body replaced by an absolute symlink out of the store',
    damage: (s, v) => symlinkOver(path.join(diffOf(s, v.top), v.body), s.canary),
  },
  {
    name: 'a file body replaced by a relative symlink out of the store',
    damage: (s, v) => {
      const body = path.join(diffOf(s, v.top), v.body)
      symlinkOver(body, relativeTo(body, s.canary))
    },
  },
  {
    name: 'a file body replaced by a FIFO',
    damage: (s, v) => {
      const body = path.join(diffOf(s, v.top), v.body)
      fs.rmSync(body)
      execFileSync('mkfifo', [body])
    },
  },
  {
    name: 'a file body replaced by a character device (1:3)',
    damage: (s, v) => {
      const body = path.join(diffOf(s, v.top), v.body)
      fs.rmSync(body)
      execFileSync('mknod', [body, 'c', '1', '3'])
    },
  },
  {
    name: 'a lower layer symlinks a directory out of the store, an upper layer writes into it',
    damage: (s, v) => {
      const base = diffOf(s, v.layers.at(-1)!)
      fs.symlinkSync(path.join(s.outside, 'dir'), path.join(base, 'escape'))
      fs.symlinkSync(relativeTo(path.join(base, 'x'), path.join(s.outside, 'dir')), path.join(base, 'escape-rel'))
      for (const name of ['escape', 'escape-rel']) {
        fs.mkdirSync(path.join(diffOf(s, v.top), name))
        fs.writeFileSync(path.join(diffOf(s, v.top), name, 'pwned'), 'written through a symlink\n')
      }
    },
  },
  {
    name: "a layer's diff/ replaced by an absolute symlink to a directory out of the store",
    damage: (s, v) => symlinkOver(diffOf(s, v.top), path.join(s.outside, 'dir')),
  },
  {
    name: "a layer's whole overlay/<id> directory replaced by a relative symlink out of the store",
    damage: (s, v) => {
      const fake = path.join(s.outside, 'layer')
      execFileSync('cp', ['-a', layerDir(s, v.top), fake])
      fs.writeFileSync(path.join(fake, 'diff', 'leak.txt'), `${s.marker}\n`)
      symlinkOver(layerDir(s, v.top), relativeTo(layerDir(s, v.top), fake))
    },
  },
  {
    name: "a layer's diff/ is missing",
    damage: (s, v) => fs.rmSync(diffOf(s, v.top), { recursive: true }),
  },
  // tar-split: the record of the layer's tar
  {
    name: 'a tar-split body named ../…/canary (size and CRC of the canary)',
    damage: (s, v) =>
      editTarSplit(s, v.top, (e) => retargetBody(e, v.body, { name: relativeTo(path.join(diffOf(s, v.top), 'x'), s.canary) }, fs.readFileSync(s.canary))),
  },
  {
    name: 'a tar-split body named by the absolute path of the canary (its size and CRC)',
    damage: (s, v) => editTarSplit(s, v.top, (e) => retargetBody(e, v.body, { name: s.canary }, fs.readFileSync(s.canary))),
  },
  {
    name: 'a tar-split body with a name_raw of ../…/canary',
    damage: (s, v) =>
      editTarSplit(s, v.top, (e) =>
        retargetBody(e, v.body, { name_raw: Buffer.from(relativeTo(path.join(diffOf(s, v.top), 'x'), s.canary)).toString('base64') }, fs.readFileSync(s.canary)),
      ),
  },
  {
    name: 'a tar-split body name with a NUL byte',
    damage: (s, v) => editTarSplit(s, v.top, (e) => e.map((x) => (x.name === v.body ? { ...x, name: `${v.body}\0../../x` } : x))),
  },
  {
    name: 'a tar-split body name with a newline',
    damage: (s, v) => editTarSplit(s, v.top, (e) => e.map((x) => (x.name === v.body ? { ...x, name: `app/conf/\nnew.conf` } : x))),
  },
  {
    name: 'a tar-split body of 2^63-1 bytes',
    damage: (s, v) =>
      editTarSplit(s, v.top, (e) => e.map((x) => (x.name === v.body ? JSON.stringify(x).replace(/"size":\d+/, '"size":9223372036854775807') : JSON.stringify(x)))),
  },
  {
    name: 'a tar-split body of 10^30 bytes (no 64-bit integer)',
    damage: (s, v) => editTarSplit(s, v.top, (e) => e.map((x) => (x.name === v.body ? JSON.stringify(x).replace(/"size":\d+/, '"size":1000000000000000000000000000000') : JSON.stringify(x)))),
  },
  {
    name: 'a tar header in a tar-split segment declaring an 8 GiB file',
    exportsMayDiffer: true,
    damage: (s, v) =>
      editTarSplit(s, v.top, (entries) => {
        const index = entries.findIndex((x) => x.name === v.body)
        const segment = entries[index - 1]
        const bytes = Buffer.from(segment.payload!, 'base64')
        const header = bytes.length - 512
        const edited = Buffer.concat([bytes.subarray(0, header), withHugeSize(bytes.subarray(header))])
        return entries.map((x, i) => (i === index - 1 ? { ...x, payload: edited.toString('base64') } : x))
      }),
  },
  {
    name: 'a tar-split of a PAX header declaring 8 GiB over 48 MiB of segments',
    exportsMayDiffer: true,
    damage: (s, v) => {
      const tar = paxBomb(48 << 20)
      const lines = []
      for (let at = 0, position = 0; at < tar.length; at += 1 << 20, position++) {
        lines.push(JSON.stringify({ type: 2, payload: tar.subarray(at, at + (1 << 20)).toString('base64'), position }))
      }
      fs.writeFileSync(tarSplitOf(s, v.top), gzipSync(lines.join('\n') + '\n', { level: 1 }))
    },
  },
  {
    name: 'a tar-split that is not gzip',
    damage: (s, v) => fs.writeFileSync(tarSplitOf(s, v.top), '{"type":2,"payload":"","position":0}\n'),
  },
  {
    name: 'a tar-split that inflates to one 80 MiB line',
    damage: (s, v) => fs.writeFileSync(tarSplitOf(s, v.top), gzipSync(Buffer.alloc(80 << 20, 'A'), { level: 1 })),
  },
  {
    name: 'a tar-split replaced by an absolute symlink to a tar-split out of the store',
    damage: (s, v) => {
      const evil = path.join(s.outside, 'evil.tar-split.gz')
      fs.copyFileSync(tarSplitOf(s, v.top), evil)
      symlinkOver(tarSplitOf(s, v.top), evil)
    },
  },
  {
    name: 'a tar-split is missing',
    damage: (s, v) => fs.rmSync(tarSplitOf(s, v.top)),
  },
  // overlay's link, lower and l/ files
  {
    name: 'an l/ link pointing out of the store (relative)',
    damage: (s, v) => {
      const link = path.join(s.store.root, 'overlay', 'l', linkOf(s, v.layers.at(-1)!))
      symlinkOver(link, relativeTo(link, path.join(s.outside, 'dir')))
    },
  },
  {
    name: 'a link file holding a path',
    damage: (s, v) => fs.writeFileSync(path.join(layerDir(s, v.top), 'link'), '../../../outside'),
  },
  {
    name: 'lower files forming a cycle between two layers',
    damage: (s, v) => {
      fs.writeFileSync(path.join(layerDir(s, v.top), 'lower'), `l/${linkOf(s, v.layers[1])}`)
      fs.writeFileSync(path.join(layerDir(s, v.layers[1]), 'lower'), `l/${linkOf(s, v.top)}`)
    },
  },
  {
    name: 'a lower file 501 layers deep',
    damage: (s, v) => fs.writeFileSync(path.join(layerDir(s, v.top), 'lower'), Array.from({ length: 501 }, (_, i) => `l/${fakeLink(i)}`).join(':')),
  },
  {
    name: 'a lower file with paths',
    damage: (s, v) => fs.writeFileSync(path.join(layerDir(s, v.top), 'lower'), 'l/../../../outside:l/../../x'),
  },
  // layers.json
  {
    name: 'layers.json is binary garbage',
    damage: (s) => fs.writeFileSync(layersJson(s), randomBytes(4096)),
  },
  {
    name: 'layers.json holds records of the wrong shape (null, numbers, an object)',
    damage: (s) => fs.writeFileSync(layersJson(s), '[null, 7, {"id": 5}, "x"]'),
  },
  {
    name: 'a layers.json record with fields of the wrong types',
    damage: (s, v) => editJson(layersJson(s), (ls) => ls.map((l: any) => (l.id === v.top ? { ...l, names: 7, 'diff-size': 'big', uidset: [-1] } : l))),
  },
  {
    name: 'a parent chain 600 layers deep under the image',
    damage: (s, v) => {
      editJson(layersJson(s), (ls) => [...ls, ...Array.from({ length: 600 }, (_, i) => ({ id: fakeId(i), ...(i > 0 && { parent: fakeId(i - 1) }) }))])
      editJson(imagesJson(s), (is) => is.map((i: any) => (i.id === v.image ? { ...i, layer: fakeId(599) } : i)))
    },
  },
  {
    name: 'a parent cycle through the image\'s layers',
    damage: (s, v) => editJson(layersJson(s), (ls) => ls.map((l: any) => (l.id === v.layers.at(-1) ? { ...l, parent: v.top } : l))),
  },
  {
    name: 'a parent that is a path',
    damage: (s, v) => editJson(layersJson(s), (ls) => ls.map((l: any) => (l.id === v.top ? { ...l, parent: '../../../outside' } : l))),
  },
  {
    name: 'layers.json replaced by an absolute symlink to a layers.json out of the store',
    damage: (s) => symlinkOver(layersJson(s), path.join(s.outside, 'layers.json')),
  },
  {
    name: 'layers.lock replaced by an absolute symlink to the canary',
    damage: (s) => symlinkOver(path.join(s.store.root, 'overlay-layers', 'layers.lock'), s.canary),
  },
  {
    name: 'volatile-layers.json with a path-like ID',
    damage: (s) => writeJson(path.join(s.store.root, 'overlay-layers', 'volatile-layers.json'), [{ id: '../../x' }]),
  },
  // images.json and big data
  {
    name: 'images.json is not JSON',
    damage: (s) => fs.writeFileSync(imagesJson(s), '[{"id": "abc", '),
  },
  {
    name: 'an image whose top layer is a path',
    damage: (s, v) => editJson(imagesJson(s), (is) => is.map((i: any) => (i.id === v.image ? { ...i, layer: '../../../outside' } : i))),
  },
  {
    name: 'image names with NUL bytes and newlines',
    damage: (s, v) => editJson(imagesJson(s), (is) => is.map((i: any) => (i.id === v.image ? { ...i, names: [...i.names, 'localhost/x\0y:1', 'localhost/a\nb:2'] } : i))),
  },
  {
    name: 'big-data names that are paths or not base64, and a file named like one',
    damage: (s, v) => {
      editJson(imagesJson(s), (is) =>
        is.map((i: any) => (i.id === v.image ? { ...i, 'big-data-names': [...i['big-data-names'], '../../../outside/canary.txt', '=not base64!', ''] } : i)),
      )
      fs.writeFileSync(path.join(s.store.root, 'overlay-images', v.image, '=not base64!'), s.marker)
    },
  },
  {
    name: 'a manifest that is not JSON',
    damage: (s, v) => fs.writeFileSync(path.join(s.store.root, 'overlay-images', v.image, 'manifest'), 'not json'),
  },
  {
    name: "a manifest whose config digest is a path",
    damage: (s, v) => editJson(path.join(s.store.root, 'overlay-images', v.image, 'manifest'), (m) => ({ ...m, config: { ...m.config, digest: 'sha256:../../../../outside/canary.txt' } })),
  },
  {
    name: "an image's big-data directory replaced by a relative symlink out of the store",
    damage: (s, v) => {
      const dir = path.join(s.store.root, 'overlay-images', v.image)
      const fake = path.join(s.outside, 'image')
      execFileSync('cp', ['-a', dir, fake])
      fs.writeFileSync(path.join(fake, 'manifest'), s.marker)
      symlinkOver(dir, relativeTo(dir, fake))
    },
  },
]
