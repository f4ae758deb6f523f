import fs from 'node:fs'
import { call } from './errors.js'
import type { NativeLayerParts } from './native.js'

/**
 * A piece of a layer's tar, in order. Concatenating the segments' `data` and the bytes read from
 * each file's `fd` gives the exported tar.
 */
export type LayerPart =
  | { kind: 'segment'; data: Buffer }
  | {
      kind: 'file'
      /** The entry's path beneath the layer's `diff/`. */
      name: string
      size: number
      /** CRC-64/GO-ISO tar-split recorded for the body (16 hex digits), to check if you read it. */
      crc: string | null
      /** An open, read-only descriptor of the body at offset 0; yours to close. */
      fd: number
    }

/**
 * Yields the parts a native part source fetches in batches. Each yielded fd belongs to the
 * caller; fds fetched but not yet yielded are closed when iteration stops early, and the source
 * is released at the end either way.
 */
export async function* partsOf(source: NativeLayerParts): AsyncGenerator<LayerPart> {
  try {
    for (;;) {
      const batch = await call(() => source.nextBatch())
      if (batch.length === 0) return
      let handedOver = 0
      try {
        for (const part of batch) {
          handedOver++
          if (part.kind === 'segment') yield { kind: 'segment', data: part.data! }
          else yield { kind: 'file', name: part.name!, size: part.size!, crc: part.crc ?? null, fd: part.fd! }
        }
      } finally {
        for (const part of batch.slice(handedOver)) if (part.fd != null) fs.closeSync(part.fd)
      }
    }
  } finally {
    source.close()
  }
}
