import { call, InvalidArgumentError } from './errors.js'
import path from 'node:path'
import { RegistryServer, type RegistryServeOptions } from './registry.js'
import { RpcServer, type RpcClient, type RpcServeOptions } from './rpc.js'
import { usesUnshare, useUnshare, wantsUnshare, withUnshareHelper } from './unshare.js'
import { Image } from './image.js'
import { Layer } from './layer.js'
import { native, type NativeStore, type StoreConfigInfo } from './native.js'
import {
  withTarFd,
  type CreateImageOptions,
  type CreateLayerOptions,
  type PullOptions,
  type PullResult,
  type TarSource,
} from './write.js'
import { splitProgress, type Progress } from './progress.js'
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
  /**
   * Create the store when `root` is missing or empty, as podman and skopeo do: the directories
   * and lock files containers/storage makes (in `runroot` too when given). Without it a missing
   * root is `ENOSTORE`; an empty one gets them on its first write.
   */
  create?: boolean
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
    const { unshare = 'auto', ...storeOptions } = options
    const store = await call(() => native().openStore(storeOptions))
    if (wantsUnshare(unshare, options.root)) useUnshare(store, { root: options.root, runroot: options.runroot })
    return new Storage(store)
  }

  /**
   * Opens the store podman would use: `CONTAINERS_STORAGE_CONF`, `storage.conf` (system, or the
   * user's when rootless), `CONTAINERS_STORAGE_ROOT`, then the root or rootless defaults.
   * `overrides` replace what discovery found (podman's `--root`, `--runroot`).
   */
  static async discover(overrides: Partial<OpenOptions> | null = {}): Promise<Storage> {
    const { root, runroot, driver, additionalImageStores, create } = overrides ?? {}
    const config = await Storage.config()
    return Storage.open({
      root: root ?? config.graphRoot,
      runroot: runroot ?? config.runRoot,
      driver: driver ?? config.driver ?? undefined,
      additionalImageStores: additionalImageStores ?? config.additionalImageStores,
      ...(create !== undefined && { create }),
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
   * Anyone who can connect to the socket can read the store — and, with `writable`, write it —
   * so it is created mode 0600 whatever the umask; `{ group }` (a name or GID) makes it 0660 and
   * group-owned, for that group's members.
   */
  async serve(socketPath: string, options: RpcServeOptions = {}): Promise<RpcServer> {
    return new RpcServer(await call(async () => this.#native.serve(socketPath, options.writable ?? false, options.group)))
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

  /**
   * Runs a write directly, or — for a store read through `podman unshare` (a rootless store) —
   * in a writable helper inside the user namespace, where podman's own writes run: only there
   * can files be given the subordinate IDs the layers hold.
   */
  async #write<T>(direct: () => Promise<T>, remote: (client: RpcClient) => Promise<T>): Promise<T> {
    if (!usesUnshare(this.#native)) return call(direct)
    return call(async () => (await withUnshareHelper(this.#native, (helper) => remote(helper.client), { writable: true })) as T)
  }

  /** Where podman would find its store, without opening it. */
  static async config(): Promise<StoreConfig> {
    return call(() => native().discoverConfig())
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
    const [{ image, quick }, onProgress] = splitProgress(options)
    return (await call(() => this.#native.verify(image, quick ?? false, onProgress))) as VerifyReport
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
    const info = await withTarFd(tar, (fd) =>
      this.#write(
        () => this.#native.createLayer(fd, options),
        async (client) => this.#native.getLayer(idOf(await client.call('CreateLayer', options, { fds: [fd] }))),
      ),
    )
    return new Layer(this.#native, info)
  }

  /** Creates an image record with its big data (or names an existing image of the same ID). */
  async createImage(options: CreateImageOptions): Promise<Image> {
    const info = await this.#write(
      () => this.#native.createImage(options),
      async (client) => {
        const bigData = options.bigData?.map(({ key, data }) => ({ key, data: Buffer.from(data).toString('base64') }))
        return this.#native.getImage(idOf(await client.call('CreateImage', { ...options, bigData })))
      },
    )
    return new Image(this.#native, info)
  }

  /** Gives an image more names (`podman tag`); a name another image had moves here. */
  async tag(reference: string, ...names: string[]): Promise<Image> {
    const info = await this.#write(
      () => this.#native.tagImage(reference, names),
      async (client) => this.#native.getImage(idOf(await client.call('Tag', { image: reference, names }))),
    )
    return new Image(this.#native, info)
  }

  /** Takes names from an image (`podman untag`); all of them when none are given. */
  async untag(reference: string, ...names: string[]): Promise<Image> {
    const info = await this.#write(
      () => this.#native.untagImage(reference, names),
      async (client) => this.#native.getImage(idOf(await client.call('Untag', { image: reference, names }))),
    )
    return new Image(this.#native, info)
  }

  /**
   * Deletes an image and the layers no other image or container uses (`podman rmi`); returns the
   * deleted layers' IDs. Throws `InUseError` while a container uses the image.
   */
  async removeImage(reference: string): Promise<string[]> {
    return this.#write(
      () => this.#native.removeImage(reference),
      async (client) => (await client.call('RemoveImage', { image: reference })).result as string[],
    )
  }

  /**
   * Deletes one layer (containers/storage's `DeleteLayer`); returns its ID. Throws `InUseError`
   * while it has a child layer, is an image's top layer or a container's layer.
   */
  async removeLayer(reference: string): Promise<string> {
    return this.#write(
      () => this.#native.removeLayer(reference),
      async (client) => (await client.call('RemoveLayer', { layer: reference })).result as string,
    )
  }

  /**
   * Pulls an image into the store from `oci:DIR[:REF]`, `docker-archive:FILE[:REF]` or
   * `docker://REFERENCE`, writing what skopeo would (same IDs,
   * records and big data); layers the store has are skipped.
   */
  async pull(source: string, options: PullOptions = {}): Promise<PullResult> {
    const { name, tlsVerify, onProgress } = options
    return this.#write(
      () => this.#native.pull(source, name, tlsVerify, onProgress),
      async (client) => {
        const onNotification = (method: string, params: unknown) => {
          if (method === 'pull.progress') onProgress?.(params as Progress)
        }
        return (await client.call('Pull', { source, name, tlsVerify }, { onNotification })).result as PullResult
      },
    )
  }

  /** `podman import`: a root filesystem tar file becomes a one-layer image. */
  async import(tarPath: string, options: { name?: string } = {}): Promise<PullResult> {
    return this.#write(
      () => this.#native.importTarball(tarPath, options.name),
      // The helper runs elsewhere: it gets the file by an absolute path.
      async (client) => (await client.call('Import', { path: path.resolve(tarPath), name: options.name })).result as PullResult,
    )
  }
}

/** The `id` of a write method's result. */
function idOf(reply: { result: unknown }): string {
  return (reply.result as { id: string }).id
}
