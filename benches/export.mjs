#!/usr/bin/env node
// Layer export benchmark: one multi-GB layer made by podman from this machine's /usr, exported
// by cstor (CLI to a pipe and to a file, with and without CRC checks; the JS stream API) side by
// side with `tar-split asm`, `podman save`, GNU tar of the diff dir, `cat` of an equal tar and a
// pure-JS reassembler (node:zlib + fs streams) — all in one run, median of N runs each, with peak
// RSS and ratios. (node-tar 7.5 was tried as a second pure-JS baseline: packing /usr's diff it
// stalls for good after ~50 entries, at the first hardlinked file, so it is not in the table.)
//
//   node benches/export.mjs [--source /usr] [--runs 3]
// Needs `npm run build` first. Writes bench-results/export.md (git-ignored).
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import zlib from 'node:zlib'
import { parseArgs } from 'node:util'
import { benchStore, cli, inProcess, measure, out, q, report, repo, shell } from './lib.mjs'

const { values } = parseArgs({ options: { source: { type: 'string', default: '/usr' }, runs: { type: 'string', default: '3' } } })
const runs = Number(values.runs)
const { root, runroot, image, env } = benchStore(values.source)
const { Storage } = await import(path.join(repo, 'dist', 'index.js'))
const storage = await Storage.open({ root, runroot })
const layer = (await (await storage.image(image)).layers())[0]
const diff = path.join(root, 'overlay', layer.id, 'diff')
const split = path.join(root, 'overlay-layers', `${layer.id}.tar-split.gz`)
const tarCopy = path.join(out, 'layer.tar')
await layer.exportToFile(tarCopy)
console.error(`layer ${layer.id.slice(0, 12)}: ${(layer.diffSize / 1e9).toFixed(2)} GB`)

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

const cases = [
  ['cstor CLI → pipe (CRC verified)', () => shell(`node ${q(cli)} --root ${q(root)} layer export ${layer.id} | cat > /dev/null`, env)],
  ['cstor CLI → pipe (--no-verify, sendfile)', () => shell(`node ${q(cli)} --root ${q(root)} layer export --no-verify ${layer.id} | cat > /dev/null`, env)],
  ['cstor CLI → file (CRC verified)', () => shell(`node ${q(cli)} --root ${q(root)} layer export ${layer.id} -o ${q(out)}/cli.tar`, env)],
  ['cstor CLI → file (--no-verify, copy_file_range)', () => shell(`node ${q(cli)} --root ${q(root)} layer export --no-verify ${layer.id} -o ${q(out)}/cli.tar`, env)],
  ['cstor JS stream API (CRC verified)', () => inProcess(() => drain(layer.export()))],
  ['tar-split asm → pipe', () => shell(`tar-split asm --input ${q(split)} --path ${q(diff)} --output - | cat > /dev/null`, env)],
  ['GNU tar of diff/ → pipe', () => shell(`tar -C ${q(diff)} -cf - . | cat > /dev/null`, env)],
  ['cat of an equal tar → pipe', () => shell(`cat ${q(tarCopy)} | cat > /dev/null`, env)],
  ['podman save → file', () => shell(`podman --root ${q(root)} --runroot ${q(runroot)} save -q -o ${q(out)}/save.tar ${image} && rm -f ${q(out)}/save.tar`, env)],
  ['pure JS tar-split reassembly (node:zlib + fs streams)', () => inProcess(pureJs)],
]

const results = await measure(cases, runs)
const gb = layer.diffSize / 1e9
report('export.md', `Layer: ${gb.toFixed(2)} GB from ${values.source}, ${runs} runs each (median), ${new Date().toISOString()}`, results, 'tar-split asm → pipe', gb)
