// Generated from crates/cstor-core/src/ops by `cargo test -p cstor-core typescript` (CSTOR_UPDATE_TS=1 rewrites it). Do not edit.

export type AccessLogEntry = { 
/**
 * `REMOTE - USER [TIME] "METHOD TARGET" STATUS BYTES "USER-AGENT" SECONDSs [error: …]`
 */
line: string, 
/**
 * The client's `IP:PORT`.
 */
remote: string, 
/**
 * The user basic auth proved, if any.
 */
user?: string | null, method: string, 
/**
 * The request target, query included.
 */
target: string, status: number, 
/**
 * Body bytes sent.
 */
bytes: number, seconds: number, userAgent?: string | null, 
/**
 * Why the response broke off (the client left, the layer changed), if it did.
 */
error?: string | null, };

export type Analysis = { 
/**
 * Base first.
 */
layers: Array<LayerAnalysis>, sizeBytes: number, 
/**
 * All layers' bytes but the first's.
 */
userSizeBytes: number, wastedBytes: number, 
/**
 * `wastedBytes / userSizeBytes` (dive's `userWastedPercent`, a fraction); 0 without user bytes.
 */
wastedUserFraction: number, 
/**
 * dive's efficiency score, 0 to 1.
 */
efficiency: number, 
/**
 * Most wasted bytes first.
 */
inefficientFiles: Array<InefficientFile>, };

export type AnalyzeImage = { image: string, };

export type Base64 = string;

export type BigDataItem = { key: string, data: Base64, };

export type Change = { 
/**
 * The path, `/` first.
 */
path: string, 
/**
 * `A` added, `C` changed, `D` deleted.
 */
kind: 'A' | 'C' | 'D', };

export type ComposefsImage = { image: string, output: string, 
/**
 * Write the dumpfile instead of the EROFS image.
 */
dumpfile?: boolean, 
/**
 * The fs-verity hash naming objects and the image: `sha512` (default, as `cfsctl init`)
 * or `sha256` (as C `mkcomposefs --digest-store`).
 */
algorithm?: 'sha256' | 'sha512', };

export type ComposefsImageInfo = { 
/**
 * The image's composefs ID: the fs-verity digest of its EROFS image (hex), what
 * `cfsctl oci compute-id` prints.
 */
id: string, 
/**
 * Content objects it names (distinct files).
 */
objects: number, 
/**
 * Their bytes.
 */
objectBytes: number, };

export type CopyResult = { manifestDigest: string, manifestSize: number, layers: number, 
/**
 * Bytes of layer blobs written (not those the destination had).
 */
bytesWritten: number, 
/**
 * Layer blobs the destination had already, or mounted.
 */
blobsReused: number, 
/**
 * A composefs repository destination: the image's composefs ID (what
 * `cfsctl oci compute-id` prints).
 */
composefsId?: string, };

export type CopyTo = { image: string, destination: string, compression?: 'gzip' | 'zstd' | 'none', platform?: string, 
/**
 * A `composefs:` destination made anew: the fs-verity hash naming its objects, `sha512`
 * (default, as `cfsctl init`) or `sha256` (an existing repository's `meta.json` decides).
 */
algorithm?: 'sha256' | 'sha512', 
/**
 * A `composefs:` destination: objects are hard links to the store's layer files instead of
 * reflinks or copies (`EXDEV` before anything is written when the repository is on another
 * mount than the store's `overlay/`, which podman often bind-mounts on itself, rootless
 * podman always). In a secure repository that would enable fs-verity on the store's own files for
 * good; cstor writes insecure repositories only.
 */
hardlink?: boolean, 
/**
 * The registries.conf to read instead of the user's or the system's (`--registries-conf`,
 * `$CONTAINERS_REGISTRIES_CONF`); its drop-in directories are read as well.
 */
registriesConf?: string, 
/**
 * The auth file to read credentials from, and login to write them to, instead of those
 * podman looks at (`--authfile`, `$REGISTRY_AUTH_FILE`).
 */
authFile?: string, 
/**
 * A directory of `*.crt` CAs and `*.cert`/`*.key` client certificates for every registry,
 * instead of certs.d's per-registry directories (`--cert-dir`).
 */
certDir?: string, 
/**
 * `false`: no TLS verification and plain HTTP allowed; `true`: verified even where
 * registries.conf says `insecure`; unset, registries.conf decides (`--tls-verify`).
 */
tlsVerify?: boolean, };

export type CopyToOci = { image: string, dir: string, refName?: string, compression?: 'gzip' | 'zstd' | 'none', platform?: string, };

