import { call, InvalidArgumentError } from './errors.js'
import { RegistryServer, type RegistryServeOptions } from './registry.js'
import { RpcServer, type RpcServeOptions } from './rpc.js'
import { useUnshare, wantsUnshare } from './unshare.js'
import { Image } from './image.js'
import { Layer } from './layer.js'
import { discoverConfig, openStore, type NativeStore, type StoreConfigInfo } from './native.js'
import {
  withTarFd,
  type CreateImageOptions,
  type CreateLayerOptions,
  type PullOptions,
  type PullResult,
  type TarSource,
} from './write.js'
import { splitProgress } from './progress.js'
import type { VerifyOptions, VerifyReport } from './verify.js'

export interface OpenOptions {
  /** The graph root, podman's `--root`. */
  root: string
  /** The run root, podman's `--runroot`. */
  runroot?: string
  /** The graph driver; anything but `overlay` is refused with `EUNSUPPORTED`. */
  driver?: string
  /** Read-only stores whose images and layers are listed after the main store's. */
  additionalImageStores?: string[]
  /**
   * Read layer content through `podman unshare` (see `startUnshareHelper`): `'auto'` (default)
   * does for a rootless store — not root, store root owned by the caller — whose files belong
   * to subordinate IDs. Metadata is always read directly.
   */
  unshare?: boolean | 'auto'
}

export type StoreConfig = StoreConfigInfo

/**
 * A containers-storage store (overlay driver), read directly from disk under podman's own locks.
 *
 * ```ts
 * const storage = await Storage.discover()
 * for await (const image of storage.images()) console.log(image.id, image.names)
 * const layers = await (await storage.image('alpine')).layers()
 * ```
 */
export class Storage {
  readonly #native: NativeStore

  private constructor(native: NativeStore) {
    this.#native = native
  }

