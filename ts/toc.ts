import type { ImageToc, LayerToc } from './generated/operations.js'

/**
 * A table of contents as eStargz writes one (`version` 1, `entries`); each entry has eStargz's
 * field names and meanings, empty fields left out.
 */
export type { Toc, TocEntry } from './generated/operations.js'

/** `digests: true` reads every regular file to give its sha256 digest (default: headers only). */
export type TocOptions = Omit<LayerToc, 'layer'>

/** `whiteouts: 'apply'` (default): the merged view; `'list'`: plus deleted paths and opaque marks. */
export type ImageTocOptions = Omit<ImageToc, 'image'>
