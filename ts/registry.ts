/**
 * The store served as a read-only OCI registry (the pull side of the distribution spec), so that
 * podman, skopeo, CRI-O and containerd elsewhere pull straight from it: `HOST:PORT/localhost/app:1`
 * names the image `localhost/app:1`. See `crates/cstor-core/src/serve/` for what it answers.
 */
import { keepAlive } from './alive.js'
import type * as native from './native.js'

export interface RegistryServeOptions {
  /**
   * Where to listen: `IP:PORT`, `[IPv6]:PORT`, or `PORT` / `:PORT` / `localhost:PORT` on
   * 127.0.0.1. Default `127.0.0.1:5000`; loopback unless another address is given. Port 0 picks
   * a free port (see `server.address`).
   */
  address?: string
  /** HTTPS with this PEM certificate chain and private key. */
  tls?: { cert: string; key: string }
  /** Basic auth against an htpasswd file of bcrypt entries (`htpasswd -B`). */
  htpasswd?: string
  /** Check each file body against its tar-split CRC-64 while sending it (default true). */
  verify?: boolean
  /** Called once per request, after its response. */
  onRequest?: (entry: AccessLogEntry) => void
}

/** One request the registry answered: `line` is its access-log line (see `AccessEntryInfo`). */
export type AccessLogEntry = native.AccessEntryInfo

/** A registry started by `Storage.serveRegistry()`. */
export class RegistryServer {
  readonly #native: native.NativeRegistryServer
  /** Node runs while the server does (on native threads), as it would for a net.Server. */
  readonly #release = keepAlive()

  /** @internal */
  constructor(server: native.NativeRegistryServer) {
    this.#native = server
  }

  /** `IP:PORT` it listens on: the registry host clients name (`${address}/localhost/app:1`). */
  get address(): string {
    return this.#native.address
  }

  /** Stops accepting; open connections end after the response they are sending. */
  close(): void {
    this.#release()
    this.#native.close()
  }
}
