/** `cstor image extract` and `cstor layer extract`: options, a progress bar, the summary. */
import type { ExtractStats, LayerExtractOptions } from '../index.js'
import { humanSize, printJson } from './output.js'
import { clearProgress, progressOption } from './progress.js'
import { UsageError, type Flags } from './usage.js'

const WHITEOUT_FORMS = ['overlay', 'aufs', 'apply'] as const

/** The API options the flags ask for, with a progress bar unless stderr is no terminal or --quiet. */
export function extractOptions(flags: Flags): LayerExtractOptions {
  const whiteouts = flags.whiteouts
  if (whiteouts !== undefined && !(WHITEOUT_FORMS as readonly string[]).includes(whiteouts)) {
    throw new UsageError(`--whiteouts must be one of ${WHITEOUT_FORMS.join(', ')}`)
  }
  return {
    reflinks: flags.reflinks,
    xattrs: flags.xattrs,
    ...(flags.owners === false && { owners: false }),
    ...(whiteouts !== undefined && { whiteouts: whiteouts as LayerExtractOptions['whiteouts'] }),
    ...progressOption(flags),
  }
}

/** Clears the progress bar and prints what was made. */
export function printExtracted(what: string, dir: string, stats: ExtractStats, seconds: number, { json }: Flags): void {
  clearProgress()
  if (json) return printJson({ dir, seconds, ...stats })
  const content = [
    stats.reflinkedFiles > 0 && `${stats.reflinkedFiles} reflinked`,
    stats.kernelCopiedFiles > 0 && `${stats.kernelCopiedFiles} copied in the kernel`,
    stats.userCopiedFiles > 0 && `${stats.userCopiedFiles} copied`,
  ].filter(Boolean)
  process.stdout.write(
    `Extracted ${what} into ${dir} in ${seconds.toFixed(2)} s: ${stats.files} files (${humanSize(stats.bytes)}` +
      `${content.length > 0 ? `; ${content.join(', ')}` : ''}), ${stats.dirs} dirs, ${stats.symlinks} symlinks, ` +
      `${stats.hardlinks} hardlinks, ${stats.specials} fifos/devices, ${stats.whiteouts} whiteouts` +
      `${stats.skipped > 0 ? `, ${stats.skipped} skipped (devices need root)` : ''}\n`,
  )
}

/** Runs an extraction, timing it, and prints the summary. */
export async function runExtraction(what: string, dir: string, flags: Flags, extract: (options: LayerExtractOptions) => Promise<ExtractStats>): Promise<void> {
  const started = process.hrtime.bigint()
  const stats = await extract(extractOptions(flags))
  printExtracted(what, dir, stats, Number(process.hrtime.bigint() - started) / 1e9, flags)
}
