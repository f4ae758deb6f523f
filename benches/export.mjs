#!/usr/bin/env node
// Layer export benchmark: one multi-GB layer made by podman from this machine's /usr, exported
// by cstor (CLI to a pipe and to a file, with and without CRC checks; the JS stream API) side by
// side with `tar-split asm`, `podman save`, GNU tar of the diff dir, `cat` of an equal tar, and a
// pure-JS reassembler — all in one run, median of N runs each, with peak RSS and ratios.
//
//   node benches/export.mjs [--source /usr] [--runs 3]
// Needs `npm run build` first. Writes bench-results/export.md (git-ignored).
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import zlib from 'node:zlib'
import { parseArgs } from 'node:util'

const { values } = parseArgs({ options: { source: { type: 'string', default: '/usr' }, runs: { type: 'string', default: '3' } } })
const runs = Number(values.runs)
const repo = path.resolve(import.meta.dirname, '..')
const out = path.join(repo, 'bench-results')
const root = path.join(out, 'store', 'root')
const runroot = path.join(out, 'store', 'run')
const image = `localhost/bench:${path.basename(values.source)}`
const cli = path.join(repo, 'dist', 'cli', 'main.js')
fs.mkdirSync(out, { recursive: true })
const env = { ...process.env, CONTAINERS_STORAGE_CONF: path.join(out, 'storage.conf') }
fs.writeFileSync(env.CONTAINERS_STORAGE_CONF, `[storage]\ndriver = "overlay"\ngraphroot = "${root}"\nrunroot = "${runroot}"\n`)
const podman = (...args) => execFileSync('podman', ['--root', root, '--runroot', runroot, ...args], { env, maxBuffer: 1 << 26 }).toString()

if (!podman('images', '--format', '{{.Repository}}:{{.Tag}}').split('\n').includes(image)) {
  console.error(`importing ${values.source} into ${image} with podman import…`)
  execFileSync('sh', ['-c', `tar -C / -c ${values.source.replace(/^\//, '')} | podman --root ${root} --runroot ${runroot} import --quiet - ${image}`], { env, stdio: 'inherit' })
}
const { Storage } = await import(path.join(repo, 'dist', 'index.js'))
const storage = await Storage.open({ root, runroot })
const layer = (await (await storage.image(image)).layers())[0]
const diff = path.join(root, 'overlay', layer.id, 'diff')
const split = path.join(root, 'overlay-layers', `${layer.id}.tar-split.gz`)
const tarCopy = path.join(out, 'layer.tar')
await layer.exportToFile(tarCopy)
console.error(`layer ${layer.id.slice(0, 12)}: ${(layer.diffSize / 1e9).toFixed(2)} GB`)

/** Runs a shell pipeline under GNU time; returns seconds and peak RSS (MB) of the measured command. */
function shell(script) {
  const t0 = process.hrtime.bigint()
  const r = spawnSync('/usr/bin/time', ['-f', '%M', 'sh', '-c', script], { env, encoding: 'utf8' })
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.status !== 0) throw new Error(`${script} failed: ${r.stderr}`)
  const rss = Number(r.stderr.trim().split('\n').at(-1)) / 1024
  return { seconds, rss }
}

async function inProcess(fn) {
  const t0 = process.hrtime.bigint()
  await fn()
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, rss: process.resourceUsage().maxRSS / 1024 }
}

async function drain(readable) {
  let bytes = 0
  for await (const chunk of readable) bytes += chunk.length
  return bytes
}

/** Pure JS: gunzip + JSON lines with node:zlib and readline, bodies with fs streams. */
async function pureJs() {
  const sink = fs.createWriteStream('/dev/null')
  const write = (buf) => (sink.write(buf) ? undefined : new Promise((r) => sink.once('drain', r)))
  const lines = readline.createInterface({ input: fs.createReadStream(split).pipe(zlib.createGunzip()), crlfDelay: Infinity })
  for await (const line of lines) {
    const entry = JSON.parse(line)
    if (entry.type === 2) await write(Buffer.from(entry.payload ?? '', 'base64'))
    else if (entry.size > 0) {
      const name = entry.name_raw ? Buffer.from(entry.name_raw, 'base64').toString('latin1') : entry.name
      for await (const chunk of fs.createReadStream(path.join(diff, name))) await write(chunk)
    }
  }
  await new Promise((r) => sink.end(r))
}

const q = (s) => `'${s}'`
const cases = [
  ['cstor CLI → pipe (CRC verified)', () => shell(`node ${q(cli)} --root ${q(root)} layer export ${layer.id} | cat > /dev/null`)],
  ['cstor CLI → pipe (--no-verify, sendfile)', () => shell(`node ${q(cli)} --root ${q(root)} layer export --no-verify ${layer.id} | cat > /dev/null`)],
  ['cstor CLI → file (CRC verified)', () => shell(`node ${q(cli)} --root ${q(root)} layer export ${layer.id} -o ${q(out)}/cli.tar`)],
  ['cstor CLI → file (--no-verify, copy_file_range)', () => shell(`node ${q(cli)} --root ${q(root)} layer export --no-verify ${layer.id} -o ${q(out)}/cli.tar`)],
  ['cstor JS stream API (CRC verified)', () => inProcess(() => drain(layer.export()))],
  ['tar-split asm → pipe', () => shell(`tar-split asm --input ${q(split)} --path ${q(diff)} --output - | cat > /dev/null`)],
  ['GNU tar of diff/ → pipe', () => shell(`tar -C ${q(diff)} -cf - . | cat > /dev/null`)],
  ['cat of an equal tar → pipe', () => shell(`cat ${q(tarCopy)} | cat > /dev/null`)],
  ['podman save → file', () => shell(`podman --root ${q(root)} --runroot ${q(runroot)} save -q -o ${q(out)}/save.tar ${image} && rm -f ${q(out)}/save.tar`)],
  ['pure JS (node:zlib + fs streams)', () => inProcess(pureJs)],
]

const results = []
for (const [name, run] of cases) {
  const samples = []
  for (let i = 0; i < runs; i++) samples.push(await run())
  samples.sort((a, b) => a.seconds - b.seconds)
  const median = samples[Math.floor(samples.length / 2)]
  results.push({ name, ...median, rss: Math.max(...samples.map((s) => s.rss)) })
  console.error(`${name}: ${median.seconds.toFixed(2)} s`)
}
const reference = results.find((r) => r.name === 'tar-split asm → pipe').seconds
const gb = layer.diffSize / 1e9
const table = [
  `Layer: ${gb.toFixed(2)} GB from ${values.source}, ${runs} runs each (median), ${new Date().toISOString()}`,
  '',
  '| case | seconds | GB/s | vs tar-split asm | peak RSS MB |',
  '| --- | ---: | ---: | ---: | ---: |',
  ...results.map((r) => `| ${r.name} | ${r.seconds.toFixed(2)} | ${(gb / r.seconds).toFixed(2)} | ${(reference / r.seconds).toFixed(2)}× | ${r.rss.toFixed(0)} |`),
].join('\n')
fs.writeFileSync(path.join(out, 'export.md'), table + '\n')
console.log(table)
