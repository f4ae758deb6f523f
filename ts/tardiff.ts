import { call } from './errors.js'
import { native } from './native.js'

/** One way the second archive differs from the first. */
export type TarDifference =
  /** The name is in the first archive only. */
  | { kind: 'missing'; name: string }
  /** The name is in the second archive only. */
  | { kind: 'extra'; name: string }
  /**
   * A header field differs — `type`, `mode`, `uid`, `gid`, `uname`, `gname`, `mtime`, `size`,
   * `linkname`, `device`, `pax:<key>` (xattrs are `pax:SCHILY.xattr.<name>`) — or the `content`
   * digest; `null` where one side lacks the field.
   */
  | { kind: 'field'; name: string; field: string; first: string | null; second: string | null }

export interface TarDiff {
  firstEntries: number
  secondEntries: number
  /** Empty when the archives hold the same entries (order aside). */
  differences: TarDifference[]
}

/**
 * Compares two tar archives (plain or gzip) entry by entry: names match after dropping `./` and
 * trailing `/`, so only what an extraction would see differently is reported.
 */
export async function tarDiff(first: string, second: string): Promise<TarDiff> {
  const result = await call(() => native().tarDiff(first, second))
  return {
    firstEntries: result.firstEntries,
    secondEntries: result.secondEntries,
    differences: result.differences.map((d): TarDifference => {
      if (d.kind === 'field') return { kind: 'field', name: d.name, field: d.field!, first: d.first ?? null, second: d.second ?? null }
      return { kind: d.kind as 'missing' | 'extra', name: d.name }
    }),
  }
}