export type CreateImage = { 
/**
 * The image ID; random when absent.
 */
id?: string, 
/**
 * Names, normalized as podman stores them (`x` becomes `localhost/x:latest`).
 */
names?: Array<string>, topLayer?: string, 
/**
 * The manifest digest the image is known by.
 */
digest?: string, 
/**
 * RFC 3339; now when absent.
 */
created?: string, metadata?: string, 
/**
 * Big-data items (`manifest`, the config under its digest, …), in the order to record them.
 */
bigData?: Array<BigDataItem>, };

export type CreateLayer = { 
/**
 * The layer ID; random when absent (as `podman import` makes).
 */
id?: string, 
/**
 * The layer below, by ID.
 */
parent?: string, names?: Array<string>, };

export type Describe = Record<symbol, never>;

export type Done = Record<symbol, never>;

export type ExportLayer = { layer: string, verify?: boolean, };

export type ExportStats = { 
/**
 * Bytes of tar written.
 */
bytes: number, 
/**
 * File bodies taken from `diff/`.
 */
files: number, };

export type ExtractImage = { image: string, target: string, 
/**
 * Share extents with the store (`FICLONE`) where the filesystem allows; default true.
 */
reflinks?: boolean, 
/**
 * Give entries their recorded uid/gid; default: when running as root (for a rootless
 * store: in the user namespace, where the IDs are the image's own).
 */
owners?: boolean, 
/**
 * Copy extended attributes; default true.
 */
xattrs?: boolean, };

export type ExtractLayer = { layer: string, target: string, whiteouts?: 'overlay' | 'aufs' | 'apply', 
/**
 * Share extents with the store (`FICLONE`) where the filesystem allows; default true.
 */
reflinks?: boolean, 
/**
 * Give entries their recorded uid/gid; default: when running as root (for a rootless
 * store: in the user namespace, where the IDs are the image's own).
 */
owners?: boolean, 
/**
 * Copy extended attributes; default true.
 */
xattrs?: boolean, };

export type ExtractStats = { files: number, dirs: number, symlinks: number, 
/**
 * Names linked to a file already extracted from the same layer.
 */
hardlinks: number, 
/**
 * Fifos and devices.
 */
specials: number, 
/**
 * Whiteouts and opaque markers met (applied or written, as asked).
 */
whiteouts: number, 
/**
 * Devices and sockets not made: creating devices needs `CAP_MKNOD`, and a tar has no sockets.
 */
skipped: number, 
/**
 * Bytes of file content.
 */
bytes: number, reflinkedFiles: number, kernelCopiedFiles: number, userCopiedFiles: number, };

export type FileSize = { 
/**
 * `/` first.
 */
path: string, 
/**
 * Header bytes; for a removal, what the path held in the layers below.
 */
size: number, };

export type Finding = { severity: Severity, kind: FindingKind, 
/**
 * What it is about: a layer ID, an image ID, an `l/` link name or an `overlay/` entry.
 */
subject: string, 
/**
 * For a finding about one path of a layer: that path (as the tar names it, no `./`).
 */
path?: string | null, message: string, };

export type FindingKind = "layer-missing" | "layer-parent-cycle" | "layer-dir-missing" | "layer-content-modified" | "layer-metadata-modified" | "layer-metadata-unrestored" | "layer-incorrect-content-digest" | "layer-incorrect-content-size" | "layer-content-unverifiable" | "layer-link-missing" | "layer-lower-incorrect" | "link-dangling" | "layer-unaccounted" | "layer-unreferenced" | "image-layer-missing" | "image-data-missing" | "image-data-incorrect-size" | "image-data-incorrect-digest" | "unreadable";

export type FsDirent = { name: string, type: 'dir' | 'reg' | 'symlink' | 'char' | 'block' | 'fifo' | 'whiteout', };

export type FsEntries = { match?: Array<string>, 
/**
 * Only entries whose path (with or without its leading `/`) sorts after this one.
 */
after?: string, 
/**
 * At most this many entries.
 */
limit?: number, image?: string, layer?: string, };

export type FsOpen = { path: string, image?: string, layer?: string, };

export type FsOpened = { 
/**
 * Content bytes; the fd comes when this is not 0.
 */
size: number, };

export type FsReaddir = { path: string, image?: string, layer?: string, };

export type FsReadlink = { path: string, image?: string, layer?: string, };

export type FsStat = { follow?: boolean, path: string, image?: string, layer?: string, };

