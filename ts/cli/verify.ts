/** `cstor verify [--image REF] [--quick]`: a store (or one image) checked for damage; exit 1 on errors. */
import type { Finding, Storage } from '../index.js'
import { humanSize, printJson, printTable, shortId } from './output.js'
import { clearProgress, progressOption } from './progress.js'
import { UsageError, type Flags } from './usage.js'

/** Layer and image IDs shortened as elsewhere in the CLI; link names and paths kept whole. */
const subject = (s: string) => (/^[0-9a-f]{64}$/.test(s) ? shortId(s) : s)

export async function verifyCommand(storage: Storage, args: string[], flags: Flags): Promise<number> {
  if (args.length > 0) throw new UsageError('cstor verify takes no arguments (one image: --image REF)')
  const started = process.hrtime.bigint()
  const report = await storage.verify({
    ...(flags.image !== undefined && { image: flags.image }),
    quick: flags.quick,
    ...progressOption(flags),
  })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  clearProgress()
  if (flags.json) printJson(report)
  else {
    if (report.findings.length > 0) {
      printTable(
        ['SEVERITY', 'KIND', 'SUBJECT', 'MESSAGE'],
        report.findings.map((f: Finding) => [f.severity, f.kind, subject(f.subject), f.message]),
      )
    }
    const count = (severity: Finding['severity']) => report.findings.filter((f) => f.severity === severity).length
    const scope = flags.image === undefined ? `${report.images} images` : flags.image
    const content = flags.quick ? 'metadata only' : `${humanSize(report.bytes)} of tar`
    process.stdout.write(
      `Checked ${scope}, ${report.layers} layers (${content}) in ${seconds.toFixed(2)} s: ` +
        `${report.clean ? 'clean' : 'damaged'}, ${count('error')} errors, ${count('warning')} warnings, ${count('info')} notes\n`,
    )
  }
  return report.clean ? 0 : 1
}
