import type { ExtractImage, ExtractLayer } from './generated/operations.js'
import type { Progress } from './progress.js'

/** What an extraction made, and how file content got there (reflinked, kernel or user copy). */
export type { ExtractStats } from './generated/operations.js'

/**
 * `reflinks` (default true), `owners` (default: when running as root — and for a rootless
 * store, whose extraction runs in the user namespace, there too: the tree gets the image's
 * owners as podman maps them; `false` gives every entry to the caller), `xattrs` (default true).
 */
export interface ExtractOptions extends Omit<ExtractImage, 'image' | 'target'> {
  /** Called now and then (per layer and every 32 MiB of content), never awaited. */
  onProgress?: (progress: Progress) => void
}

/**
 * Also `whiteouts`: `'overlay'` (default) as overlayfs stores them — char device 0:0 and a
 * `trusted.overlay.opaque` xattr; `'aufs'` as a layer tar has them — `.wh.<name>` and
 * `.wh..wh..opq` files; `'apply'` to drop them.
 */
export interface LayerExtractOptions extends Omit<ExtractLayer, 'layer' | 'target'> {
  onProgress?: (progress: Progress) => void
}
