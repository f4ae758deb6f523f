/**
 * Where a store's operations run, chosen once when the store is opened: in this process
 * (`DirectBackend`), or — for a rootless store, whose files belong to subordinate IDs — in a
 * helper inside the user's podman user namespace (`HelperBackend`), which lives as long as the
 * store is open. Every public method of `Storage`, `Image` and `Layer` goes through the one the
 * store got; both run the same operations (`crates/cstor-core/src/ops`) with the same params,
 * events and results, so a method behaves the same either way.
 */
import { call, InvalidArgumentError } from './errors.js'
import { closeAll, OperationCall, paramsJson, type CallEvent, type CallOutcome, type EventHandler } from './call.js'
import type { Operations, Progress } from './generated/operations.js'
import { native, type NativeStore } from './native.js'
import type { UnshareHelper } from './unshare.js'

export type Method = keyof Operations
export type Params<M extends Method> = Operations[M]['params']
export type Result<M extends Method> = Operations[M]['result']

export interface RunOptions {
  /** Fds sent with the call; they stay the caller's. */
  fds?: number[]
  /** Receives `progress` events (never awaited). */
  onProgress?: (progress: Progress) => void
  /** Receives every other event. */
  onEvent?: EventHandler
}

export abstract class Backend {
  /** Starts `method`; its events and result come through the call. */
  abstract start<M extends Method>(method: M, params: Params<M>, fds?: number[]): OperationCall<Result<M>>

  /** Releases the store; a helper is stopped. Calls under way finish first. */
  abstract close(): Promise<void>

  /** Runs `method` to its end: its result and the fds that came with it. */
  async run<M extends Method>(method: M, params: Params<M>, options: RunOptions = {}): Promise<CallOutcome<Result<M>>> {
    for (const name of ['onProgress', 'onEvent'] as const) {
      if (options[name] !== undefined && typeof options[name] !== 'function') {
        throw new InvalidArgumentError('EINVAL', `${name} must be a function`)
      }
    }
    const started = await call(async () => this.start(method, params, options.fds))
    return started.finish((event: CallEvent) => {
      if (event.method !== 'progress') return options.onEvent?.(event)
      options.onProgress?.(event.params as Progress)
    })
  }

  /** Runs `method` to its end and gives its result. */
  async call<M extends Method>(method: M, params: Params<M>, options: RunOptions = {}): Promise<Result<M>> {
    const { result, fds } = await this.run(method, params, options)
    closeAll(fds)
    return result
  }
}

/** Operations run in this process, on the store the binding opened. */
export class DirectBackend extends Backend {
  readonly #store: NativeStore

  constructor(store: NativeStore) {
    super()
    this.#store = store
  }

  start<M extends Method>(method: M, params: Params<M>, fds: number[] = []): OperationCall<Result<M>> {
    return new OperationCall(this.#store.start(method, paramsJson(params), fds))
  }

  async close(): Promise<void> {
    this.#store.close()
  }
}

/**
 * Operations run by a cstor server in the user namespace (see `startUnshareHelper`): fds go
 * there and back over its socket, paths are relative to this process's working directory.
 */
export class HelperBackend extends Backend {
  readonly #helper: UnshareHelper

  constructor(helper: UnshareHelper) {
    super()
    this.#helper = helper
  }

  start<M extends Method>(method: M, params: Params<M>, fds: number[] = []): OperationCall<Result<M>> {
    return new OperationCall(native().rpcStart(this.#helper.client.path, method, paramsJson(params), fds, process.cwd()))
  }

  async close(): Promise<void> {
    await this.#helper.close()
  }
}
