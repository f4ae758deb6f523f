import type { CopyInfo } from './native.js'
import type { Progress } from './progress.js'

export interface CopyOptions {
  /**
   * How layer blobs are compressed: `'gzip'` (default, as `podman push`), `'zstd'` or `'none'`.
   * gzip runs on every core, zstd multithreaded. A `docker-archive:` keeps layers uncompressed,
   * as `podman save` writes them.
   */
  compression?: 'gzip' | 'zstd' | 'none'
  /** `false` skips TLS verification and allows plain HTTP for a registry (skopeo's `--tls-verify=false`); unset, registries.conf's `insecure` decides. */
  tlsVerify?: boolean
  /**
   * `os/architecture[/variant]` the image must be (`EINVAL` otherwise). A store keeps the layers
   * of the one platform podman pulled from a manifest list, so this checks rather than selects.
   */
  platform?: string
  /** Called per layer and at the end, never awaited. */
  onProgress?: (progress: Progress) => void
}

/**
 * What a copy did: the manifest written (`manifestDigest`, `manifestSize`), the number of
 * `layers`, the bytes of layer blobs written, and how many layer blobs the destination had
 * already or mounted from another repository (`blobsReused`).
 */
export type CopyResult = CopyInfo
