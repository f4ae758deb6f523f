/** `cstor image cat|ls|find|diff|analyze` and `cstor layer ls LAYER`: an image's files, read in place. */
import { pipeline } from 'node:stream/promises'
import type { ImageFs, Stats, Storage } from '../index.js'
import { humanSize, printJson, printTable } from './output.js'
import { UsageError, type Flags } from './usage.js'

/** `cat`: the files one after another on stdout. */
export async function cat(storage: Storage, reference: string, paths: string[]): Promise<void> {
  if (paths.length === 0) throw new UsageError('cstor image cat takes an image reference and at least one path')
  const tree = (await storage.image(reference)).fs
  for (const path of paths) await pipeline(tree.createReadStream(path), process.stdout, { end: false })
}

/** `ls -l`'s mode column. */
function modeString(st: Stats): string {
  const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFIFO() ? 'p' : st.isBlockDevice() ? 'b' : st.isCharacterDevice() ? 'c' : '-'
  const bits = 'rwxrwxrwx'.split('').map((c, i) => (st.mode & (0o400 >> i) ? c : '-'))
  if (st.mode & 0o4000) bits[2] = bits[2] === 'x' ? 's' : 'S'
  if (st.mode & 0o2000) bits[5] = bits[5] === 'x' ? 's' : 'S'
  if (st.mode & 0o1000) bits[8] = bits[8] === 'x' ? 't' : 'T'
  return type + bits.join('')
}

function longLine(st: Stats, name: string): string {
  const when = st.mtime.toISOString().slice(0, 16).replace('T', ' ')
  const link = st.linkTarget === undefined ? '' : ` -> ${st.linkTarget}`
  return `${modeString(st)} ${String(st.nlink).padStart(3)} ${String(st.uid).padStart(5)} ${String(st.gid).padStart(5)} ${String(st.size).padStart(10)} ${when} ${name}${link}`
}

/** What `--json` prints of an entry. */
function record(st: Stats): Record<string, unknown> {
  const { path, type, mode, uid, gid, size, nlink, linkTarget, layer } = st
  return { path, type, mode, uid, gid, size, mtime: st.mtime.toISOString(), nlink, ...(linkTarget !== undefined && { linkTarget }), layer }
}

/** `ls [-l] [-R] [PATH]` over a tree: a directory's entries, or the file itself. */
export async function ls(tree: ImageFs, path: string, flags: Flags): Promise<void> {
  const start = await tree.stat(path)
  const listing: Stats[] = []
  const out: string[] = []
  const walk = async (dir: string, header: boolean): Promise<void> => {
    const names = await tree.readdir(dir)
    const stats = await Promise.all(names.map((name) => tree.lstat(`${dir.replace(/\/$/, '')}/${name}`)))
    if (header) out.push(`${out.length > 0 ? '\n' : ''}${dir}:`)
    stats.forEach((st, i) => {
      listing.push(st)
      out.push(flags.long ? longLine(st, names[i]) : names[i])
    })
    if (flags.recursive) for (const st of stats) if (st.isDirectory()) await walk(st.path, true)
  }
  if (start.isDirectory()) await walk(start.path, flags.recursive)
  else {
    const st = await tree.lstat(path)
    listing.push(st)
    out.push(flags.long ? longLine(st, path) : path)
  }
  if (flags.json) return printJson(listing.map(record))
  if (out.length > 0) process.stdout.write(out.join('\n') + '\n')
}

const FIND_TYPES: Record<string, string> = { f: 'reg', d: 'dir', l: 'symlink' }

/** `find [--name GLOB] [--type f|d|l]`: matching paths, from the root. */
export async function find(tree: ImageFs, flags: Flags): Promise<void> {
  if (flags.type !== undefined && !(flags.type in FIND_TYPES)) throw new UsageError('--type takes f, d or l')
  const found: Stats[] = []
  const match = flags.name === undefined ? undefined : `**/${flags.name}`
  for await (const entry of tree.entries({ match })) {
    if (flags.type === undefined || entry.type === FIND_TYPES[flags.type]) found.push(entry)
  }
  if (flags.json) return printJson(found.map(record))
  if (found.length > 0) process.stdout.write(found.map((e) => e.path).join('\n') + '\n')
}

/** `layer ls LAYER`: every entry of one layer, whiteouts marked. */
export async function layerLs(tree: ImageFs, flags: Flags): Promise<void> {
  const found: Stats[] = []
  for await (const entry of tree.entries()) found.push(entry)
  if (flags.json) return printJson(found.map(record))
  const lines = found.map((e) => (e.type === 'whiteout' ? `${e.path} (deleted)` : flags.long ? longLine(e, e.path) : e.path))
  if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n')
}

/** `image diff A [B]`: `podman image diff`'s lines, or its `--format json` object. */
export async function diff(storage: Storage, reference: string, base: string | undefined, flags: Flags): Promise<void> {
  const changes = await (await storage.image(reference)).diff(base)
  if (flags.json) {
    const of = (kind: string) => changes.filter((c) => c.kind === kind).map((c) => c.path)
    const report = { changed: of('C'), added: of('A'), deleted: of('D') }
    return printJson(Object.fromEntries(Object.entries(report).filter(([, paths]) => paths.length > 0)))
  }
  if (changes.length > 0) process.stdout.write(changes.map((c) => `${c.kind} ${c.path}`).join('\n') + '\n')
}

/** `image analyze`: per layer its files, then dive's figures (as `dive --ci` prints them). */
export async function analyze(storage: Storage, reference: string, flags: Flags): Promise<void> {
  const analysis = await (await storage.image(reference)).analyze()
  if (flags.json) return printJson(analysis)
  printTable(
    ['LAYER', 'SIZE', 'ADDED', 'CHANGED', 'REMOVED'],
    analysis.layers.map((l) => {
      const files = (list: { size: number }[]) => `${list.length} (${humanSize(list.reduce((sum, f) => sum + f.size, 0))})`
      return [l.id.slice(0, 12), humanSize(l.sizeBytes), files(l.added), files(l.changed), files(l.removed)]
    }),
  )
  const lines = [
    '',
    `efficiency: ${(analysis.efficiency * 100).toFixed(4)} %`,
    `wastedBytes: ${analysis.wastedBytes} bytes (${humanSize(analysis.wastedBytes)})`,
    `userWastedPercent: ${(analysis.wastedUserFraction * 100).toFixed(4)} %`,
  ]
  if (analysis.inefficientFiles.length > 0) {
    lines.push('', 'Count  Wasted Space  File Path', ...analysis.inefficientFiles.map((f) => `${String(f.count).padStart(5)}  ${humanSize(f.sizeBytes).padStart(12)}  ${f.path}`))
  }
  process.stdout.write(lines.join('\n') + '\n')
}
