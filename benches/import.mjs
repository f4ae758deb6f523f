#!/usr/bin/env node
// Write benchmark: a multi-GB layer tar (the one podman builds from this machine's /usr, exported
// by cstor) made into an image of a fresh store by `cstor import` and by `podman import`, beside
// GNU `tar -x` of the same tar into a directory (unpacking alone: no digests, no tar-split, no
// whiteout conversion) — in one run, median of N runs each, with peak RSS and ratios.
//
//   node benches/import.mjs [--source /usr] [--runs 1]
// Needs root and `npm run build` first. Writes bench-results/import.md.
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { benchStore, cli, measure, out, q, report, repo, shell } from './lib.mjs'

const { values } = parseArgs({ options: { source: { type: 'string', default: '/usr' }, runs: { type: 'string', default: '1' } } })
const { root, runroot, image, env } = benchStore(values.source)
const { Storage } = await import(path.join(repo, 'dist', 'index.js'))

const tar = path.join(out, 'import.tar')
if (!fs.existsSync(tar)) {
  const storage = await Storage.open({ root, runroot })
  const top = (await storage.image(image)).topLayer
  await (await storage.layer(top)).exportToFile(tar)
  storage.close()
}
const gb = fs.statSync(tar).size / 1e9
const scratch = path.join(out, 'import-scratch')
const fresh = () => {
  fs.rmSync(scratch, { recursive: true, force: true })
  fs.mkdirSync(path.join(scratch, 'root'), { recursive: true })
  shell('sync')
}
const storeArgs = `--root ${q(path.join(scratch, 'root'))} --runroot ${q(path.join(scratch, 'run'))}`

const results = await measure(
  [
    ['cstor import', () => shell(`node ${q(cli)} ${storeArgs} import ${q(tar)} localhost/bench:import`, env)],
    ['podman import', () => shell(`podman ${storeArgs} import --quiet ${q(tar)} localhost/bench:import`, env)],
    ['GNU tar -x (unpack only)', () => shell(`mkdir ${q(path.join(scratch, 'x'))} && tar -C ${q(path.join(scratch, 'x'))} -xf ${q(tar)}`)],
  ],
  Number(values.runs),
  fresh,
)
fs.rmSync(scratch, { recursive: true, force: true })
report('import.md', `Import of a ${gb.toFixed(2)} GB layer tar into a fresh store (median of ${values.runs})`, results, 'podman import', gb)
