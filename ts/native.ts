/**
 * The native binding, loaded through the loader `napi build` generates (`index.js` at the package
 * root), which picks the `.node` file of this platform or the `cstor-<platform>` package.
 */
export {
  assembleSplitfdstream,
  createPipe,
  discoverConfig,
  openStore,
  tarDiff,
  NativeStore,
  rpcCall,
  startImageProxy,
  type NativeImageProxy,
  rpcStreamLayer,
  type NativeLayerParts,
  type NativeRpcServer,
  type ExportStatsInfo,
  type ExtractOptionsInfo,
  type ExtractStatsInfo,
  type FindingInfo,
  type ImageDetailsInfo,
  type ImageInfo,
  type LayerInfo,
  type CopyInfo,
  type PlatformInfo,
  type ProgressInfo,
  type PullInfo,
  type StoreConfigInfo,
  type TarDiffInfo,
  type TocEntryInfo,
  type VerifyReportInfo,
} from '../index.js'
