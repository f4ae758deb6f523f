/**
 * An image's filesystem read in place, shaped like `node:fs/promises`: `image.fs` is the merged
 * view `podman image mount` shows, `layer.fs` one layer's own entries (whiteouts visible as
 * `whiteout` entries, which `stat` shows as overlayfs keeps them: a character device 0:0).
 * Metadata comes from the layers' tar-split headers, content from the owning layer's `diff/`;
 * nothing is mounted or extracted. Paths are absolute or relative to the image root; symlinks
 * resolve inside the image as in a chroot. Errors carry `code` (`ENOENT`, `EISDIR`, `ENOTDIR`,
 * `ELOOP`, `EINVAL`, `ENODATA`), `path` and `syscall`, as `node:fs` errors do.
 */
import fs from 'node:fs'
import { Readable } from 'node:stream'
import type { Backend } from './backend.js'
import { closeAll } from './call.js'
import { CstorError } from './errors.js'
import type { FsDirent, FsStats } from './generated/operations.js'

/** Entries per call of `entries()`: large enough that calls cost little, small enough to hold. */
const ENTRIES_PAGE = 4096

/** Which tree: an image's merged view or one layer's own entries. */
type FsSource = { image: string } | { layer: string }

/** The type tests `node:fs` `Stats` and `Dirent` share. */
export class EntryType {
  /** `dir`, `reg`, `symlink`, `char`, `block`, `fifo`, or `whiteout` (layer trees only). */
  readonly type: FsStats['type']

  /** @internal */
  constructor(type: FsStats['type']) {
    this.type = type
  }

  isFile(): boolean {
    return this.type === 'reg'
  }
  isDirectory(): boolean {
    return this.type === 'dir'
  }
  isSymbolicLink(): boolean {
    return this.type === 'symlink'
  }
  isCharacterDevice(): boolean {
    return this.type === 'char' || this.type === 'whiteout'
  }
  isBlockDevice(): boolean {
    return this.type === 'block'
  }
  isFIFO(): boolean {
    return this.type === 'fifo'
  }
  isSocket(): boolean {
    return false
  }
}

/** What `stat`/`lstat` return: `node:fs` `Stats` fields and tests, plus the providing layer. */
export class Stats extends EntryType {
  /** The entry's path from the image root, `/` first (the resolved one for `stat`). */
  readonly path: string
  readonly dev = 0
  readonly ino: number
  readonly mode: number
  readonly nlink: number
  readonly uid: number
  readonly gid: number
  readonly rdev: number
  /** Content bytes of a file, target bytes of a symlink, 0 for a directory. */
  readonly size: number
  readonly blksize = 4096
  readonly blocks: number
  readonly atimeMs: number
  readonly mtimeMs: number
  readonly ctimeMs: number
  readonly birthtimeMs: number
  readonly atime: Date
  readonly mtime: Date
  readonly ctime: Date
  readonly birthtime: Date
  /** The ID of the layer that provides the entry. */
  readonly layer: string
  /** A symlink's target. */
  readonly linkTarget?: string

  /** @internal */
  constructor(s: FsStats) {
    super(s.type)
    this.path = s.path
    this.ino = s.ino
    this.mode = s.mode
    this.nlink = s.nlink
    this.uid = s.uid
    this.gid = s.gid
    this.rdev = s.rdev
    this.size = s.size
    this.blocks = Math.ceil(s.size / 512)
    this.atimeMs = this.mtimeMs = this.ctimeMs = this.birthtimeMs = s.mtime * 1000
    this.atime = this.mtime = this.ctime = this.birthtime = new Date(s.mtime * 1000)
    this.layer = s.layer
    if (s.linkTarget !== undefined) this.linkTarget = s.linkTarget
  }
}

/** A directory entry, as `readdir(path, { withFileTypes: true })` gives them. */
export class Dirent extends EntryType {
  readonly name: string
  /** The directory it is in, as the caller named it. */
  readonly parentPath: string

  /** @internal */
  constructor(entry: FsDirent, parentPath: string) {
    super(entry.type)
    this.name = entry.name
    this.parentPath = parentPath
  }
}

/** One entry of `entries()`: its absolute path in the image, metadata and the layer providing it. */
export type FsEntry = Stats

export interface EntriesOptions {
  /** Glob patterns over paths from the root: `*`, `?`, `[a-z]` within a component, `**` across. */
  match?: string | string[]
}

export interface ReadStreamOptions {
  /** First byte (default 0). */
  start?: number
  /** Last byte, inclusive (default: the end), as `fs.createReadStream` takes it. */
  end?: number
  highWaterMark?: number
}

/** The read-only filesystem of an image (`image.fs`) or of one layer (`layer.fs`). */
export class ImageFs {
  readonly #backend: Backend
  readonly #source: FsSource

  /** @internal */
  constructor(backend: Backend, source: FsSource) {
    this.#backend = backend
    this.#source = source
  }

