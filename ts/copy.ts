import type { CopyTo } from './generated/operations.js'
import type { Progress } from './progress.js'

/**
 * `compression`: `'gzip'` (default, as `podman push`, on every core), `'zstd'` (multithreaded)
 * or `'none'` — a `docker-archive:` keeps layers uncompressed, as `podman save` writes them;
 * `platform` (`os/architecture[/variant]`) is checked, not selected — a store keeps one
 * platform's layers. A `docker://` push goes to the registry's location in registries.conf with
 * `registriesConf`, `authFile`, `certDir`, `tlsVerify` as podman's flags of the same names
 * (`tlsVerify: false` skips TLS verification and allows plain HTTP; unset, registries.conf's
 * `insecure` decides).
 */
export interface CopyOptions extends Omit<CopyTo, 'image' | 'destination'> {
  /** Called per layer and at the end, never awaited. */
  onProgress?: (progress: Progress) => void
}

/**
 * What a copy did: the manifest written (`manifestDigest`, `manifestSize`), the number of
 * `layers`, the bytes of layer blobs written, and how many layer blobs the destination had
 * already or mounted from another repository (`blobsReused`).
 */
export type { CopyResult } from './generated/operations.js'
