/** How the CLI prints: aligned tables like podman's for people, JSON with `--json` for programs. */

export function printJson(value: unknown, { pretty = true } = {}): void {
  process.stdout.write(JSON.stringify(value, null, pretty ? 2 : undefined) + '\n')
}

/** Prints rows under upper-case headers, columns separated by at least two spaces. */
export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd()
  process.stdout.write([line(headers), ...rows.map(line)].join('\n') + '\n')
}

/** Sizes in decimal units with three significant digits, as podman prints them ("2.03 MB"). */
export function humanSize(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '-'
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB']
  let value = bytes
  let unit = 0
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000
    unit++
  }
  return `${Number(value.toPrecision(3))} ${units[unit]}`
}

/** "5 minutes ago", as podman's CREATED column. */
export function humanAge(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-'
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  const steps: [number, string][] = [
    [60, 'second'],
    [60, 'minute'],
    [24, 'hour'],
    [30, 'day'],
    [12, 'month'],
    [Infinity, 'year'],
  ]
  let value = seconds
  for (const [size, name] of steps) {
    if (value < size) return `${value} ${name}${value === 1 ? '' : 's'} ago`
    value = Math.floor(value / size)
  }
  return iso
}

export function shortId(id: string | null | undefined): string {
  return id ? id.slice(0, 12) : '-'
}
