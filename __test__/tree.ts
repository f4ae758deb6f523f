/**
 * A comparable picture of a directory tree: for every entry its type, mode, owners, mtime (ns),
 * size, content hash, symlink target, device numbers, xattrs (as `getfattr` lists them) and the
 * other names of its hardlink group. Two trees are equal for a user when their pictures are.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

export type Tree = Record<string, string>

function kind(st: fs.BigIntStats): string {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'dir'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isFIFO()) return 'fifo'
  if (st.isCharacterDevice()) return `char ${st.rdev}`
  if (st.isBlockDevice()) return `block ${st.rdev}`
  return 'socket'
}

/** Every xattr of every entry under `root`, not following symlinks: relative path → `k=v` list. */
function xattrs(root: string): Map<string, string> {
  const out = execFileSync('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'base64', '--absolute-names', root], {
    maxBuffer: 1 << 28,
    stdio: ['ignore', 'pipe', 'ignore'],
  }).toString()
  const found = new Map<string, string>()
  for (const block of out.split('\n\n')) {
    const [header, ...pairs] = block.trim().split('\n')
    if (!header?.startsWith('# file: ')) continue
    const rel = path.relative(root, header.slice('# file: '.length)) || '.'
    found.set(rel, pairs.sort().join(' '))
  }
  return found
}

/**
 * The picture of `root`, with mtimes in nanoseconds, or in whole seconds for a tree extracted from
 * a tar (whose headers carry seconds).
 */
export function snapshot(root: string, { mtimes = 'ns' }: { mtimes?: 'ns' | 's' } = {}): Tree {
  const attrs = xattrs(root)
  const tree: Tree = {}
  const groups = new Map<bigint, string[]>()
  const stats = new Map<string, fs.BigIntStats>()
  const pending = ['.']
  while (pending.length > 0) {
    const rel = pending.pop()!
    const st = fs.lstatSync(path.join(root, rel), { bigint: true })
    stats.set(rel, st)
    if (st.isDirectory()) for (const name of fs.readdirSync(path.join(root, rel))) pending.push(path.join(rel, name))
    else if (st.nlink > 1n) groups.set(st.ino, [...(groups.get(st.ino) ?? []), rel])
  }
  for (const [rel, st] of stats) {
    const fields = [kind(st), `mode=${(st.mode & 0o7777n).toString(8)}`, `owner=${st.uid}:${st.gid}`]
    fields.push(`mtime=${mtimes === 'ns' ? st.mtimeNs : st.mtimeNs / 1_000_000_000n}`)
    if (st.isFile()) {
      fields.push(`size=${st.size}`, `sha256=${createHash('sha256').update(fs.readFileSync(path.join(root, rel))).digest('hex')}`)
      const group = groups.get(st.ino)
      if (group && group.length > 1) fields.push(`links=${group.filter((p) => p !== rel).sort().join(',')}`)
    }
    if (st.isSymbolicLink()) fields.push(`target=${fs.readlinkSync(path.join(root, rel))}`)
    const xattr = attrs.get(rel)
    if (xattr) fields.push(`xattrs=${xattr}`)
    tree[rel] = fields.join(' ')
  }
  return tree
}
