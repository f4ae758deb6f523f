import fs from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import type { Backend } from './backend.js'
import { call } from './errors.js'
import type { ExtractStats, LayerExtractOptions } from './extract.js'
import type { LayerInfo } from './generated/operations.js'
import { ImageFs } from './fs.js'
import { partsOf, type LayerPart } from './parts.js'
import type { SplitFdStream, SplitFdStreamOptions } from './splitfdstream.js'
import type { Toc, TocOptions } from './toc.js'
import type { ExportOptions, ExportStats } from './export.js'
import { native } from './native.js'

/**
 * A layer of the store: its `layers.json` record, plus methods that walk its chain. The fields
 * are a snapshot taken when the layer was looked up; the methods read the store again.
 */
export class Layer {
  readonly id!: string
  readonly names!: string[]
  readonly parent?: string | null
  readonly created?: string | null
  /** sha256 of the uncompressed layer tar. */
  readonly diffDigest?: string | null
  readonly diffSize?: number | null
  readonly compressedDiffDigest?: string | null
  readonly compressedSize?: number | null
  /** 0 uncompressed, 1 bzip2, 2 gzip, 3 xz, 4 zstd. */
  readonly compression?: number | null
  readonly tocDigest?: string | null
  readonly uidset!: number[]
  readonly gidset!: number[]
  readonly metadata?: string | null
  readonly flags!: Record<string, unknown>
  readonly bigDataNames!: string[]
  /** The store the layer lives in: the graph root or an additional image store. */
  readonly store!: string
  readonly readOnly!: boolean
  /** Whether the record came from `volatile-layers.json`. */
  readonly volatile!: boolean
  readonly #backend: Backend

  /** @internal */
  constructor(backend: Backend, info: LayerInfo) {
    Object.assign(this, info)
    this.#backend = backend
  }

  /**
   * Writes the layer's tar — rebuilt byte for byte from its tar-split metadata and `diff/`, so its
   * sha256 is `diffDigest` — to an open file descriptor (a file, pipe or socket). The fd stays
   * the caller's to close.
   */
  async exportToFd(fd: number, options: ExportOptions = {}): Promise<ExportStats> {
    return this.#backend.call('ExportLayer', { layer: this.id, verify: options.verify }, { fds: [fd] })
  }

  /**
   * Writes the layer's tar to `file`, atomically: to a temporary name beside it, renamed into
   * place only when the whole tar was written and checked. On error nothing is left behind.
   */
  async exportToFile(file: string, options: ExportOptions = {}): Promise<ExportStats> {
    return call(async () => {
      const temp = path.join(path.dirname(file), `.${path.basename(file)}.cstor-${process.pid}-${Date.now()}`)
      const handle = await fs.promises.open(temp, 'wx', 0o644)
      try {
        const stats = await this.exportToFd(handle.fd, options)
        await handle.sync()
        await handle.close()
        await fs.promises.rename(temp, file)
        return stats
      } catch (err) {
        await handle.close().catch(() => {})
        await fs.promises.rm(temp, { force: true })
        throw err
      }
    })
  }

  /**
   * The layer's tar as a Node Readable stream. The core writes into a pipe from its own thread,
   * so the stream carries no copies made in JavaScript; an export error (a CRC mismatch, say)
   * destroys the stream with that typed error instead of ending it.
   */
  export(options: ExportOptions = {}): Readable {
    const [readFd, writeFd] = native().createPipe()
    const exporting = this.exportToFd(writeFd, options).finally(() => fs.closeSync(writeFd))
    // Observed here so that a stream nobody reads never raises an unhandled rejection.
    exporting.catch(() => {})
    const pipe = fs.createReadStream('', { fd: readFd, highWaterMark: 1 << 20 })
    async function* chunks(): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of pipe) yield chunk as Buffer
        await exporting
      } finally {
        pipe.destroy()
        // An abandoned stream must still let the export finish (it sees EPIPE) before returning.
        await exporting.catch(() => {})
      }
    }
    return Readable.from(chunks(), { objectMode: false })
  }

  /**
   * The layer's tar as parts — verbatim segments (headers, padding) and file bodies as open fds —
   * for passing on without copying (to a socket with SCM_RIGHTS, say). Each yielded fd belongs to
   * the caller; fds fetched but not yet yielded are closed when iteration stops early. Bodies are
   * not CRC-checked here: the CRC is handed over with the fd.
   */
  async *parts(): AsyncGenerator<LayerPart> {
    yield* partsOf(this.#backend.start('StreamLayer', { layer: this.id }))
  }

  /**
   * Writes this layer's own content (not its parents') into `dir`, which must not exist or be
   * empty; whiteouts as `options.whiteouts` says.
   */
  async extract(dir: string, options: LayerExtractOptions = {}): Promise<ExtractStats> {
    const { onProgress, ...settings } = options
    return this.#backend.call('ExtractLayer', { layer: this.id, target: dir, ...settings }, { onProgress })
  }

  /**
   * This layer's tar as a splitfdstream (see `SplitFdStream`): headers and small bodies inline,
   * larger bodies as fds open on the store, for passing on without copying. Bodies passed as fds
   * are not read here; inline ones are CRC-checked.
   */
  async splitFdStream(options: SplitFdStreamOptions = {}): Promise<SplitFdStream> {
    const params = { layer: this.id, inlineThreshold: options.inlineThreshold }
    const { fds } = await this.#backend.run('GetLayerSplitfdstream', params)
    const [stream, ...content] = fds
    return { stream, content }
  }

  /** The table of contents of this layer's tar, in tar order, whiteout markers included. */
  async toc(options: TocOptions = {}): Promise<Toc> {
    return this.#backend.call('LayerToc', { layer: this.id, digests: options.digests }) as Promise<Toc>
  }

  /**
   * This layer's own entries as a read-only filesystem shaped like `node:fs/promises`;
   * whiteouts are `whiteout` entries (a character device 0:0 to `stat`, as in `diff/`).
   */
  get fs(): ImageFs {
    return new ImageFs(this.#backend, { layer: this.id })
  }

  /** This layer and its ancestors by `parent`, top first, base last. */
  async chain(): Promise<Layer[]> {
    const chain = await this.#backend.call('LayerChain', { layer: this.id })
    return chain.map((info) => new Layer(this.#backend, info))
  }

  /**
   * The layers below this one as overlay stacks them, read from `overlay/<id>/lower` and the
   * `overlay/l/` links: parent first, base last.
   */
  async lowerChain(): Promise<Layer[]> {
    const chain = await this.#backend.call('LowerChain', { layer: this.id })
    return chain.map((info) => new Layer(this.#backend, info))
  }
}
