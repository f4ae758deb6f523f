/**
 * One store operation in flight (`crates/cstor-core/src/ops`), wherever it runs — in this
 * process or in a cstor server such as a rootless store's user-namespace helper: the events it
 * emits (progress, a streamed layer's parts, a server's log) and then its result.
 */
import fs from 'node:fs'
import { keepAlive } from './alive.js'
import { call, InvalidArgumentError } from './errors.js'
import type { NativeCall } from './native.js'

/** Something an operation told its caller before its result; `fds` are the caller's to close. */
export interface CallEvent {
  method: string
  params: unknown
  fds: number[]
}

/** An operation's result, with the fds that came with it (the caller's to close). */
export interface CallOutcome<R> {
  result: R
  fds: number[]
}

/** Receives events as they come; an event's fds are closed after it unless it returns `true`. */
export type EventHandler = (event: CallEvent) => boolean | void

export class OperationCall<R> {
  readonly #native: NativeCall
  #outcome: CallOutcome<R> | undefined

  constructor(native: NativeCall) {
    this.#native = native
  }

  /**
   * The events as they come. Iterating to the end ends the call (`outcome` is then set, or the
   * call's error thrown); stopping early cancels it, closing the fds of events not yet yielded.
   */
  async *events(): AsyncGenerator<CallEvent> {
    // The call runs on native threads: without a handle of its own, Node could exit under it.
    const release = keepAlive()
    let pending: CallEvent[] = []
    try {
      for (;;) {
        const batch = await call(() => this.#native.next())
        pending = batch.events.map((e) => ({ method: e.method, params: JSON.parse(e.params), fds: e.fds }))
        while (pending.length > 0) yield pending.shift()!
        if (batch.done) {
          this.#outcome = { result: JSON.parse(batch.result!) as R, fds: batch.fds }
          return
        }
      }
    } finally {
      release()
      if (this.#outcome === undefined) {
        this.#native.cancel()
        for (const event of pending) closeAll(event.fds)
      }
    }
  }

  /** The result, once `events()` has run to its end. */
  get outcome(): CallOutcome<R> | undefined {
    return this.#outcome
  }

  /** Runs the call to its end, handing each event to `onEvent`. */
  async finish(onEvent: EventHandler = () => {}): Promise<CallOutcome<R>> {
    for await (const event of this.events()) {
      if (onEvent(event) !== true) closeAll(event.fds)
    }
    return this.#outcome!
  }

  /** Asks the call to wind down (a server stops listening); its last events and result still come. */
  stop(): void {
    this.#native.stop()
  }
}

export function closeAll(fds: number[]): void {
  for (const fd of fds) fs.closeSync(fd)
}

/** Params as JSON; params that have none (a cycle, a BigInt) are the caller's error. */
export function paramsJson(params: unknown): string {
  try {
    return JSON.stringify(params ?? {})
  } catch (err) {
    throw new InvalidArgumentError('EINVAL', `params cannot be sent as JSON: ${(err as Error).message}`, { cause: err })
  }
}
