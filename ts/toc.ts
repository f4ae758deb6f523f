import { InvalidArgumentError } from './errors.js'
import type { TocEntryInfo } from './native.js'

/**
 * One entry of a table of contents, with eStargz's field names and meanings; empty fields are
 * left out, as eStargz leaves them out.
 */
export interface TocEntry {
  /** The path, without `./` or a trailing `/`. */
  name: string
  /** `whiteout` only in an image TOC with `whiteouts: 'list'`: a path an upper layer deleted. */
  type: 'dir' | 'reg' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'whiteout'
  /** Content bytes of a regular file (a hardlink: of its target). */
  size?: number
  /** RFC 3339, whole seconds as tar headers keep them. */
  modtime: string
  /** A symlink's target, or the entry a hardlink points at. */
  linkName?: string
  /** Permission bits with setuid, setgid and sticky. */
  mode: number
  uid: number
  gid: number
  userName?: string
  groupName?: string
  devMajor?: number
  devMinor?: number
  /** Extended attributes, values in base64. */
  xattrs?: Record<string, string>
  /** `sha256:<hex>` of the content, when asked for with `digests: true`. */
  digest?: string
  /** Only with `whiteouts: 'list'`: the directory hides what layers below it had. */
  opaque?: true
}

export interface Toc {
  version: 1
  entries: TocEntry[]
}

export interface TocOptions {
  /** Read every regular file to give its sha256 digest; default `false` (headers only). */
  digests?: boolean
}

export interface ImageTocOptions extends TocOptions {
  /** `'apply'` (default): the merged view; `'list'`: plus deleted paths and opaque marks. */
  whiteouts?: 'apply' | 'list'
}

/** The binding's entries as an eStargz-style TOC. */
export function toToc(entries: TocEntryInfo[]): Toc {
  return {
    version: 1,
    entries: entries.map((e) => {
      const entry: TocEntry = {
        name: e.name,
        type: e.kind as TocEntry['type'],
        modtime: new Date(e.modTime * 1000).toISOString().replace('.000Z', 'Z'),
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
      }
      if (e.size > 0) entry.size = e.size
      if (e.linkName) entry.linkName = e.linkName
      if (e.userName) entry.userName = e.userName
      if (e.groupName) entry.groupName = e.groupName
      if (e.kind === 'char' || e.kind === 'block') Object.assign(entry, { devMajor: e.devMajor, devMinor: e.devMinor })
      if (e.xattrs.length > 0) entry.xattrs = Object.fromEntries(e.xattrs.map((x) => [x.key, x.value.toString('base64')]))
      if (e.digest) entry.digest = e.digest
      if (e.opaque) entry.opaque = true
      return entry
    }),
  }
}

/** Checks an image TOC's `whiteouts` option; the binding takes a boolean. */
export function listWhiteouts(whiteouts: ImageTocOptions['whiteouts']): boolean {
  if (whiteouts === undefined || whiteouts === 'apply') return false
  if (whiteouts === 'list') return true
  throw new InvalidArgumentError('EINVAL', `whiteouts must be 'apply' or 'list', not ${JSON.stringify(whiteouts)}`)
}
