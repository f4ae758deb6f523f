import type { OciCopyInfo } from './native.js'
import type { Progress } from './progress.js'

export interface OciCopyOptions {
  /** How layer blobs are stored: `'none'` (default: the tars as podman stores them), `'gzip'`, `'zstd'`. */
  compression?: 'none' | 'gzip' | 'zstd'
  /** The image's name in the layout (`oci:DIR:NAME`); an entry of the same name is replaced. */
  refName?: string
  /**
   * `os/architecture[/variant]` the image must be (`EINVAL` otherwise). A store keeps the layers
   * of the one platform podman pulled from a manifest list, so this checks rather than selects.
   */
  platform?: string
  /** Called per layer and at the end, never awaited. */
  onProgress?: (progress: Progress) => void
}

/** What a copy wrote: the new manifest, and how much was new in the layout. */
export type OciCopyResult = OciCopyInfo
