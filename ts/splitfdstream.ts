import { call } from './errors.js'
import type { ExportStats } from './export.js'
import type { GetLayerSplitfdstream } from './generated/operations.js'
import { native } from './native.js'

/**
 * A layer's tar as a splitfdstream: `stream` is an fd (a memfd at offset 0) holding chunks, each
 * an i64 little-endian prefix — `-n`: `n` inline bytes follow; `k ≥ 1`: the whole content of fd
 * `k` — and `content[k - 1]` is fd `k` (fd 0 is the stream itself). Every fd belongs to the
 * caller, who must close them.
 */
export interface SplitFdStream {
  stream: number
  content: number[]
}

/** `inlineThreshold`: file bodies up to this many bytes travel inline (default 4096), larger ones as fds. */
export type SplitFdStreamOptions = Omit<GetLayerSplitfdstream, 'layer'>

/**
 * Writes what a splitfdstream stands for (for a layer's stream: its exact tar) to `out`, an fd
 * of a file, pipe or socket. The fds stay the caller's.
 */
export async function assembleSplitFdStream(stream: number, content: number[], out: number): Promise<ExportStats> {
  return call(() => native().assembleSplitfdstream(stream, content, out))
}
