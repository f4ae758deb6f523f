/**
 * The store served as a read-only OCI registry (the pull side of the distribution spec), so that
 * podman, skopeo, CRI-O and containerd elsewhere pull straight from it: `HOST:PORT/localhost/app:1`
 * names the image `localhost/app:1`. See `crates/cstor-core/src/serve/` for what it answers.
 */
import { keepAlive } from './alive.js'
import { closeAll, type OperationCall } from './call.js'
import type { AccessLogEntry, Done, Listening, ServeRegistry } from './generated/operations.js'

export type { AccessLogEntry }

/**
 * `address`: `IP:PORT`, `[IPv6]:PORT`, or `PORT` / `:PORT` / `localhost:PORT` on 127.0.0.1 —
 * default `127.0.0.1:5000`, loopback unless another address is given, port 0 picks a free port
 * (see `server.address`); `htpasswd`: basic auth against a file of bcrypt entries (`htpasswd
 * -B`); `verify`: check each file body against its tar-split CRC-64 while sending it (default
 * true).
 */
export interface RegistryServeOptions extends Omit<ServeRegistry, 'tlsCert' | 'tlsKey'> {
  /** HTTPS with this PEM certificate chain and private key. */
  tls?: { cert: string; key: string }
  /** Called once per request, after its response. */
  onRequest?: (entry: AccessLogEntry) => void
}

/** A registry started by `Storage.serveRegistry()`. */
export class RegistryServer {
  readonly #call: OperationCall<Done>
  readonly #address: string
  readonly #logging: Promise<void>
  /** Node runs while the server does (on native threads), as it would for a net.Server. */
  readonly #release = keepAlive()

  /** @internal Use `Storage.serveRegistry`. */
  constructor(call: OperationCall<Done>, address: string, logging: Promise<void>) {
    this.#call = call
    this.#address = address
    this.#logging = logging
  }

  /** `IP:PORT` it listens on: the registry host clients name (`${address}/localhost/app:1`). */
  get address(): string {
    return this.#address
  }

  /**
   * Stops accepting; open connections end after the response they are sending. Resolves once
   * the server has stopped and every request's `onRequest` has been called.
   */
  async close(): Promise<void> {
    this.#release()
    this.#call.stop()
    await this.#logging
  }
}

/** The registry a `ServeRegistry` call runs, once it listens; its access log goes to `onRequest`. */
export async function serveRegistry(serve: OperationCall<Done>, onRequest?: (entry: AccessLogEntry) => void): Promise<RegistryServer> {
  const events = serve.events()
  const first = await events.next()
  if (first.done) throw new Error('the registry stopped before it listened')
  const logging = (async () => {
    for await (const event of { [Symbol.asyncIterator]: () => events }) {
      closeAll(event.fds)
      if (event.method === 'registry.request') onRequest?.(event.params as AccessLogEntry)
    }
  })()
  return new RegistryServer(serve, (first.value.params as Listening).address, logging.catch(() => {}))
}
