import fs from 'node:fs'
import { pipeline } from 'node:stream/promises'
import type { Readable } from 'node:stream'
import type { CreateImage, CreateLayer, Pull } from './generated/operations.js'
import { native } from './native.js'
import type { Progress } from './progress.js'

/** Where a layer tar comes from: a file path, an open fd, or a Node stream. */
export type TarSource = string | number | Readable

/** `id` (random when absent, as `podman import` makes), `parent` (by ID), `names`. */
export type CreateLayerOptions = CreateLayer

/**
 * `id` (random when absent), `names` (normalized as podman stores them: `x` becomes
 * `localhost/x:latest`), `topLayer`, `digest` (of the manifest), `created` (RFC 3339; now when
 * absent), `metadata`, and `bigData`: items (`manifest`, the config under its digest, …) in the
 * order to record them.
 */
export interface CreateImageOptions extends Omit<CreateImage, 'bigData'> {
  bigData?: { key: string; data: Buffer | Uint8Array }[]
}

/**
 * `name` to give the image (normalized as podman does; a registry image is named as pulled when
 * absent); `signaturePolicy`, `registriesConf`, `authFile`, `certDir`, `tlsVerify` as podman's
 * flags of the same names (`tlsVerify: false` skips TLS verification and allows plain HTTP;
 * unset, registries.conf's `insecure` decides).
 */
export interface PullOptions extends Omit<Pull, 'source'> {
  /** Called per layer and at the end, never awaited. */
  onProgress?: (progress: Progress) => void
}

/** What a pull did: the image, its layers (base first), how many were written. */
export type { PullResult } from './generated/operations.js'

/**
 * Runs `use` with an fd the tar can be read from: the caller's own, a file opened for the
 * duration, or the read end of a pipe this function feeds from the stream.
 */
export async function withTarFd<T>(source: TarSource, use: (fd: number) => Promise<T>): Promise<T> {
  if (typeof source === 'number') return use(source)
  if (typeof source === 'string') {
    const fd = fs.openSync(source, 'r')
    try {
      return await use(fd)
    } finally {
      fs.closeSync(fd)
    }
  }
  const [readFd, writeFd] = native().createPipe()
  const sink = fs.createWriteStream('', { fd: writeFd, highWaterMark: 1 << 20 })
  const feeding = pipeline(source, sink)
  // A failed write (the reader gave up) is reported by `use`; a failed source fails the call.
  feeding.catch(() => {})
  try {
    const result = await use(readFd)
    await feeding
    return result
  } finally {
    sink.destroy()
    fs.closeSync(readFd)
  }
}