  /** Opens the store at `options.root`. */
  static async open(options: OpenOptions): Promise<Storage> {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('EINVAL', 'Storage.open takes an options object: { root, runroot?, ... }')
    }
    const { unshare = 'auto', ...native } = options
    const store = await call(() => openStore(native))
    if (wantsUnshare(unshare, options.root)) useUnshare(store, { root: options.root, runroot: options.runroot })
    return new Storage(store)
  }

  /**
   * Opens the store podman would use: `CONTAINERS_STORAGE_CONF`, `storage.conf` (system, or the
   * user's when rootless), `CONTAINERS_STORAGE_ROOT`, then the root or rootless defaults.
   * `overrides` replace what discovery found (podman's `--root`, `--runroot`).
   */
  static async discover(overrides: Partial<OpenOptions> | null = {}): Promise<Storage> {
    const { root, runroot, driver, additionalImageStores } = overrides ?? {}
    const config = await Storage.config()
    return Storage.open({
      root: root ?? config.graphRoot,
      runroot: runroot ?? config.runRoot,
      driver: driver ?? config.driver ?? undefined,
      additionalImageStores: additionalImageStores ?? config.additionalImageStores,
    })
  }

  /**
   * Releases the store's open directories at once rather than when garbage-collected — needed
   * before unmounting its filesystem. Calls under way finish; later calls fail with `EINVAL`.
   */
  close(): void {
    this.#native.close()
  }

  /**
   * Serves this store over JSON-RPC on a new Unix socket at `socketPath` (see `RpcClient`).
   * Anyone who can connect to the socket can read the store, so it is created mode 0600 whatever
   * the umask; `{ group }` (a name or GID) makes it 0660 and group-owned, for that group's members.
   */
  async serve(socketPath: string, options: RpcServeOptions = {}): Promise<RpcServer> {
    return new RpcServer(await call(async () => this.#native.serve(socketPath, options.group)))
  }

  /**
   * Serves this store as a read-only OCI registry: `GET /v2/`, the catalog, tag lists, manifests
   * by tag and digest, blobs by digest (HEAD and `Range` too). An image name without its tag is
   * the repository (`localhost/app:1` is pulled as `ADDRESS/localhost/app:1`); layers go out
   * uncompressed, named by their diff IDs, the config byte for byte (same image ID). Loopback
   * unless `address` says otherwise; TLS and basic auth on request.
   */
  async serveRegistry(options: RegistryServeOptions = {}): Promise<RegistryServer> {
    const { onRequest, tls, ...rest } = options
    const native = await call(() => this.#native.serveRegistry({ ...rest, tlsCert: tls?.cert, tlsKey: tls?.key }, onRequest))
    return new RegistryServer(native)
  }

  /** Where podman would find its store, without opening it. */
  static async config(): Promise<StoreConfig> {
    return call(() => discoverConfig())
  }

  get root(): string {
    return this.#native.graphRoot
  }

  get runroot(): string | null {
    return this.#native.runRoot
  }

  /** The main store followed by the additional image stores. */
  get stores(): string[] {
    return this.#native.storePaths
  }

  async listImages(): Promise<Image[]> {
    const images = await call(() => this.#native.listImages())
    return images.map((info) => new Image(this.#native, info))
  }

  /** Every image: `for await (const image of storage.images())`. */
  async *images(): AsyncGenerator<Image> {
    yield* await this.listImages()
  }

  /**
   * The image a reference names: full ID, `sha256:`ID or digest, a name (`alpine`,
   * `alpine:latest`, `docker.io/library/alpine:latest`, `localhost/x:1`), `name@sha256:…`, or a
   * unique ID prefix. Throws `NoImageError` or `AmbiguousError`.
   */
  async image(reference: string): Promise<Image> {
    return new Image(this.#native, await call(() => this.#native.getImage(reference)))
  }

  async listLayers(): Promise<Layer[]> {
    const layers = await call(() => this.#native.listLayers())
    return layers.map((info) => new Layer(this.#native, info))
  }

  /** Every layer: `for await (const layer of storage.layers())`. */
  async *layers(): AsyncGenerator<Layer> {
    yield* await this.listLayers()
  }

  /** The layer with this ID, name or unique ID prefix. Throws `NoLayerError` or `AmbiguousError`. */
  async layer(reference: string): Promise<Layer> {
    return new Layer(this.#native, await call(() => this.#native.getLayer(reference)))
  }

  /**
   * Checks the store for damage, as containers/storage's check does: every layer's tar rebuilt
   * from tar-split and `diff/` (each file's CRC-64, the whole tar's `diff-digest` and size), every
   * image's big data against its recorded size and digest, parents, image layers, overlay links
   * and `lower` files; for the whole store also unused layers, dangling `l/` links and layer
   * directories no record names. Damage is reported, not thrown.
   */
  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    const [{ image }, onProgress] = splitProgress(options)
    return (await call(() => this.#native.verify(image, onProgress))) as VerifyReport
  }

  /** The layer an `overlay/l/<LINK>` short link stands for. */
  async resolveLink(link: string): Promise<Layer> {
    return new Layer(this.#native, await call(() => this.#native.resolveLink(link)))
  }

  /**
   * Creates a layer from a tar (plain, gzip or zstd): a path, an fd or a stream. The layer is
   * written as podman writes one — `diff/` with overlay whiteouts, the tar-split that lets it
   * export bit for bit, link and lower files, the `layers.json` record — under the store's locks.
   */
  async createLayer(tar: TarSource, options: CreateLayerOptions = {}): Promise<Layer> {
    const info = await withTarFd(tar, (fd) => call(() => this.#native.createLayer(fd, options)))
    return new Layer(this.#native, info)
  }

  /** Creates an image record with its big data (or names an existing image of the same ID). */
  async createImage(options: CreateImageOptions): Promise<Image> {
    return new Image(this.#native, await call(() => this.#native.createImage(options)))
  }

  /** Gives an image more names (`podman tag`); a name another image had moves here. */
  async tag(reference: string, ...names: string[]): Promise<Image> {
    return new Image(this.#native, await call(() => this.#native.tagImage(reference, names)))
  }

  /** Takes names from an image (`podman untag`); all of them when none are given. */
  async untag(reference: string, ...names: string[]): Promise<Image> {
    return new Image(this.#native, await call(() => this.#native.untagImage(reference, names)))
  }

  /**
   * Deletes an image and the layers no other image or container uses (`podman rmi`); returns the
   * deleted layers' IDs. Throws `InUseError` while a container uses the image.
   */
  async removeImage(reference: string): Promise<string[]> {
    return call(() => this.#native.removeImage(reference))
  }

  /**
   * Deletes one layer (containers/storage's `DeleteLayer`); returns its ID. Throws `InUseError`
   * while it has a child layer, is an image's top layer or a container's layer.
   */
  async removeLayer(reference: string): Promise<string> {
    return call(() => this.#native.removeLayer(reference))
  }

  /**
   * Pulls an image into the store from `oci:DIR[:REF]`, `docker-archive:FILE[:REF]` or
   * `docker://REFERENCE`, writing what skopeo would (same IDs,
   * records and big data); layers the store has are skipped.
   */
  async pull(source: string, options: PullOptions = {}): Promise<PullResult> {
    return call(() => this.#native.pull(source, options.name, options.tlsVerify, options.onProgress))
  }

  /** `podman import`: a root filesystem tar file becomes a one-layer image. */
  async import(tarPath: string, options: { name?: string } = {}): Promise<PullResult> {
    return call(() => this.#native.importTarball(tarPath, options.name))
  }
}
