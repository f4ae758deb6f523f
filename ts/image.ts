import type { Backend } from './backend.js'
import type { ExtractOptions, ExtractStats } from './extract.js'
import type { ComposefsImageInfo, ComposefsOptions } from './composefs.js'
import type { CopyOptions, CopyResult } from './copy.js'
import type { Analysis, Change, ImageInfo, PlatformInfo } from './generated/operations.js'
import type { OciCopyOptions, OciCopyResult } from './oci.js'
import { ImageFs } from './fs.js'
import { Layer } from './layer.js'
import type { ImageTocOptions, Toc } from './toc.js'

export type Platform = PlatformInfo

/** One line of `image.diff()`: a path added (`A`), changed (`C`) or deleted (`D`). */
export type ImageChange = Change

/** What `image.analyze()` returns: per layer its files, for the image dive's figures. */
export type ImageAnalysis = Analysis

/** What `Image.inspect()` returns: the image with its manifest, config, platform and layers. */
export interface ImageDetails {
  image: Image
  manifest: Record<string, unknown>
  config: Record<string, unknown>
  platform: Platform
  /** Top first, base last. */
  layers: Layer[]
  size: number
}

/**
 * An image of the store: its `images.json` record, plus methods that read its big data and layers.
 * The fields are a snapshot taken when the image was looked up; the methods read the store again.
 */
export class Image {
  readonly id!: string
  readonly names!: string[]
  readonly namesHistory!: string[]
  /** The digest of the image's manifest. */
  readonly digest?: string | null
  /** Every digest the image is known by, `digest` first. */
  readonly digests!: string[]
  /** `repository@digest` pairs, as podman's `RepoDigests`. */
  readonly repoDigests!: string[]
  /** Uncompressed layer bytes plus big data, as podman's `Size`. */
  readonly size!: number
  readonly topLayer?: string | null
  readonly created?: string | null
  readonly bigDataNames!: string[]
  /** The store the image lives in: the graph root or an additional image store. */
  readonly store!: string
  readonly readOnly!: boolean
  readonly #backend: Backend

  /** @internal */
  constructor(backend: Backend, info: ImageInfo) {
    Object.assign(this, info)
    this.#backend = backend
  }

  async inspect(): Promise<ImageDetails> {
    const details = await this.#backend.call('InspectImage', { image: this.id })
    return {
      image: new Image(this.#backend, details.image),
      manifest: details.manifest,
      config: details.config,
      platform: details.platform,
      layers: details.layers.map((info) => new Layer(this.#backend, info)),
      size: details.size,
    }
  }

  /** The image's manifest (the `manifest` big-data item), parsed. */
  async manifest(): Promise<Record<string, unknown>> {
    return (await this.inspect()).manifest
  }

  /** The image's config, found through the manifest's `config.digest`, parsed. */
  async config(): Promise<Record<string, unknown>> {
    return (await this.inspect()).config
  }

  async platform(): Promise<Platform> {
    return (await this.inspect()).platform
  }

  /** The image's layers, top first, base last. */
  async layers(): Promise<Layer[]> {
    return (await this.inspect()).layers
  }

  /**
   * Writes the image's merged filesystem — layers applied base to top, whiteouts and opaque
   * directories carried out, as `podman image mount` shows it — into `dir`, which must not exist
   * or be empty. The tree is built beside `dir` and renamed into place when complete.
   */
  async extract(dir: string, options: ExtractOptions = {}): Promise<ExtractStats> {
    const { onProgress, ...settings } = options
    return this.#backend.call('ExtractImage', { image: this.id, target: dir, ...settings }, { onProgress })
  }

  /**
   * Writes the image's composefs image to `file`: the EROFS image (format 1, byte for byte what
   * C `mkcomposefs --min-version=1` writes for its dumpfile), or with `dumpfile: true` that
   * dumpfile. File contents are named by their fs-verity digest (`algorithm`, default `sha512`
   * as `cfsctl init`); the tree is composefs-rs's for an OCI image (root metadata from `/usr`,
   * `/run` emptied, only `security.capability` kept). Returns the composefs ID (what
   * `cfsctl oci compute-id` prints) and the objects named. The file appears whole or not at all.
   */
  async composefs(file: string, options: ComposefsOptions = {}): Promise<ComposefsImageInfo> {
    return this.#backend.call('ComposefsImage', { image: this.id, output: file, ...options })
  }

  /**
   * The table of contents of the merged filesystem (as `extract` would write it), parents before
   * children, eStargz-style.
   */
  async toc(options: ImageTocOptions = {}): Promise<Toc> {
    return this.#backend.call('ImageToc', { image: this.id, digests: options.digests, whiteouts: options.whiteouts }) as Promise<Toc>
  }

  /**
   * Copies this image into the OCI image layout at `dir` (created when missing, appended to
   * otherwise): layers rebuilt bit for bit and checked against their diff digests, the config
   * byte for byte, the image's own manifest when it names exactly the blobs written (else a new
   * OCI manifest), and an `index.json` entry named `refName`.
   */
  async copyToOci(dir: string, options: OciCopyOptions = {}): Promise<OciCopyResult> {
    const { onProgress, ...params } = options
    return this.#backend.call('CopyToOci', { image: this.id, dir, ...params }, { onProgress })
  }

  /**
   * Copies this image to `destination`, named as skopeo names it:
   * - `docker://HOST/REPO[:TAG]` pushes to a registry (`podman push`): blobs the repository has
   *   are skipped, blobs known to be in another repository of the registry are mounted, the
   *   manifest goes last; credentials come from where podman looks (`REGISTRY_AUTH_FILE`,
   *   `${XDG_RUNTIME_DIR}/containers/auth.json`, `~/.docker/config.json`);
   * - `docker-archive:FILE[:NAME]` writes what `podman save` writes;
   * - `oci-archive:FILE[:NAME]` an OCI layout in a tar; `oci:DIR[:NAME]` an OCI layout.
   *
   * Layers are rebuilt bit for bit, compressed (gzip by default) and checked against their diff
   * digests while they stream; the config goes byte for byte, so the image ID stays. An archive
   * is written to a temp file and renamed into place: a failed copy leaves no file behind.
   */
  async copyTo(destination: string, options: CopyOptions = {}): Promise<CopyResult> {
    const { onProgress, ...params } = options
    return this.#backend.call('CopyTo', { image: this.id, destination, ...params }, { onProgress })
  }

  /**
   * The image's merged filesystem, read in place (no mount, no extraction), shaped like
   * `node:fs/promises`: `stat`, `readdir`, `readFile`, `createReadStream`, `entries({ match })`...
   */
  get fs(): ImageFs {
    return new ImageFs(this.#backend, { image: this.id })
  }

  /**
   * What `podman image diff` prints for this image against `base` (an `Image` or a reference),
   * or against its top layer's parent: `{ kind: 'A' | 'C' | 'D', path }`, sorted by path.
   */
  async diff(base?: Image | string): Promise<ImageChange[]> {
    const other = base instanceof Image ? base.id : base
    return this.#backend.call('ImageDiff', { image: this.id, base: other })
  }

  /**
   * Each layer's added, changed and removed files with their sizes, and the image's wasted bytes
   * and efficiency score as dive computes them (`dive --ci`), from the layers' headers.
   */
  async analyze(): Promise<ImageAnalysis> {
    return this.#backend.call('AnalyzeImage', { image: this.id })
  }

  /** One big-data item (manifest, config, signatures, ...) as raw bytes. */
  async bigData(key: string): Promise<Buffer> {
    return Buffer.from(await this.#backend.call('ImageBigData', { image: this.id, key }), 'base64')
  }
}
