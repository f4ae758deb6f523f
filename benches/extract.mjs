#!/usr/bin/env node
// Image extraction benchmark: the multi-GB image podman builds from this machine's /usr,
// extracted by cstor with reflinks (store and target on a loop-mounted XFS with reflink=1) and
// with copies, side by side with `cp -a --reflink=always` of the layer's diff/ on the same XFS,
// `podman image mount` + `cp -a` and GNU `tar -x` of the exported layer — in one run, median of N runs each, with peak RSS and ratios. Every run writes into a
// fresh directory after a `sync`; page caches stay warm for all cases alike.
//
//   node benches/extract.mjs [--source /usr] [--runs 3]
// Needs root (mount, podman image mount) and `npm run build` first. Writes bench-results/extract.md.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { benchStore, cli, measure, out, q, report, repo, shell } from './lib.mjs'

const { values } = parseArgs({ options: { source: { type: 'string', default: '/usr' }, runs: { type: 'string', default: '3' } } })
const runs = Number(values.runs)
const { root, runroot, image, env } = benchStore(values.source)
const { Storage } = await import(path.join(repo, 'dist', 'index.js'))

// The same store on XFS: a sparse image file, mounted while the benchmark runs.
const xfs = path.join(out, 'xfs')
const xfsImage = path.join(out, 'xfs.img')
if (!fs.existsSync(xfsImage)) {
  fs.writeFileSync(xfsImage, '')
  fs.truncateSync(xfsImage, 40 * 2 ** 30)
  execFileSync('mkfs.xfs', ['-q', '-m', 'reflink=1', xfsImage])
}
fs.mkdirSync(xfs, { recursive: true })
execFileSync('mount', ['-o', 'loop', xfsImage, xfs])
process.on('exit', () => execFileSync('umount', [xfs]))
const xfsRoot = path.join(xfs, 'root')
if (!fs.existsSync(xfsRoot)) {
  console.error('copying the store onto XFS…')
  execFileSync('cp', ['-a', root, xfsRoot])
}

const storage = await Storage.open({ root, runroot })
const layers = await (await storage.image(image)).layers()
const bytes = layers.reduce((sum, l) => sum + l.diffSize, 0)
const tarFile = path.join(out, 'layer.tar')
if (layers.length !== 1) throw new Error(`${image} should have one layer`)
if (!fs.existsSync(tarFile) || fs.statSync(tarFile).size !== bytes) await layers[0].exportToFile(tarFile)
storage.close()

const xfsDiff = path.join(xfsRoot, 'overlay', layers[0].id, 'diff')
const targets = { xfs: path.join(xfs, 'out'), ext4: path.join(out, 'out') }
const cstor = (storeRoot, target, flags = '') => `node ${q(cli)} --root ${q(storeRoot)} image extract ${image} ${q(target)} ${flags}`
const podman = `podman --root ${q(root)} --runroot ${q(runroot)}`
const cases = [
  ['cstor extract, reflinks (XFS)', () => shell(cstor(xfsRoot, targets.xfs), env)],
  ['cp -a --reflink=always of diff/ (XFS)', () => shell(`cp -a --reflink=always ${q(xfsDiff)} ${q(targets.xfs)}`, env)],
  ['cstor extract --no-reflinks (XFS, sendfile)', () => shell(cstor(xfsRoot, targets.xfs, '--no-reflinks'), env)],
  ['cstor extract --no-reflinks (ext4)', () => shell(cstor(root, targets.ext4, '--no-reflinks'), env)],
  ['cstor extract (ext4, copy_file_range)', () => shell(cstor(root, targets.ext4), env)],
  [
    'podman image mount + cp -a (ext4)',
    () => shell(`m=$(${podman} image mount ${image}) && cp -a "$m/." ${q(targets.ext4)} && ${podman} image unmount ${image} >/dev/null`, env),
  ],
  ['GNU tar -x of the exported tar (ext4)', () => shell(`tar -C ${q(targets.ext4)} -xpf ${q(tarFile)}`, env)],
]
const fresh = (name) => {
  for (const target of Object.values(targets)) fs.rmSync(target, { recursive: true, force: true })
  if (name.startsWith('podman') || name.startsWith('GNU')) fs.mkdirSync(targets.ext4)
  execFileSync('sync')
}
const results = await measure(cases, runs, fresh)
fresh('')
const gb = bytes / 1e9
report('extract.md', `Image: ${gb.toFixed(2)} GB from ${values.source}, ${runs} runs each (median), ${new Date().toISOString()}`, results, 'podman image mount + cp -a (ext4)', gb)
