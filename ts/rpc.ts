/**
 * JSON-RPC 2.0 over a Unix socket with fds passed alongside (SCM_RIGHTS): a server lending a
 * store, and a client. The methods are the store's operations (`crates/cstor-core/src/ops`, the
 * `Operations` type): `ListImages`, `GetImage`, `ExportLayer` (the output fd sent along),
 * `StreamLayer` (notifications with one fd per file), `GetLayerSplitfdstream`, `ImageToc`,
 * `ExtractImage`, `CopyTo`, `Verify`, … and, on a writable server, `Pull`, `Import`, `Tag`,
 * `Untag`, `RemoveImage`, `RemoveLayer`, `CreateLayer`, `CreateImage` (see
 * `crates/cstor-core/src/ipc/rpc.rs` for the wire protocol).
 */
import { keepAlive } from './alive.js'
import { call } from './errors.js'
import { closeAll, OperationCall, paramsJson, type CallEvent } from './call.js'
import type { Done, ImageInfo, LayerInfo, LayerStreamed, Listening, Serve } from './generated/operations.js'
import { native } from './native.js'
import { partsOf, type LayerPart } from './parts.js'
import type { SplitFdStream, SplitFdStreamOptions } from './splitfdstream.js'

/**
 * `writable`: answer the write methods too (`Pull`, `Import`, `Tag`, …; default `false`);
 * `group`: share the socket with this group (name or GID), mode 0660 instead of 0600.
 */
export type RpcServeOptions = Omit<Serve, 'socket'>

/** A server started by `Storage.serve()`. */
export class RpcServer {
  readonly #call: OperationCall<Done>
  readonly #path: string
  readonly #serving: Promise<void>
  readonly #release = keepAlive()

  /** @internal Use `Storage.serve`. */
  constructor(call: OperationCall<Done>, path: string, serving: Promise<void>) {
    this.#call = call
    this.#path = path
    this.#serving = serving
  }

  /** The socket it listens on. */
  get path(): string {
    return this.#path
  }

  /**
   * Stops accepting connections and removes the socket file; resolves once it is gone.
   * Connections being served finish their current request.
   */
  async close(): Promise<void> {
    this.#release()
    this.#call.stop()
    await this.#serving
  }
}

/** The server a `Serve` call runs, once it listens. */
export async function serveRpc(serve: OperationCall<Done>): Promise<RpcServer> {
  const events = serve.events()
  const first = await events.next()
  if (first.done) throw new Error('the server stopped before it listened')
  const serving = (async () => {
    for await (const event of { [Symbol.asyncIterator]: () => events }) closeAll(event.fds)
  })()
  return new RpcServer(serve, (first.value.params as Listening).address, serving.catch(() => {}))
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

  /** Starts a method; its notifications and response come through the call. */
  #start(method: string, params: unknown, fds: number[] = []): OperationCall<unknown> {
    return new OperationCall(native().rpcStart(this.path, method, paramsJson(params), fds, process.cwd()))
  }

  /** Calls any method; returns its result and the fds that came with it (yours to close). */
  async call(method: string, params: unknown = {}, options: RpcCallOptions = {}): Promise<{ result: unknown; fds: number[] }> {
    const started = await call(async () => this.#start(method, params, options.fds))
    return started.finish((event: CallEvent) => {
      options.onNotification?.(event.method, event.params)
    })
  }

  async listImages(): Promise<ImageInfo[]> {
    return (await this.call('ListImages')).result as ImageInfo[]
  }

  async listLayers(): Promise<LayerInfo[]> {
    return (await this.call('ListLayers')).result as LayerInfo[]
  }

  /** A layer as a splitfdstream: the stream memfd and the content fds, all yours to close. */
  async getLayerSplitFdStream(layer: string, options: SplitFdStreamOptions = {}): Promise<SplitFdStream> {
    const { fds } = await this.call('GetLayerSplitfdstream', { layer, inlineThreshold: options.inlineThreshold })
    const [stream, ...content] = fds
    return { stream, content }
  }

  /** A layer's tar as parts streamed by the server, exactly like `Layer.parts()`. */
  async *streamLayer(layer: string): AsyncGenerator<LayerPart> {
    const started = await call(async () => this.#start('StreamLayer', { layer }) as OperationCall<LayerStreamed>)
    yield* partsOf(started)
  }
}
