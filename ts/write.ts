import fs from 'node:fs'
import { pipeline } from 'node:stream/promises'
import type { Readable } from 'node:stream'
import { native, type PullInfo } from './native.js'
import type { Progress } from './progress.js'

/** Where a layer tar comes from: a file path, an open fd, or a Node stream. */
export type TarSource = string | number | Readable

export interface CreateLayerOptions {
  /** The layer ID; random when absent (as `podman import` makes). */
  id?: string
  /** The layer below, by ID. */
  parent?: string
  names?: string[]
}

export interface CreateImageOptions {
  /** The image ID; random when absent. */
  id?: string
  /** Names, normalized as podman stores them (`x` becomes `localhost/x:latest`). */
  names?: string[]
  topLayer?: string
  /** The manifest digest the image is known by. */
  digest?: string
  /** RFC 3339; now when absent. */
  created?: string
  metadata?: string
  /** Big-data items (`manifest`, the config under its digest, ...), in the order to record them. */
  bigData?: { key: string; data: Buffer }[]
}

export interface PullOptions {
  /** The name to give the image (normalized as podman does). */
  name?: string
  /** `false` skips TLS verification and allows plain HTTP for a registry (skopeo's `--tls-verify=false`); unset, registries.conf's `insecure` decides. */
  tlsVerify?: boolean
  /** Called per layer and at the end, never awaited. */
  onProgress?: (progress: Progress) => void
}

/** What a pull did: the image, its layers (base first), how many were written. */
export type PullResult = PullInfo

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
