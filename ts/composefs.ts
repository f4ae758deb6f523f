import type { ComposefsImage } from './generated/operations.js'

/** An image's composefs ID (fs-verity digest of its EROFS image, hex) and the objects it names. */
export type { ComposefsImageInfo } from './generated/operations.js'

/**
 * `dumpfile`: write the composefs dumpfile instead of the EROFS image; `algorithm`: the
 * fs-verity hash naming objects and the image, `'sha512'` (default, as `cfsctl init`) or
 * `'sha256'` (as C `mkcomposefs --digest-store`).
 */
export type ComposefsOptions = Omit<ComposefsImage, 'image' | 'output'>
