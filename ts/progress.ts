import type { ProgressInfo } from './native.js'

/** Where long work over an image's layers stands: the layer at hand (0 = base) and bytes so far. */
export type Progress = ProgressInfo

/** Splits options into what the binding takes and the progress callback it calls separately. */
export function splitProgress<T extends { onProgress?: (progress: Progress) => void }>(
  options: T,
): [Omit<T, 'onProgress'>, ((progress: Progress) => void) | undefined] {
  const { onProgress, ...rest } = options
  return [rest, onProgress]
}
