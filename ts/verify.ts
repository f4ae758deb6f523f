import type { FindingInfo, VerifyReportInfo } from './native.js'
import type { Progress } from './progress.js'

export interface VerifyOptions {
  /**
   * Check only this image (any reference `storage.image()` takes): its big data and its layers.
   * Without it the whole store is checked, leftovers (unused layers, dangling links) included.
   */
  image?: string
  /** Called before each layer's content is checked and at the end, never awaited. */
  onProgress?: (progress: Progress) => void
}

/** `error`: damage; `warning`: harmless leftovers podman would not leave; `info`: worth knowing. */
export type Severity = 'error' | 'warning' | 'info'

/**
 * One thing `verify` found. `kind` is a stable name (`layer-content-modified`,
 * `image-data-missing`, … — see docs/api.md); `subject` the layer ID, image ID or `l/` link
 * name it is about; `message` says what is wrong, naming the file when there is one.
 */
export interface Finding extends Omit<FindingInfo, 'severity'> {
  severity: Severity
}

/** What `verify` checked and found; `clean` when no finding is an `error`. */
export interface VerifyReport extends Omit<VerifyReportInfo, 'findings'> {
  findings: Finding[]
}
