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
 * commas) the first time.
 */
export function benchStore(source) {
  const root = path.join(out, 'store', 'root')
  const runroot = path.join(out, 'store', 'run')
  const sources = source.split(',')
  const image = `localhost/bench:${sources.map((s) => path.basename(s)).join('-')}`
  fs.mkdirSync(out, { recursive: true })
  const env = { ...process.env, CONTAINERS_STORAGE_CONF: path.join(out, 'storage.conf') }
  fs.writeFileSync(env.CONTAINERS_STORAGE_CONF, `[storage]\ndriver = "overlay"\ngraphroot = "${root}"\nrunroot = "${runroot}"\n`)
  const podman = (...args) => execFileSync('podman', ['--root', root, '--runroot', runroot, ...args], { env, maxBuffer: 1 << 26 }).toString()
  if (!podman('images', '--format', '{{.Repository}}:{{.Tag}}').split('\n').includes(image)) {
    console.error(`importing ${source} into ${image} with podman import…`)
    const paths = sources.map((s) => q(s.replace(/^\//, ''))).join(' ')
    execFileSync('sh', ['-c', `tar -C / -c ${paths} | podman --root ${root} --runroot ${runroot} import --quiet - ${image}`], { env, stdio: 'inherit' })
  }
  return { root, runroot, image, env, podman }
}

/** Runs a shell pipeline under GNU time; returns seconds and peak RSS (MB) of the measured command. */
export function shell(script, env = process.env) {
  const t0 = process.hrtime.bigint()
  const r = spawnSync('/usr/bin/time', ['-f', '%M', 'sh', '-c', script], { env, encoding: 'utf8' })
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.status !== 0) throw new Error(`${script} failed: ${r.stderr}`)
  const rss = Number(r.stderr.trim().split('\n').at(-1)) / 1024
  return { seconds, rss }
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
  const results = []
  for (const [name, run] of cases) {
    const samples = []
    for (let i = 0; i < runs; i++) {
      await before(name)
      samples.push(await run())
    }
    samples.sort((a, b) => a.seconds - b.seconds)
    const median = samples[Math.floor(samples.length / 2)]
    results.push({ name, ...median, rss: Math.max(...samples.map((s) => s.rss)) })
    console.error(`${name}: ${median.seconds.toFixed(2)} s`)
  }
  return results
}

/** Writes bench-results/<file> — a table with GB/s and ratios against the `reference` case — and prints it. */
export function report(file, title, results, reference, gb) {
  const base = results.find((r) => r.name === reference).seconds
  const table = [
    title,
    '',
    `| case | seconds | GB/s | vs ${reference} | peak RSS MB |`,
    '| --- | ---: | ---: | ---: | ---: |',
    ...results.map((r) => `| ${r.name} | ${r.seconds.toFixed(2)} | ${(gb / r.seconds).toFixed(2)} | ${(base / r.seconds).toFixed(2)}× | ${r.rss.toFixed(0)} |`),
  ].join('\n')
  fs.writeFileSync(path.join(out, file), table + '\n')
  console.log(table)
}
