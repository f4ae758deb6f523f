import type { CopyResult } from './copy.js'
import type { CopyToOci } from './generated/operations.js'
import type { Progress } from './progress.js'

/**
 * `copyToOci`'s options: `compression` (`'none'`, the default: the tars as podman stores them,
 * `'gzip'`, `'zstd'`), `refName` (the image's name in the layout; an entry of the same name is
 * replaced), `platform`.
 */
export interface OciCopyOptions extends Omit<CopyToOci, 'image' | 'dir'> {
  onProgress?: (progress: Progress) => void
}

/** What a copy to an OCI layout wrote: the same as {@link CopyResult}. */
export type OciCopyResult = CopyResult