export type FsStats = { 
/**
 * The entry's path from the image root, `/` first: `realpath` when symlinks were followed.
 */
path: string, type: 'dir' | 'reg' | 'symlink' | 'char' | 'block' | 'fifo' | 'whiteout', mode: number, uid: number, gid: number, 
/**
 * Content bytes of a file, target bytes of a symlink, 0 for the rest.
 */
size: number, 
/**
 * Seconds since the epoch.
 */
mtime: number, nlink: number, 
/**
 * Equal for the names of one hardlink group.
 */
ino: number, rdev: number, linkTarget?: string, 
/**
 * The ID of the layer that provides the entry.
 */
layer: string, };

export type FsXattrs = { follow?: boolean, 
/**
 * Only this one: `ENODATA` when the entry lacks it.
 */
name?: string, path: string, image?: string, layer?: string, };

export type GetImage = { image: string, };

export type GetLayer = { layer: string, };

export type GetLayerSplitfdstream = { layer: string, inlineThreshold?: number, };

export type ImageBigData = { image: string, key: string, };

export type ImageDetailsInfo = { image: ImageInfo, manifest: Record<string, unknown>, config: Record<string, unknown>, platform: PlatformInfo, 
/**
 * Top first, base last.
 */
layers: Array<LayerInfo>, size: number, };

export type ImageDiff = { image: string, base?: string, };

export type ImageInfo = { id: string, names: Array<string>, namesHistory: Array<string>, 
/**
 * The digest of the image's manifest, when known.
 */
digest?: string | null, 
/**
 * Every digest the image is known by, `digest` first.
 */
digests: Array<string>, 
/**
 * `repository@digest` pairs, as podman's `RepoDigests`.
 */
repoDigests: Array<string>, 
/**
 * Uncompressed layer bytes plus big data, as podman's `Size`.
 */
size: number, topLayer?: string | null, created?: string | null, bigDataNames: Array<string>, 
/**
 * The store the image lives in: the graph root or an additional image store.
 */
store: string, readOnly: boolean, };

export type ImageToc = { image: string, digests?: boolean, whiteouts?: 'apply' | 'list', };

export type Import = { path: string, name?: string, 
/**
 * The policy.json to use instead of the user's or the system's.
 */
signaturePolicy?: string, };

export type InefficientFile = { path: string, 
/**
 * In how many layers.
 */
count: number, 
/**
 * All it counts, in every layer (dive's wasted bytes of the path).
 */
sizeBytes: number, };

export type InspectImage = { image: string, };

export type LayerAnalysis = { id: string, 
/**
 * The sum of its headers' sizes (dive's layer size).
 */
sizeBytes: number, 
/**
 * Files (not directories) new to the image.
 */
added: Array<FileSize>, 
/**
 * Files a lower layer had, written again.
 */
changed: Array<FileSize>, 
/**
 * Paths deleted (whiteouts; an opaque directory's former contents).
 */
removed: Array<FileSize>, };

export type LayerChain = { layer: string, };

export type LayerFile = { name: string, size: number, crc: string | null, };

export type LayerInfo = { id: string, names: Array<string>, parent?: string | null, created?: string | null, 
/**
 * sha256 of the uncompressed layer tar.
 */
diffDigest?: string | null, diffSize?: number | null, compressedDiffDigest?: string | null, compressedSize?: number | null, 
/**
 * 0 uncompressed, 1 bzip2, 2 gzip, 3 xz, 4 zstd.
 */
compression?: number | null, tocDigest?: string | null, uidset: Array<number>, gidset: Array<number>, metadata?: string | null, flags: Record<string, unknown>, bigDataNames: Array<string>, 
/**
 * The store the layer lives in: the graph root or an additional image store.
 */
store: string, readOnly: boolean, 
/**
 * Whether the record came from `volatile-layers.json`.
 */
volatile: boolean, };

export type LayerSegment = { data: Base64, };

export type LayerStart = { layer: string, size: number | null, };

export type LayerStreamed = { files: number, bytes: number, };

export type LayerToc = { layer: string, digests?: boolean, };

export type ListImages = Record<symbol, never>;

export type ListLayers = Record<symbol, never>;

export type Listening = { address: string, };

export type Login = { server: string, username: string, password: string, 
/**
 * The registries.conf to read instead of the user's or the system's (`--registries-conf`,
 * `$CONTAINERS_REGISTRIES_CONF`); its drop-in directories are read as well.
 */
registriesConf?: string, 
/**
 * The auth file to read credentials from, and login to write them to, instead of those
 * podman looks at (`--authfile`, `$REGISTRY_AUTH_FILE`).
 */
authFile?: string, 
/**
 * A directory of `*.crt` CAs and `*.cert`/`*.key` client certificates for every registry,
 * instead of certs.d's per-registry directories (`--cert-dir`).
 */
certDir?: string, 
/**
 * `false`: no TLS verification and plain HTTP allowed; `true`: verified even where
 * registries.conf says `insecure`; unset, registries.conf decides (`--tls-verify`).
 */
tlsVerify?: boolean, };

