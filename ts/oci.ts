import type { CopyOptions, CopyResult } from './copy.js'

/** `copyToOci`'s options: those of `copyTo` an OCI layout has, uncompressed by default. */
export interface OciCopyOptions extends Pick<CopyOptions, 'platform' | 'onProgress'> {
  /** How layer blobs are stored: `'none'` (default: the tars as podman stores them), `'gzip'`, `'zstd'`. */
  compression?: 'none' | 'gzip' | 'zstd'
  /** The image's name in the layout (`oci:DIR:NAME`); an entry of the same name is replaced. */
  refName?: string
}

/** What a copy to an OCI layout wrote: the same as {@link CopyResult}. */
export type OciCopyResult = CopyResult
