import type { ExportStatsInfo } from './native.js'

/** Options of a layer's export (`Layer.export`, `exportToFd`, `exportToFile`). */
export interface ExportOptions {
  /**
   * Check each file body against the CRC-64 tar-split recorded (default `true`). With `false`,
   * bodies are copied by the kernel (`copy_file_range`/`sendfile`) without passing through memory.
   */
  verify?: boolean
}

/** What an export wrote: bytes of tar, and file bodies taken from `diff/`. */
export type ExportStats = ExportStatsInfo
