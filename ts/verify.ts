import type { Verify } from './generated/operations.js'
import type { Progress } from './progress.js'

/**
 * `image`: check only this image (any reference `storage.image()` takes) — without it the whole
 * store, leftovers included; `quick`: structure and metadata only, no file content read.
 */
export interface VerifyOptions extends Verify {
  /** Called before each layer is checked and at the end, never awaited. */
  onProgress?: (progress: Progress) => void
}

/**
 * What `verify` checked and found (`clean` when no finding is an `error`); each `Finding` has a
 * `severity` (`error`: damage; `warning`: harmless leftovers podman would not leave; `info`), a
 * stable `kind` (see docs/api.md), the `subject` (layer ID, image ID or `l/` link), the `path` in
 * the layer for a finding about one, and a `message`.
 */
export type { Finding, FindingKind, Severity, VerifyReport } from './generated/operations.js'
