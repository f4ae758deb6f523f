/**
 * The native binding, loaded through the loader `napi build` generates (`index.js` at the package
 * root), which picks the `.node` file of this platform or the `cstor-<platform>` package. It loads
 * when this module does, as a plain import would; a failure is kept, not thrown, so that a machine
 * where no binary loads gets the typed `EUNSUPPORTED` error of `loadfailure.ts` from each API call
 * (and `cstor`'s exit 1) instead of napi's "Cannot find native binding" thrown at import, and
 * `--help` and the error classes work without a binary.
 */
import { createRequire } from 'node:module'
import path from 'node:path'
import type * as Binding from '../index.js'
import { UnsupportedError } from './errors.js'
import { loadFailure } from './loadfailure.js'

export type {
  CallBatch,
  ExportStatsInfo,
  NativeCall,
  NativeImageProxy,
  NativeStore,
  StoreConfigInfo,
  TarDiffInfo,
} from '../index.js'

/** The generated loader, at the package root: one level above `ts/` (sources) and `dist/` (built). */
const LOADER = path.join(__dirname, '..', 'index.js')

const loaded: typeof Binding | UnsupportedError = (() => {
  try {
    return createRequire(LOADER)(LOADER) as typeof Binding
  } catch (err) {
    return loadFailure(err, LOADER)
  }
})()

/** The binding's functions and classes; throws `UnsupportedError` when no binary loads here. */
export function native(): typeof Binding {
  if (loaded instanceof UnsupportedError) throw loaded
  return loaded
}
