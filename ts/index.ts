/**
 * cstor: read containers-storage — the image store of podman, buildah, skopeo and CRI-O — directly.
 * @packageDocumentation
 */
export { Storage, type OpenOptions, type StoreConfig } from './storage.js'
export { Image, type ImageAnalysis, type ImageChange, type ImageDetails, type Platform } from './image.js'
export { Layer } from './layer.js'
export { Dirent, EntryType, ImageFs, Stats, type EntriesOptions, type FsEntry, type ReadStreamOptions } from './fs.js'
export type { ExportOptions, ExportStats } from './export.js'
export type { LayerPart } from './parts.js'
export { RegistryServer, type AccessLogEntry, type RegistryServeOptions } from './registry.js'
export { RpcClient, RpcServer, type RpcServeOptions } from './rpc.js'
export { ImageProxy, ProxyImage, type ImageProxyOptions } from './proxy.js'
export { startUnshareHelper, type UnshareHelper, type UnshareHelperOptions } from './unshare.js'
export type { ExtractOptions, ExtractStats, LayerExtractOptions } from './extract.js'
export type { ComposefsImageInfo, ComposefsOptions } from './composefs.js'
export type { CopyOptions, CopyResult } from './copy.js'
export type { OciCopyOptions, OciCopyResult } from './oci.js'
export type { Progress } from './progress.js'
export type { LoginOptions, LoginResult, LogoutOptions, RegistriesConf, RegistriesOptions, RegistryConfig, RegistryEndpoint, ShortNameAlias, ShortNameMode } from './registries.js'
export type { CreateImageOptions, CreateLayerOptions, PullOptions, PullResult, TarSource } from './write.js'
export type { ImageTocOptions, Toc, TocEntry, TocOptions } from './toc.js'
export { assembleSplitFdStream, type SplitFdStream, type SplitFdStreamOptions } from './splitfdstream.js'
export { tarDiff, type TarDiff, type TarDifference } from './tardiff.js'
export type { Finding, Severity, VerifyOptions, VerifyReport } from './verify.js'
export {
  AmbiguousError,
  ConfigError,
  CorruptError,
  CstorError,
  InUseError,
  InternalError,
  InvalidArgumentError,
  NoImageError,
  NoLayerError,
  NoStoreError,
  RemoteError,
  SystemError,
  UnsupportedError,
  type ErrorCode,
} from './errors.js'
