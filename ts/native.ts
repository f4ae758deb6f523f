/**
 * The native binding, loaded on first use through the loader `napi build` generates (`index.js` at
 * the package root), which picks the `.node` file of this platform or the `cstor-<platform>`
 * package. Loading waits for the first call so that a machine where no binary loads gets the typed
 * `EUNSUPPORTED` error of `loadfailure.ts` from the API (and `cstor`'s exit 1), not napi's
 * "Cannot find native binding" thrown at import; `--help` and the error classes need no binary.
 */
import { createRequire } from 'node:module'
import path from 'node:path'
import type * as Binding from '../index.js'
import { loadFailure } from './loadfailure.js'

export type {
  NativeImageProxy,
  NativeLayerParts,
  NativeRpcServer,
  NativeStore,
  ExportStatsInfo,
  ExtractOptionsInfo,
  ExtractStatsInfo,
  FindingInfo,
  ImageDetailsInfo,
  ImageInfo,
  LayerInfo,
  OciCopyInfo,
  PlatformInfo,
  ProgressInfo,
  PullInfo,
  StoreConfigInfo,
  TarDiffInfo,
  TocEntryInfo,
  VerifyReportInfo,
} from '../index.js'

/** The generated loader, at the package root: one level above `ts/` (sources) and `dist/` (built). */
const LOADER = path.join(__dirname, '..', 'index.js')

let loaded: typeof Binding | undefined

/** The binding's functions and classes; throws `UnsupportedError` when no binary loads here. */
export function native(): typeof Binding {
  if (!loaded) {
    try {
      loaded = createRequire(LOADER)(LOADER) as typeof Binding
    } catch (err) {
      throw loadFailure(err, LOADER)
    }
  }
  return loaded
}
