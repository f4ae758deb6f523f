// What the benchmarks share: the multi-GB store podman builds from this machine's /usr, timing
// of shell pipelines and in-process work (with peak RSS), medians and the results table.
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

export const repo = path.resolve(import.meta.dirname, '..')
export const out = path.join(repo, 'bench-results')
export const cli = path.join(repo, 'dist', 'cli', 'main.js')

/**
 * The benchmark store (bench-results/store) holding `localhost/bench:<basenames of source>`, a
 * one-layer image podman imports from a tar of `source` (one directory, or several joined by
 * commas) the first time. With `dirs`, `localhost/bench-dirs:<basenames>` instead: the same files
 * with a tar entry for every parent directory too (`usr/`, `usr/lib/`), which composefs-rs needs
 * (`cfsctl oci pull` refuses an image whose tar names `usr/bin` but not `usr`).
 */
export function benchStore(source, { dirs = false } = {}) {
  const root = path.join(out, 'store', 'root')
  const runroot = path.join(out, 'store', 'run')
  const sources = source.split(',')
  const image = `localhost/${dirs ? 'bench-dirs' : 'bench'}:${sources.map((s) => path.basename(s)).join('-')}`
  fs.mkdirSync(out, { recursive: true })
  const env = { ...process.env, CONTAINERS_STORAGE_CONF: path.join(out, 'storage.conf') }
  fs.writeFileSync(env.CONTAINERS_STORAGE_CONF, `[storage]\ndriver = "overlay"\ngraphroot = "${root}"\nrunroot = "${runroot}"\n`)
  const podman = (...args) => execFileSync('podman', ['--root', root, '--runroot', runroot, ...args], { env, maxBuffer: 1 << 26 }).toString()
  if (!podman('images', '--format', '{{.Repository}}:{{.Tag}}').split('\n').includes(image)) {
    console.error(`importing ${source} into ${image} with podman import…`)
    const relative = sources.map((s) => s.replace(/^\//, ''))
    const parents = [...new Set(relative.flatMap((s) => s.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))))].sort()
    const names = `${dirs && parents.length > 0 ? `--no-recursion ${parents.map(q).join(' ')} --recursion ` : ''}${relative.map(q).join(' ')}`
    execFileSync('sh', ['-c', `tar -C / -c ${names} | podman --root ${root} --runroot ${runroot} import --quiet - ${image}`], { env, stdio: 'inherit' })
  }
  return { root, runroot, image, env, podman }
}

/**
 * The benchmark store podman 5.8 wrote (bench-results/store5, through scripts/podman5) holding
 * `localhost/bench:<basename of source>`, imported by podman 5 the first time. `podman5(script)`
 * runs a bash script in its userland with the store bound in (`spawnSync`'s result).
 */
export function benchStore5(source) {
  const dir = path.join(out, 'store5')
  const root = path.join(dir, 'root')
  const runroot = path.join(dir, 'run')
  const image = `localhost/bench:${path.basename(source)}`
  fs.mkdirSync(runroot, { recursive: true })
  const podman = `podman --root ${q(root)} --runroot ${q(runroot)} --storage-driver overlay`
  const podman5 = (script) => spawnSync(path.join(repo, 'scripts', 'podman5'), ['--bind', dir, 'bash', '-c', script], { encoding: 'utf8', maxBuffer: 1 << 26 })
  if (!podman5(`${podman} images --format '{{.Repository}}:{{.Tag}}'`).stdout.split('\n').includes(image)) {
    console.error(`importing ${source} into ${image} with podman 5 import…`)
    execFileSync('sh', ['-c', `tar -C / -c ${source.replace(/^\//, '')} | ${q(path.join(repo, 'scripts', 'podman5'))} --bind ${q(dir)} ${podman} import --quiet - ${image}`], {
      stdio: ['ignore', 'ignore', 'inherit'],
    })
  }
  return { root, runroot, image, podman, podman5 }
}

/**
 * Runs a shell pipeline under GNU time; returns seconds, CPU seconds (user + system) and peak RSS
 * (MB) of the measured command.
 */
export function shell(script, env = process.env) {
  const t0 = process.hrtime.bigint()
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S %M', 'sh', '-c', script], { env, encoding: 'utf8' })
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.status !== 0) throw new Error(`${script} failed: ${r.stderr}`)
  const [user, system, rss] = r.stderr.trim().split('\n').at(-1).split(' ').map(Number)
  return { seconds, cpu: user + system, rss: rss / 1024 }
}

/** Times an async function in this process; RSS is this process's peak so far. */
export async function inProcess(fn) {
  const t0 = process.hrtime.bigint()
  await fn()
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, rss: process.resourceUsage().maxRSS / 1024 }
}

/** Single-quotes a path for `sh -c`. */
export const q = (s) => `'${s}'`

/**
 * Runs each case `runs` times (calling `before` untimed ahead of every run) and returns the
 * median time of each, with the highest peak RSS seen.
 */
export async function measure(cases, runs, before = () => {}) {
  // Round robin, not case after case: a machine whose load drifts during the run then weighs on
  // every case alike, which keeps the ratios between them honest.
  const samples = cases.map(() => [])
  for (let i = 0; i < runs; i++) {
    for (const [c, [name, run]] of cases.entries()) {
      await before(name)
      samples[c].push(await run())
    }
  }
  return cases.map(([name], c) => {
    const sorted = samples[c].sort((a, b) => a.seconds - b.seconds)
    const median = sorted[Math.floor(sorted.length / 2)]
    const rss = sorted.some((s) => s.rss === undefined) ? undefined : Math.max(...sorted.map((s) => s.rss))
    console.error(`${name}: ${median.seconds.toFixed(2)} s`)
    return { name, ...median, rss }
  })
}

/**
 * Writes bench-results/<file> — a table with GB/s and ratios against the `reference` case, and
 * any `notes` lines after it — and prints it. A result without `rss` shows none.
 */
export function report(file, title, results, reference, gb, notes = []) {
  const base = results.find((r) => r.name === reference).seconds
  const cpu = results.some((r) => r.cpu !== undefined)
  const optional = (value, digits) => (value === undefined ? '—' : value.toFixed(digits))
  const table = [
    title,
    '',
    `| case | seconds |${cpu ? ' CPU seconds |' : ''} GB/s | vs ${reference} | peak RSS MB |`,
    `| --- | ---: |${cpu ? ' ---: |' : ''} ---: | ---: | ---: |`,
    ...results.map(
      (r) =>
        `| ${r.name} | ${r.seconds.toFixed(2)} |${cpu ? ` ${optional(r.cpu, 2)} |` : ''} ${(gb / r.seconds).toFixed(2)} | ${(base / r.seconds).toFixed(2)}× | ${optional(r.rss, 0)} |`,
    ),
    ...(notes.length > 0 ? ['', ...notes] : []),
  ].join('\n')
  fs.writeFileSync(path.join(out, file), table + '\n')
  console.log(table)
}
