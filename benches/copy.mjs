#!/usr/bin/env node
// Copy benchmark: the benchmark image (a one-layer image podman imports from this machine's
// /usr/bin and /usr/lib/x86_64-linux-gnu, 1.45 GB) copied out of the store by `cstor copy` side by
// side with skopeo and podman, in one run:
//   → docker:// (a local docker-registry): gzip and zstd — cstor, `skopeo copy
//     containers-storage: docker://`, `podman push`;
//   → docker-archive: — cstor, `podman save`;
//   → oci: gzip — cstor, `skopeo copy`.
// Every push goes to a registry started empty for it on a new port, so no tool finds a blob
// there or a mount candidate in its blob-info cache. The registry's storage and the archives and
// layouts written are on tmpfs (/dev/shm): on this machine's shared virtual disk the registry's
// writes alone made a push take three times as long as the same copy into a directory, whatever
// the tool. Peak RSS by GNU time; the layer blob sizes are compared too.
//
//   node benches/copy.mjs [--source /usr/bin,/usr/lib/x86_64-linux-gnu] [--runs 3]
// Needs `npm run build` first. Writes bench-results/copy.md (git-ignored).
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { benchStore, cli, out, q, shell } from './lib.mjs'

const { values } = parseArgs({
  options: { source: { type: 'string', default: '/usr/bin,/usr/lib/x86_64-linux-gnu' }, runs: { type: 'string', default: '3' } },
})
const runs = Number(values.runs)
const { root, runroot, image, env, podman } = benchStore(values.source)
const [inspected] = JSON.parse(podman('image', 'inspect', image))
const gb = inspected.Size / 1e9
const storeRef = `containers-storage:[overlay@${root}+${runroot}]${image}`
const cstor = `node ${q(cli)} --root ${q(root)} --runroot ${q(runroot)} copy --quiet`
const pod = `podman --root ${q(root)} --runroot ${q(runroot)}`
const scratch = fs.existsSync('/dev/shm') ? '/dev/shm/cstor-copy-bench' : path.join(out, 'copy-scratch')
const cache = path.join(scratch, 'cache')

async function freePort() {
  const server = net.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** An empty docker-registry on a new port; resolves with its host once it answers. */
async function startRegistry() {
  const dir = path.join(scratch, 'registry')
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  const port = await freePort()
  fs.writeFileSync(path.join(dir, 'config.yml'), `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`)
  const child = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: 'ignore' })
  for (let i = 0; ; i++) {
    const up = await fetch(`http://127.0.0.1:${port}/v2/`).then(() => true, () => false)
    if (up) break
    if (i > 200) throw new Error('docker-registry did not start')
    await new Promise((r) => setTimeout(r, 50))
  }
  return { host: `127.0.0.1:${port}`, dir: path.join(dir, 'data'), stop: () => child.kill() }
}

/** The size of the largest blob a registry or layout holds: the layer. */
function largestBlob(dir) {
  let largest = 0
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) largest = Math.max(largest, fs.statSync(path.join(entry.parentPath, entry.name)).size)
  }
  return largest
}

/** Times `script` (a shell pipeline) against a fresh registry; returns the time, RSS and layer blob size. */
async function push(script) {
  const registry = await startRegistry()
  fs.rmSync(cache, { recursive: true, force: true })
  try {
    const measured = shell(script(registry.host), { ...env, XDG_CACHE_HOME: cache })
    return { ...measured, blob: largestBlob(registry.dir) }
  } finally {
    registry.stop()
  }
}

/** Times `script` writing into `target` (removed first); returns the time, RSS and output size. */
function write(target, script) {
  fs.rmSync(target, { recursive: true, force: true })
  const measured = shell(script, { ...env, XDG_CACHE_HOME: cache })
  const size = fs.statSync(target).isDirectory() ? largestBlob(target) : fs.statSync(target).size
  fs.rmSync(target, { recursive: true, force: true })
  return { ...measured, blob: size }
}

const archive = path.join(scratch, 'image.tar')
const layout = path.join(scratch, 'layout')
const groups = [
  ['→ docker:// gzip', [
    ['cstor copy', () => push((host) => `${cstor} ${image} docker://${host}/bench:1 --tls-verify=false`)],
    ['skopeo copy', () => push((host) => `skopeo copy --quiet --dest-tls-verify=false ${q(storeRef)} docker://${host}/bench:1`)],
    ['podman push', () => push((host) => `${pod} push --quiet --tls-verify=false ${image} ${host}/bench:1`)],
  ]],
  ['→ docker:// zstd', [
    ['cstor copy', () => push((host) => `${cstor} ${image} docker://${host}/bench:1 --tls-verify=false --compress zstd`)],
    ['skopeo copy', () => push((host) => `skopeo copy --quiet --dest-tls-verify=false --dest-compress-format zstd ${q(storeRef)} docker://${host}/bench:1`)],
    ['podman push', () => push((host) => `${pod} push --quiet --tls-verify=false --compression-format zstd ${image} ${host}/bench:1`)],
  ]],
  ['→ docker-archive:', [
    ['cstor copy', () => write(archive, `${cstor} ${image} docker-archive:${q(archive)}:${image}`)],
    ['podman save', () => write(archive, `${pod} save --quiet --format docker-archive -o ${q(archive)} ${image}`)],
  ]],
  ['→ oci: gzip', [
    ['cstor copy', () => write(layout, `${cstor} ${image} oci:${q(layout)}:bench --compress gzip`)],
    ['skopeo copy', () => write(layout, `skopeo copy --quiet --dest-compress-format gzip ${q(storeRef)} oci:${q(layout)}:bench`)],
  ]],
]

fs.mkdirSync(scratch, { recursive: true })
// Runs go round the cases, so that a change in the machine's load falls on every tool alike.
const samples = new Map()
for (let i = 0; i < runs; i++) {
  for (const [group, cases] of groups) {
    for (const [tool, run] of cases) {
      const sample = await run()
      const key = `${group}|${tool}`
      samples.set(key, [...(samples.get(key) ?? []), sample])
      console.error(`${group} ${tool}: ${sample.seconds.toFixed(2)} s`)
    }
  }
}
const rows = []
for (const [group, cases] of groups) {
  const results = cases.map(([tool]) => {
    const runsOf = samples.get(`${group}|${tool}`).sort((a, b) => a.seconds - b.seconds)
    return { tool, ...runsOf[Math.floor(runsOf.length / 2)], rss: Math.max(...runsOf.map((s) => s.rss)) }
  })
  for (const r of results) rows.push({ group, ...r, speedup: r.seconds / results[0].seconds })
}
fs.rmSync(scratch, { recursive: true, force: true })

const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
const table = [
  `Copy of ${image} (${gb.toFixed(2)} GB, one layer), ${runs} run(s) each, median; load average at the end ${load}`,
  '',
  '| destination | tool | seconds | GB/s | cstor faster by | layer blob MB | peak RSS MB |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.group} | ${r.tool} | ${r.seconds.toFixed(2)} | ${(gb / r.seconds).toFixed(2)} | ${r.tool === 'cstor copy' ? '—' : `${r.speedup.toFixed(2)}×`} | ${(r.blob / 1e6).toFixed(1)} | ${r.rss.toFixed(0)} |`),
].join('\n')
fs.writeFileSync(path.join(out, 'copy.md'), table + '\n')
console.log(table)
