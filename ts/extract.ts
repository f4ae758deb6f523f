import type { ExtractStatsInfo } from './native.js'
import type { Progress } from './progress.js'

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
  onProgress?: (progress: Progress) => void
}

export interface LayerExtractOptions extends ExtractOptions {
  /**
   * What to write for the layer's whiteouts: `'overlay'` (default) as overlayfs stores them —
   * char device 0:0 and a `trusted.overlay.opaque` xattr; `'aufs'` as a layer tar has them —
   * `.wh.<name>` and `.wh..wh..opq` files; `'apply'` to drop them.
   */
  whiteouts?: 'overlay' | 'aufs' | 'apply'
}
