/** `cstor tar-diff A B`: exit codes as `diff` and `cmp` have them — 0 same, 1 different, 2 trouble. */
import { CstorError, tarDiff, type TarDifference } from '../index.js'
import { printJson } from './output.js'
import { UsageError, type Flags } from './usage.js'

export async function tarDiffCommand(args: string[], flags: Flags): Promise<number> {
  if (args.length !== 2) throw new UsageError('tar-diff takes two archives: cstor tar-diff A B')
  const [first, second] = args
  let result
  try {
    result = await tarDiff(first, second)
  } catch (err) {
    if (!(err instanceof CstorError)) throw err
    process.stderr.write(`cstor: ${err.message} (${err.code})\n`)
    return 2
  }
  if (flags.json) printJson(result)
  else {
    for (const d of result.differences) process.stdout.write(describe(d) + '\n')
    const summary = result.differences.length === 0 ? 'same entries' : `${result.differences.length} differences`
    process.stderr.write(`${first}: ${result.firstEntries} entries, ${second}: ${result.secondEntries} entries; ${summary}\n`)
  }
  return result.differences.length === 0 ? 0 : 1
}

/** `- name` only in A, `+ name` only in B, `~ name: field a → b` changed. */
function describe(d: TarDifference): string {
  switch (d.kind) {
    case 'missing':
      return `- ${d.name}`
    case 'extra':
      return `+ ${d.name}`
    case 'field':
      return `~ ${d.name}: ${d.field} ${d.first ?? '(none)'} → ${d.second ?? '(none)'}`
  }
}
