/** The progress bar long commands draw on stderr — only when stderr is a terminal. */
import type { Progress } from '../index.js'
import { humanSize } from './output.js'

/** Redraws the bar in place; use as an `onProgress` callback when `process.stderr.isTTY`. */
export function drawProgress({ layer, layers, bytes, totalBytes }: Progress): void {
  const width = 30
  const fraction = totalBytes > 0 ? Math.min(1, bytes / totalBytes) : 0
  const bar = '#'.repeat(Math.round(fraction * width)).padEnd(width, ' ')
  process.stderr.write(`\r[${bar}] ${String(Math.round(fraction * 100)).padStart(3)}%  layer ${layer + 1}/${layers}  ${humanSize(bytes)}\x1b[K`)
}

/** Erases the bar before the command prints its result. */
export function clearProgress(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K')
}
