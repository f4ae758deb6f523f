import type { OperationCall } from './call.js'
import { closeAll } from './call.js'
import type { LayerFile, LayerSegment, LayerStreamed } from './generated/operations.js'

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
 * The parts a `StreamLayer` call emits, as `Layer.parts()` yields them. Each yielded fd belongs
 * to the caller; stopping early cancels the call and closes the fds not yet yielded.
 */
export async function* partsOf(call: OperationCall<LayerStreamed>): AsyncGenerator<LayerPart> {
  for await (const event of call.events()) {
    if (event.method === 'layer.segment') {
      yield { kind: 'segment', data: Buffer.from((event.params as LayerSegment).data, 'base64') }
    } else if (event.method === 'layer.file') {
      const [fd, ...extra] = event.fds
      closeAll(extra)
      const { name, size, crc } = event.params as LayerFile
      yield { kind: 'file', name, size, crc, fd }
    } else {
      closeAll(event.fds)
    }
  }
}