export type LoginResult = { storedIn: string, };

export type Logout = { server: string, registriesConf?: string, authFile?: string, };

export type LowerChain = { layer: string, };

export type PlatformInfo = { os: string, architecture: string, variant?: string | null, };

export type Progress = { 
/**
 * The layer being worked on (0 = base) and how many there are.
 */
layer: number, layers: number, 
/**
 * Bytes done, out of the layers' recorded uncompressed sizes (which count tar headers too,
 * so an extraction's content `bytes` ends somewhat below `total_bytes`).
 */
bytes: number, totalBytes: number, };

export type Pull = { source: string, name?: string, 
/**
 * The policy.json to judge the image by instead of the user's or the system's
 * (`--signature-policy`).
 */
signaturePolicy?: string, 
/**
 * The registries.conf to read instead of the user's or the system's (`--registries-conf`,
 * `$CONTAINERS_REGISTRIES_CONF`); its drop-in directories are read as well.
 */
registriesConf?: string, 
/**
 * The auth file to read credentials from, and login to write them to, instead of those
 * podman looks at (`--authfile`, `$REGISTRY_AUTH_FILE`).
 */
authFile?: string, 
/**
 * A directory of `*.crt` CAs and `*.cert`/`*.key` client certificates for every registry,
 * instead of certs.d's per-registry directories (`--cert-dir`).
 */
certDir?: string, 
/**
 * `false`: no TLS verification and plain HTTP allowed; `true`: verified even where
 * registries.conf says `insecure`; unset, registries.conf decides (`--tls-verify`).
 */
tlsVerify?: boolean, };

export type PullResult = { imageId: string, 
/**
 * The layer IDs, base first.
 */
layers: Array<string>, 
/**
 * How many layers were written (the others were in the store already).
 */
layersWritten: number, 
/**
 * Whether an image with this ID was there already (it got the name).
 */
existed: boolean, };

export type Registries = { registriesConf?: string, };

export type RegistriesConf = { 
/**
 * The files read, in order (the main file first, when it exists).
 */
files: Array<string>, 
/**
 * Sorted by prefix, one per prefix.
 */
registries: Array<RegistryConfig>, unqualifiedSearchRegistries: Array<string>, 
/**
 * The file that set `unqualified-search-registries`, for messages.
 */
unqualifiedSearchRegistriesOrigin: string | null, shortNameMode: ShortNameMode, aliases: { [key in string]: ShortNameAlias }, 
/**
 * `containers-auth.json` (the auth files) and `docker-credential-NAME` helpers, in order.
 */
credentialHelpers: Array<string>, };

export type RegistryConfig = { 
/**
 * What references it applies to: `host[:port][/namespace…]` or `*.domain`.
 */
prefix: string, mirrors: Array<RegistryEndpoint>, blocked: boolean, mirrorByDigestOnly: boolean, 
/**
 * `host[:port][/namespace]`.
 */
location: string, 
/**
 * TLS unverified, and plain HTTP allowed.
 */
insecure: boolean, 
/**
 * For a mirror: `all`, `digest-only` or `tag-only` (absent: all, unless the registry has
 * `mirror-by-digest-only`).
 */
pullFromMirror?: string, };

export type RegistryEndpoint = { 
/**
 * `host[:port][/namespace]`.
 */
location: string, 
/**
 * TLS unverified, and plain HTTP allowed.
 */
insecure: boolean, 
/**
 * For a mirror: `all`, `digest-only` or `tag-only` (absent: all, unless the registry has
 * `mirror-by-digest-only`).
 */
pullFromMirror?: string, };

export type RemoveImage = { image: string, };

export type RemoveLayer = { layer: string, };

export type ResolveLink = { link: string, };

export type Serve = { socket: string, writable?: boolean, group?: string, };

export type ServeRegistry = { address?: string, 
/**
 * HTTPS with this PEM certificate chain and private key.
 */
tlsCert?: string, tlsKey?: string, 
/**
 * Basic auth against an htpasswd file of bcrypt entries.
 */
htpasswd?: string, 
/**
 * Check each file body against its tar-split CRC-64 while sending it (default true).
 */
verify?: boolean, };

export type Severity = "error" | "warning" | "info";

export type ShortNameAlias = { 
/**
 * The fully qualified repository, or `None` when a later file reset it with `""`.
 */
value: string | null, origin: string, };

export type ShortNameMode = "disabled" | "permissive" | "enforcing";

