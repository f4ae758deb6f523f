import { call } from './errors.js'
import type { LayerInfo, NativeStore } from './native.js'

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
