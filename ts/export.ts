import type { ExportLayer } from './generated/operations.js'

/**
 * `verify` (default `true`): check each file body against the CRC-64 tar-split recorded; with
 * `false`, bodies are copied by the kernel (`copy_file_range`/`sendfile`) without passing
 * through memory.
 */
export type ExportOptions = Omit<ExportLayer, 'layer'>

/** What an export wrote: bytes of tar, and file bodies taken from `diff/`. */
export type { ExportStats } from './generated/operations.js'