export type SplitfdstreamInfo = { layer: string, 
/**
 * How many content fds follow the stream.
 */
content: number, };

export type StoreInfo = { graphRoot: string, runRoot: string | null, 
/**
 * The main store followed by the additional image stores.
 */
storePaths: Array<string>, };

export type StreamLayer = { layer: string, };

export type Tag = { image: string, names: Array<string>, };

export type Toc = { version: number, entries: Array<TocEntry>, };

export type TocEntry = { 
/**
 * The path, without `./` or a trailing `/`.
 */
name: string, 
/**
 * `whiteout` only in an image TOC with `whiteouts: 'list'`: a path an upper layer deleted.
 */
type: 'dir' | 'reg' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'whiteout', 
/**
 * Content bytes of a regular file (a hardlink: of its target).
 */
size?: number, 
/**
 * RFC 3339, whole seconds as tar headers keep them.
 */
modtime: string, 
/**
 * A symlink's target, or the entry a hardlink points at.
 */
linkName?: string, 
/**
 * Permission bits with setuid, setgid and sticky.
 */
mode: number, uid: number, gid: number, userName?: string, groupName?: string, devMajor?: number, devMinor?: number, 
/**
 * Extended attributes, values in base64.
 */
xattrs?: { [key in string]: Base64 }, 
/**
 * `sha256:<hex>` of the content, when asked for with `digests: true`.
 */
digest?: string, 
/**
 * Only with `whiteouts: 'list'`: the directory hides what layers below it had.
 */
opaque?: true, };

export type Untag = { image: string, names: Array<string>, };

export type Verify = { image?: string, quick?: boolean, };

export type VerifyReport = { clean: boolean, findings: Array<Finding>, images: number, layers: number, 
/**
 * Bytes of layer tar rebuilt and hashed.
 */
bytes: number, };

/** Every operation: its parameters and result. */
export interface Operations {
  Describe: { params: Describe; result: StoreInfo }
  ListImages: { params: ListImages; result: Array<ImageInfo> }
  GetImage: { params: GetImage; result: ImageInfo }
  InspectImage: { params: InspectImage; result: ImageDetailsInfo }
  ImageBigData: { params: ImageBigData; result: Base64 }
  ListLayers: { params: ListLayers; result: Array<LayerInfo> }
  GetLayer: { params: GetLayer; result: LayerInfo }
  LayerChain: { params: LayerChain; result: Array<LayerInfo> }
  LowerChain: { params: LowerChain; result: Array<LayerInfo> }
  ResolveLink: { params: ResolveLink; result: LayerInfo }
  ExportLayer: { params: ExportLayer; result: ExportStats }
  StreamLayer: { params: StreamLayer; result: LayerStreamed }
  GetLayerSplitfdstream: { params: GetLayerSplitfdstream; result: SplitfdstreamInfo }
  LayerToc: { params: LayerToc; result: Toc }
  ImageToc: { params: ImageToc; result: Toc }
  FsStat: { params: FsStat; result: FsStats }
  FsReaddir: { params: FsReaddir; result: Array<FsDirent> }
  FsReadlink: { params: FsReadlink; result: string }
  FsOpen: { params: FsOpen; result: FsOpened }
  FsXattrs: { params: FsXattrs; result: { [key in string]: Base64 } }
  FsEntries: { params: FsEntries; result: Array<FsStats> }
  ImageDiff: { params: ImageDiff; result: Array<Change> }
  AnalyzeImage: { params: AnalyzeImage; result: Analysis }
  ExtractImage: { params: ExtractImage; result: ExtractStats }
  ComposefsImage: { params: ComposefsImage; result: ComposefsImageInfo }
  ExtractLayer: { params: ExtractLayer; result: ExtractStats }
  CopyTo: { params: CopyTo; result: CopyResult }
  CopyToOci: { params: CopyToOci; result: CopyResult }
  Verify: { params: Verify; result: VerifyReport }
  ServeRegistry: { params: ServeRegistry; result: Done }
  Serve: { params: Serve; result: Done }
  Pull: { params: Pull; result: PullResult }
  Import: { params: Import; result: PullResult }
  Registries: { params: Registries; result: RegistriesConf }
  Login: { params: Login; result: LoginResult }
  Logout: { params: Logout; result: Done }
  CreateLayer: { params: CreateLayer; result: LayerInfo }
  CreateImage: { params: CreateImage; result: ImageInfo }
  Tag: { params: Tag; result: ImageInfo }
  Untag: { params: Untag; result: ImageInfo }
  RemoveImage: { params: RemoveImage; result: Array<string> }
  RemoveLayer: { params: RemoveLayer; result: string }
}
