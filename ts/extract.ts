import type { ExtractOptionsInfo, ExtractStatsInfo, ProgressInfo } from './native.js'

/** How an extraction reports progress: the layer being applied and content bytes so far. */
export type ExtractProgress = ProgressInfo

/** What an extraction made, and how file content got there (reflinked, kernel or user copy). */
export type ExtractStats = ExtractStatsInfo

export interface ExtractOptions {
  /** Share extents with the store (`FICLONE`) where the filesystem allows; default `true`. */
  reflinks?: boolean
  /** Give entries their recorded uid/gid; default: when running as root. */
  owners?: boolean
  /** Copy extended attributes; default `true`. */
  xattrs?: boolean
  /** Called now and then (per layer and every 32 MiB of content), never awaited. */
  onProgress?: (progress: ExtractProgress) => void
}

export interface LayerExtractOptions extends ExtractOptions {
  /**
   * What to write for the layer's whiteouts: `'overlay'` (default) as overlayfs stores them —
   * char device 0:0 and a `trusted.overlay.opaque` xattr; `'aufs'` as a layer tar has them —
   * `.wh.<name>` and `.wh..wh..opq` files; `'apply'` to drop them.
   */
  whiteouts?: 'overlay' | 'aufs' | 'apply'
}

/** Splits the options into what the binding takes and the progress callback. */
export function nativeExtractOptions(
  options: LayerExtractOptions,
): [ExtractOptionsInfo, ((progress: ProgressInfo) => void) | undefined] {
  const { onProgress, ...rest } = options
  return [rest, onProgress]
}
