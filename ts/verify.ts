import type { FindingInfo, VerifyReportInfo } from './native.js'
import type { Progress } from './progress.js'

export interface VerifyOptions {
  /**
   * Check only this image (any reference `storage.image()` takes): its big data and its layers.
   * Without it the whole store is checked, leftovers (unused layers, dangling links) included.
   */
  image?: string
  /**
   * Structure and metadata only: every layer's `diff/` against its tar headers, links and
   * records, but no file content read and no tar rebuilt (much faster; a changed byte inside a
   * file of unchanged size goes unseen).
   */
  quick?: boolean
  /** Called before each layer is checked and at the end, never awaited. */
  onProgress?: (progress: Progress) => void
}

/** `error`: damage; `warning`: harmless leftovers podman would not leave; `info`: worth knowing. */
export type Severity = 'error' | 'warning' | 'info'

/**
 * One thing `verify` found. `kind` is a stable name (`layer-content-modified`,
 * `layer-metadata-modified`, `image-data-missing`, … — see docs/api.md); `subject` the layer ID,
 * image ID or `l/` link name it is about; `path` the path in the layer for a finding about one;
 * `message` says what is wrong, naming the file when there is one.
 */
export interface Finding extends Omit<FindingInfo, 'severity'> {
  severity: Severity
}

/** What `verify` checked and found; `clean` when no finding is an `error`. */
export interface VerifyReport extends Omit<VerifyReportInfo, 'findings'> {
  findings: Finding[]
}
