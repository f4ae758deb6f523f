import fs from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { call } from './errors.js'
import type { ExtractStats, LayerExtractOptions } from './extract.js'
import { splitProgress } from './progress.js'
import { partsOf, type LayerPart } from './parts.js'
import { assembleSplitFdStream, type SplitFdStream, type SplitFdStreamOptions } from './splitfdstream.js'
import { startUnshareHelper, unshareOptions, usesUnshare, withUnshareHelper } from './unshare.js'
import { toToc, type Toc, type TocOptions } from './toc.js'
import type { ExportOptions, ExportStats } from './export.js'
import { native, type LayerInfo, type NativeStore } from './native.js'

/** Inline threshold of exports through an unshare helper (see `Layer.exportToFd`). */
const UNSHARE_INLINE_BYTES = 64 << 10


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
  readonly #native: NativeStore

  constructor(native: NativeStore, info: LayerInfo) {
    Object.assign(this, info)
    this.#native = native
  }

  /**
   * Writes the layer's tar — rebuilt byte for byte from its tar-split metadata and `diff/`, so its
   * sha256 is `diffDigest` — to an open file descriptor (a file, pipe or socket). The fd stays
   * the caller's to close.
   */
  async exportToFd(fd: number, options: ExportOptions = {}): Promise<ExportStats> {
    // A rootless store: a helper opens the bodies; they arrive as fds and the kernel copies them.
    // Bodies up to 64 KiB travel inline, CRC-checked, to keep the fd count down.
    const viaHelper = await withUnshareHelper(this.#native, async (helper) => {
      const s = await helper.client.getLayerSplitFdStream(this.id, { inlineThreshold: UNSHARE_INLINE_BYTES })
      try {
        return await assembleSplitFdStream(s.stream, s.content, fd)
      } finally {
        for (const open of [s.stream, ...s.content]) fs.closeSync(open)
      }
    })
    return viaHelper ?? call(() => this.#native.exportLayer(this.id, fd, options.verify))
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
    if (!usesUnshare(this.#native)) {
      yield* partsOf(await call(() => this.#native.layerParts(this.id)))
      return
    }
    const helper = await startUnshareHelper(unshareOptions(this.#native)!)
    try {
      yield* helper.client.streamLayer(this.id)
    } finally {
      await helper.close()
    }
  }

  /**
   * Writes this layer's own content (not its parents') into `dir`, which must not exist or be
   * empty; whiteouts as `options.whiteouts` says.
   */
  async extract(dir: string, options: LayerExtractOptions = {}): Promise<ExtractStats> {
    const [native, onProgress] = splitProgress(options)
    return call(() => this.#native.extractLayer(this.id, dir, native, onProgress))
  }

  /**
   * This layer's tar as a splitfdstream (see `SplitFdStream`): headers and small bodies inline,
   * larger bodies as fds open on the store, for passing on without copying. Bodies passed as fds
   * are not read here; inline ones are CRC-checked.
   */
  async splitFdStream(options: SplitFdStreamOptions = {}): Promise<SplitFdStream> {
    const viaHelper = await withUnshareHelper(this.#native, (helper) => helper.client.getLayerSplitFdStream(this.id, options))
    return viaHelper ?? call(() => this.#native.layerSplitfdstream(this.id, options.inlineThreshold))
  }

  /** The table of contents of this layer's tar, in tar order, whiteout markers included. */
  async toc(options: TocOptions = {}): Promise<Toc> {
    return toToc(await call(() => this.#native.layerToc(this.id, { digests: options.digests ?? false })))
  }

  /** This layer and its ancestors by `parent`, top first, base last. */
  async chain(): Promise<Layer[]> {
    const chain = await call(() => this.#native.layerChain(this.id))
    return chain.map((info) => new Layer(this.#native, info))
  }

  /**
   * The layers below this one as overlay stacks them, read from `overlay/<id>/lower` and the
   * `overlay/l/` links: parent first, base last.
   */
  async lowerChain(): Promise<Layer[]> {
    const chain = await call(() => this.#native.lowerChain(this.id))
    return chain.map((info) => new Layer(this.#native, info))
  }
}