  /** Metadata of what `path` names, following symlinks. */
  async stat(path: string): Promise<Stats> {
    return new Stats(await this.#call('stat', path, () => this.#backend.call('FsStat', { ...this.#source, path, follow: true })))
  }

  /** Metadata of `path` itself, a final symlink not followed. */
  async lstat(path: string): Promise<Stats> {
    return new Stats(await this.#call('lstat', path, () => this.#backend.call('FsStat', { ...this.#source, path, follow: false })))
  }

  /** Whether `path` names something (through symlinks). */
  async exists(path: string): Promise<boolean> {
    try {
      await this.stat(path)
      return true
    } catch (err) {
      if (err instanceof CstorError && ['ENOENT', 'ENOTDIR', 'ELOOP'].includes(err.code)) return false
      throw err
    }
  }

  /** The names in a directory, sorted; `withFileTypes: true` gives `Dirent`s. */
  async readdir(path: string): Promise<string[]>
  async readdir(path: string, options: { withFileTypes?: false }): Promise<string[]>
  async readdir(path: string, options: { withFileTypes: true }): Promise<Dirent[]>
  async readdir(path: string, options: { withFileTypes?: boolean } = {}): Promise<string[] | Dirent[]> {
    const entries = await this.#call('scandir', path, () => this.#backend.call('FsReaddir', { ...this.#source, path }))
    return options.withFileTypes ? entries.map((e) => new Dirent(e, path)) : entries.map((e) => e.name)
  }

  /** A file's content (through symlinks): a Buffer, or a string with `encoding`. */
  async readFile(path: string): Promise<Buffer>
  async readFile(path: string, options: { encoding: BufferEncoding } | BufferEncoding): Promise<string>
  async readFile(path: string, options: { encoding?: BufferEncoding | null } | BufferEncoding = {}): Promise<Buffer | string> {
    const encoding = typeof options === 'string' ? options : options.encoding
    const { size, fd } = await this.#open(path)
    const content = Buffer.alloc(size)
    try {
      let done = 0
      while (done < size) {
        const n = await new Promise<number>((resolve, reject) => fs.read(fd!, content, done, size - done, done, (err, read) => (err ? reject(err) : resolve(read))))
        if (n === 0) break
        done += n
      }
    } finally {
      if (fd !== undefined) fs.closeSync(fd)
    }
    return encoding ? content.toString(encoding) : content
  }

  /**
   * A file's content as a stream, read straight from the layer's `diff/` (`start`/`end`
   * inclusive, as `fs.createReadStream`); errors (`ENOENT`, `EISDIR`) destroy the stream.
   */
  createReadStream(path: string, options: ReadStreamOptions = {}): Readable {
    const open = this.#open(path)
    open.catch(() => {})
    async function* chunks(): AsyncGenerator<Buffer> {
      const { size, fd } = await open
      if (fd === undefined || size === 0) return
      const stream = fs.createReadStream('', { fd, start: options.start ?? 0, end: options.end, highWaterMark: options.highWaterMark, autoClose: true })
      try {
        for await (const chunk of stream) yield chunk as Buffer
      } finally {
        stream.destroy()
      }
    }
    return Readable.from(chunks(), { objectMode: false })
  }

  /** A symlink's target (`EINVAL` for anything else). */
  async readlink(path: string): Promise<string> {
    return this.#call('readlink', path, () => this.#backend.call('FsReadlink', { ...this.#source, path }))
  }

  /** The path with every symlink resolved inside the image, `/` first. */
  async realpath(path: string): Promise<string> {
    return (await this.#call('realpath', path, () => this.#backend.call('FsStat', { ...this.#source, path, follow: true }))).path
  }

  /** One extended attribute's value (`ENODATA` when missing); symlinks are followed. */
  async getxattr(path: string, name: string): Promise<Buffer> {
    const found = await this.#call('getxattr', path, () => this.#backend.call('FsXattrs', { ...this.#source, path, name }))
    return Buffer.from(found[name], 'base64')
  }

  /** The names of an entry's extended attributes, sorted; symlinks are followed. */
  async listxattr(path: string): Promise<string[]> {
    return Object.keys(await this.#call('listxattr', path, () => this.#backend.call('FsXattrs', { ...this.#source, path })))
  }

  /**
   * Every entry in path order (the root left out), or those a pattern of `match` matches —
   * streamed a page at a time, so a tree of any size is never held whole on this side.
   */
  async *entries(options: EntriesOptions = {}): AsyncGenerator<FsEntry> {
    const match = options.match === undefined ? undefined : [options.match].flat()
    let after: string | undefined
    for (;;) {
      const page = await this.#backend.call('FsEntries', { ...this.#source, match, after, limit: ENTRIES_PAGE })
      for (const entry of page) yield new Stats(entry)
      if (page.length < ENTRIES_PAGE) return
      after = page[page.length - 1].path
    }
  }

  async #open(path: string): Promise<{ size: number; fd?: number }> {
    const { result, fds } = await this.#call('open', path, () => this.#backend.run('FsOpen', { ...this.#source, path }))
    if (fds.length > 1) closeAll(fds.slice(1))
    return { size: result.size, fd: fds[0] }
  }

  /** Runs a call, giving its error the `path` and `syscall` a `node:fs` error has. */
  async #call<T>(syscall: string, path: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (err) {
      if (err instanceof CstorError) Object.assign(err, { path, syscall })
      throw err
    }
  }
}
