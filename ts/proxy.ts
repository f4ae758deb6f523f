/**
 * A client of stock skopeo's `experimental-image-proxy`: manifests, configs and blobs of images
 * from any transport skopeo knows (`oci:`, `docker-archive:`, `containers-storage:`,
 * `docker://`), streamed from pipes skopeo passes over a socket.
 */
import fs from 'node:fs'
import { PassThrough, type Readable } from 'node:stream'
import { call } from './errors.js'
import { native, type NativeImageProxy } from './native.js'

export interface ImageProxyOptions {
  /** The skopeo binary; default `skopeo` on PATH. */
  skopeo?: string
  /** Options for `skopeo experimental-image-proxy`, e.g. `['--tls-verify=false']` for a plain-HTTP registry. */
  skopeoOptions?: string[]
}

export class ImageProxy {
  readonly #native: NativeImageProxy

  private constructor(proxy: NativeImageProxy) {
    this.#native = proxy
  }

  /** Starts `skopeo experimental-image-proxy` (protocol 0.2 or later). */
  static async start(options: ImageProxyOptions = {}): Promise<ImageProxy> {
    return new ImageProxy(await call(() => native().startImageProxy(options.skopeo, options.skopeoOptions)))
  }

  /** The protocol version skopeo speaks, e.g. `0.2.3`. */
  get protocol(): string {
    return this.#native.protocol
  }

  /** Opens an image by a skopeo reference, e.g. `oci:./layout:app` or `docker-archive:img.tar`. */
  async openImage(reference: string): Promise<ProxyImage> {
    return new ProxyImage(this.#native, await call(() => this.#native.openImage(reference)))
  }

  /** Asks skopeo to exit and waits for it. */
  async shutdown(): Promise<void> {
    await call(() => this.#native.shutdown())
  }
}

/** An image opened through the proxy. */
export class ProxyImage {
  readonly #native: NativeImageProxy
  readonly #id: number

  /** @internal */
  constructor(proxy: NativeImageProxy, id: number) {
    this.#native = proxy
    this.#id = id
  }

  /**
   * The manifest (`raw` bytes and parsed) and the digest of the image's manifest as stored.
   * skopeo's proxy converts a manifest that is not OCI (docker-archive's, say) to OCI, so then
   * `raw` does not hash to `digest`.
   */
  async manifest(): Promise<{ digest: string; manifest: Record<string, unknown>; raw: Buffer }> {
    const { digest, data } = await call(() => this.#native.manifest(this.#id))
    return { digest, manifest: JSON.parse(data.toString()), raw: data }
  }

  /** The config as the manifest names it (OCI form), as bytes. */
  async config(): Promise<Buffer> {
    return call(() => this.#native.config(this.#id))
  }

  /** The config exactly as stored, as bytes. */
  async fullConfig(): Promise<Buffer> {
    return call(() => this.#native.fullConfig(this.#id))
  }

  /**
   * A blob as a Node stream; it fails if skopeo reports the transfer failed. From a
   * `containers-storage:` source, layers are asked by their uncompressed (diff) digest. `size`
   * is the blob's size as the manifest gives it: skopeo 1.9 checks it (-1 for unknown is newer).
   */
  async blob(digest: string, size: number): Promise<Readable> {
    const { fd, pipeId } = await call(() => this.#native.blob(this.#id, digest, size))
    const out = new PassThrough()
    const pipe = fs.createReadStream('', { fd, autoClose: true })
    // skopeo ends the pipe inside FinishPipe, which returns once everything is written: it must
    // run while the pipe is read, and the stream ends when both are done.
    const finished = call(() => this.#native.finishPipe(pipeId))
    finished.catch((err: unknown) => out.destroy(err as Error))
    pipe.on('error', (err) => out.destroy(err))
    pipe.pipe(out, { end: false })
    pipe.on('end', () => finished.then(() => out.end(), () => {}))
    return out
  }

  async close(): Promise<void> {
    await call(() => this.#native.closeImage(this.#id))
  }
}
