/**
 * JSON-RPC 2.0 over a Unix socket with fds passed alongside (SCM_RIGHTS): a server lending a
 * store, and a client. Methods: `ListImages`, `ListLayers`, `GetLayerSplitfdstream`,
 * `StreamLayer`, and on a writable server `Pull`, `Import`, `Tag`, `Untag`, `RemoveImage`,
 * `RemoveLayer`, `CreateLayer`, `CreateImage` (see `crates/cstor-core/src/ipc/rpc.rs` and
 * `rpc_writes.rs` for the wire protocol).
 */
import { keepAlive, whileAlive } from './alive.js'
import { call, InvalidArgumentError } from './errors.js'
import { native, type NativeRpcServer, type RpcNotificationInfo } from './native.js'
import { partsOf, type LayerPart } from './parts.js'
import type { SplitFdStream, SplitFdStreamOptions } from './splitfdstream.js'

export interface RpcServeOptions {
  /** Answer the write methods too (`Pull`, `Import`, `Tag`, …); default `false`. */
  writable?: boolean
  /** Share the socket with this group (name or GID): mode 0660 instead of the owner-only 0600. */
  group?: string
}

/** A server started by `Storage.serve()`. */
export class RpcServer {
  readonly #native: NativeRpcServer
  readonly #release = keepAlive()

  /** @internal */
  constructor(server: NativeRpcServer) {
    this.#native = server
  }

  /** The socket it listens on. */
  get path(): string {
    return this.#native.path
  }

  /** Stops accepting connections and removes the socket file. */
  close(): void {
    this.#release()
    this.#native.close()
  }
}

export interface RemoteImage {
  id: string
  names: string[]
  digest: string | null
  created: string | null
  topLayer: string | null
}

export interface RemoteLayer {
  id: string
  parent: string | null
  diffDigest: string | null
  diffSize: number | null
}

export interface RpcCallOptions {
  /** Fds to send with the request (they stay yours). */
  fds?: number[]
  /** Called with each notification the server sends before its response. */
  onNotification?: (method: string, params: unknown) => void
}

/** A client of a cstor server; each call uses a connection of its own. */
export class RpcClient {
  readonly path: string

  constructor(path: string) {
    this.path = path
  }

  /** Calls any method; returns its result and the fds that came with it (yours to close). */
  async call(method: string, params: unknown = {}, options: RpcCallOptions = {}): Promise<{ result: unknown; fds: number[] }> {
    const { fds, onNotification } = options
    const forward = onNotification && ((info: RpcNotificationInfo) => onNotification(info.method, JSON.parse(info.params)))
    const reply = await whileAlive(call(() => native().rpcCall(this.path, method, paramsJson(params), fds, forward)))
    return { result: JSON.parse(reply.result), fds: reply.fds }
  }

  async listImages(): Promise<RemoteImage[]> {
    return (await this.call('ListImages')).result as RemoteImage[]
  }

  async listLayers(): Promise<RemoteLayer[]> {
    return (await this.call('ListLayers')).result as RemoteLayer[]
  }

  /** A layer as a splitfdstream: the stream memfd and the content fds, all yours to close. */
  async getLayerSplitFdStream(layer: string, options: SplitFdStreamOptions = {}): Promise<SplitFdStream> {
    const { fds } = await this.call('GetLayerSplitfdstream', { layer, inlineThreshold: options.inlineThreshold ?? null })
    const [stream, ...content] = fds
    return { stream, content }
  }

  /** A layer's tar as parts streamed by the server, exactly like `Layer.parts()`. */
  async *streamLayer(layer: string): AsyncGenerator<LayerPart> {
    const release = keepAlive()
    try {
      yield* partsOf(await call(() => native().rpcStreamLayer(this.path, layer)))
    } finally {
      release()
    }
  }
}

/** Request params as JSON; params that have none (a cycle, a BigInt) are the caller's error. */
function paramsJson(params: unknown): string {
  try {
    return JSON.stringify(params)
  } catch (err) {
    throw new InvalidArgumentError('EINVAL', `RPC params cannot be sent as JSON: ${(err as Error).message}`, { cause: err })
  }
}
