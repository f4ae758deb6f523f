/** The progress bar long commands draw on stderr — only when stderr is a terminal. */
import type { Progress } from '../index.js'
import { humanSize } from './output.js'
import type { Flags } from './usage.js'

/** The `onProgress` option of a long command: a bar when stderr is a terminal, unless `--quiet`. */
export function progressOption({ quiet }: Flags): { onProgress?: (progress: Progress) => void } {
  return process.stderr.isTTY && !quiet ? { onProgress: drawProgress } : {}
}

/** Whether a bar is on the screen, to be erased. */
let drawn = false

/** Redraws the bar in place. */
function drawProgress({ layer, layers, bytes, totalBytes }: Progress): void {
  drawn = true
  const width = 30
  const fraction = totalBytes > 0 ? Math.min(1, bytes / totalBytes) : 0
  const bar = '#'.repeat(Math.round(fraction * width)).padEnd(width, ' ')
  process.stderr.write(`\r[${bar}] ${String(Math.round(fraction * 100)).padStart(3)}%  layer ${layer + 1}/${layers}  ${humanSize(bytes)}\x1b[K`)
}

/** Erases the bar, if one was drawn, before the command prints its result. */
export function clearProgress(): void {
  if (drawn) process.stderr.write('\r\x1b[K')
  drawn = false
}
