import { call, InvalidArgumentError } from './errors.js'
import { DirectBackend, HelperBackend, type Backend } from './backend.js'
import { serveRegistry, type RegistryServer, type RegistryServeOptions } from './registry.js'
import { serveRpc, type RpcServer, type RpcServeOptions } from './rpc.js'
import { startUnshareHelper, wantsUnshare } from './unshare.js'
import { Image } from './image.js'
import { Layer } from './layer.js'
import { native, type StoreConfigInfo } from './native.js'
import type { StoreInfo } from './generated/operations.js'
import type { LoginOptions, LoginResult, LogoutOptions, RegistriesConf, RegistriesOptions } from './registries.js'
import { withTarFd, type CreateImageOptions, type CreateLayerOptions, type PullOptions, type PullResult, type TarSource } from './write.js'
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
   * Run every operation in a helper inside the user's podman user namespace (see
   * `startUnshareHelper`), where a rootless store's files — owned by subordinate IDs — can be
   * read and written as podman does: `'auto'` (default) does for a rootless store (not root,
   * store root owned by the caller). One helper serves the store until `close()`.
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
  readonly #backend: Backend
  readonly #info: StoreInfo

  /** @internal Use `Storage.open` or `Storage.discover`. */
  constructor(backend: Backend, info: StoreInfo) {
    this.#backend = backend
    this.#info = info
  }

  /** Opens the store at `options.root`. */
  static async open(options: OpenOptions): Promise<Storage> {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('EINVAL', 'Storage.open takes an options object: { root, runroot?, ... }')
    }
    const { unshare = 'auto', ...storeOptions } = options
    const backend = wantsUnshare(unshare, options.root)
      ? new HelperBackend(await startUnshareHelper({ ...storeOptions, writable: true }))
      : new DirectBackend(await call(() => native().openStore(storeOptions)))
    return storageOn(backend)
  }

  /**
   * Opens the store podman would use: `CONTAINERS_STORAGE_CONF`, `storage.conf` (system, or the
   * user's when rootless), `CONTAINERS_STORAGE_ROOT`, then the root or rootless defaults.
   * `overrides` replace what discovery found (podman's `--root`, `--runroot`).
   */
  static async discover(overrides: Partial<OpenOptions> | null = {}): Promise<Storage> {
    const { root, runroot, driver, additionalImageStores, create, unshare } = overrides ?? {}
    const config = await Storage.config()
    return Storage.open({
      root: root ?? config.graphRoot,
      runroot: runroot ?? config.runRoot,
      driver: driver ?? config.driver ?? undefined,
      additionalImageStores: additionalImageStores ?? config.additionalImageStores,
      ...(create !== undefined && { create }),
      ...(unshare !== undefined && { unshare }),
    })
  }

  /**
   * Releases the store's open directories at once rather than when garbage-collected — needed
   * before unmounting its filesystem — and stops its user-namespace helper if it has one.
   * Calls under way finish; later calls fail with `EINVAL`.
   */
  close(): Promise<void> {
    return this.#backend.close()
  }

  /**
   * Serves this store over JSON-RPC on a new Unix socket at `socketPath` (see `RpcClient`).
   * Anyone who can connect to the socket can read the store — and, with `writable`, write it —
   * so it is created mode 0600 whatever the umask; `{ group }` (a name or GID) makes it 0660 and
   * group-owned, for that group's members.
   */
  async serve(socketPath: string, options: RpcServeOptions = {}): Promise<RpcServer> {
    return serveRpc(this.#backend.start('Serve', { socket: socketPath, writable: options.writable, group: options.group }))
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
    return serveRegistry(this.#backend.start('ServeRegistry', { ...rest, tlsCert: tls?.cert, tlsKey: tls?.key }), onRequest)
  }

  /** Where podman would find its store, without opening it. */
  static async config(): Promise<StoreConfig> {
    return call(() => native().discoverConfig())
  }

  get root(): string {
    return this.#info.graphRoot
  }

  get runroot(): string | null {
    return this.#info.runRoot
  }

  /** The main store followed by the additional image stores. */
  get stores(): string[] {
    return this.#info.storePaths
  }

  async listImages(): Promise<Image[]> {
    const images = await this.#backend.call('ListImages', {})
    return images.map((info) => new Image(this.#backend, info))
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
    return new Image(this.#backend, await this.#backend.call('GetImage', { image: reference }))
  }

  async listLayers(): Promise<Layer[]> {
    const layers = await this.#backend.call('ListLayers', {})
    return layers.map((info) => new Layer(this.#backend, info))
  }

  /** Every layer: `for await (const layer of storage.layers())`. */
  async *layers(): AsyncGenerator<Layer> {
    yield* await this.listLayers()
  }

  /** The layer with this ID, name or unique ID prefix. Throws `NoLayerError` or `AmbiguousError`. */
  async layer(reference: string): Promise<Layer> {
    return new Layer(this.#backend, await this.#backend.call('GetLayer', { layer: reference }))
  }

  /**
   * Checks the store for damage, as containers/storage's check does: every layer's tar rebuilt
   * from tar-split and `diff/` (each file's CRC-64, the whole tar's `diff-digest` and size), every
   * image's big data against its recorded size and digest, parents, image layers, overlay links
   * and `lower` files; for the whole store also unused layers, dangling `l/` links and layer
   * directories no record names. Damage is reported, not thrown.
   */
  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    const { onProgress, ...params } = options
    return this.#backend.call('Verify', params, { onProgress })
  }

  /** The layer an `overlay/l/<LINK>` short link stands for. */
  async resolveLink(link: string): Promise<Layer> {
    return new Layer(this.#backend, await this.#backend.call('ResolveLink', { link }))
  }

  /**
   * Creates a layer from a tar (plain, gzip or zstd): a path, an fd or a stream. The layer is
   * written as podman writes one — `diff/` with overlay whiteouts, the tar-split that lets it
   * export bit for bit, link and lower files, the `layers.json` record — under the store's locks.
   */
  async createLayer(tar: TarSource, options: CreateLayerOptions = {}): Promise<Layer> {
    const info = await withTarFd(tar, (fd) => this.#backend.call('CreateLayer', options, { fds: [fd] }))
    return new Layer(this.#backend, info)
  }

  /** Creates an image record with its big data (or names an existing image of the same ID). */
  async createImage(options: CreateImageOptions): Promise<Image> {
    const bigData = options.bigData?.map(({ key, data }) => ({ key, data: Buffer.from(data).toString('base64') }))
    return new Image(this.#backend, await this.#backend.call('CreateImage', { ...options, bigData }))
  }

  /** Gives an image more names (`podman tag`); a name another image had moves here. */
  async tag(reference: string, ...names: string[]): Promise<Image> {
    return new Image(this.#backend, await this.#backend.call('Tag', { image: reference, names }))
  }

  /** Takes names from an image (`podman untag`); all of them when none are given. */
  async untag(reference: string, ...names: string[]): Promise<Image> {
    return new Image(this.#backend, await this.#backend.call('Untag', { image: reference, names }))
  }

  /**
   * Deletes an image and the layers no other image or container uses (`podman rmi`); returns the
   * deleted layers' IDs. Throws `InUseError` while a container uses the image.
   */
  async removeImage(reference: string): Promise<string[]> {
    return this.#backend.call('RemoveImage', { image: reference })
  }

  /**
   * Deletes one layer (containers/storage's `DeleteLayer`); returns its ID. Throws `InUseError`
   * while it has a child layer, is an image's top layer or a container's layer.
   */
  async removeLayer(reference: string): Promise<string> {
    return this.#backend.call('RemoveLayer', { layer: reference })
  }

  /**
   * Pulls an image into the store, as podman pulls it: from `oci:DIR[:REF]`,
   * `docker-archive:FILE[:REF]`, `docker://REFERENCE`, or an image name without a transport (a
   * registry; a short name resolved through aliases and unqualified-search registries). A registry
   * image comes from where registries.conf says (mirrors first), with the user's credentials and
   * certificates; policy.json judges every image before anything but its manifest is fetched.
   * The store gets what skopeo would write (same IDs, records and big data); layers it has are
   * skipped.
   */
  async pull(source: string, options: PullOptions = {}): Promise<PullResult> {
    const { onProgress, ...params } = options
    return this.#backend.call('Pull', { source, ...params }, { onProgress })
  }

  /**
   * `podman import`: a root filesystem tar file becomes a one-layer image, once the signature
   * policy's `tarball` transport accepts it (`signaturePolicy` names another policy.json).
   */
  async import(tarPath: string, options: { name?: string; signaturePolicy?: string } = {}): Promise<PullResult> {
    return this.#backend.call('Import', { path: tarPath, ...options })
  }

  /**
   * The registry configuration this store's pulls use (registries.conf and its drop-ins, merged
   * as podman merges them), for tools that show it. For a rootless store it is read where the
   * pulls run, in the store's user-namespace helper: the same files podman reads for the user.
   */
  async registries(options: RegistriesOptions = {}): Promise<RegistriesConf> {
    return this.#backend.call('Registries', options)
  }

  /**
   * `podman login`: checks the user name and password against the registry `server`
   * (`host[:port]`, or a namespace in it) and stores them where podman does — the auth file
   * (`$XDG_RUNTIME_DIR/containers/auth.json` unless `authFile` names one; mode 0600, the format
   * podman writes) or the credential helper it names for the registry. A registry that refuses
   * them: `RemoteError` (`EACCES`), nothing stored.
   */
  async login(server: string, options: LoginOptions): Promise<LoginResult> {
    return this.#backend.call('Login', { ...options, server })
  }

  /** `podman logout`: removes the credentials stored for `server`; `ENOENT` when there were none. */
  async logout(server: string, options: LogoutOptions = {}): Promise<void> {
    await this.#backend.call('Logout', { ...options, server })
  }
}

/** The store whose operations run on `backend` (which is closed if it cannot describe the store). */
export async function storageOn(backend: Backend): Promise<Storage> {
  try {
    return new Storage(backend, await backend.call('Describe', {}))
  } catch (err) {
    await backend.close()
    throw err
  }
}
