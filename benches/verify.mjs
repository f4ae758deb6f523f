#!/usr/bin/env node
// Store check benchmark: `cstor verify` vs `podman system check` (podman 5.8, from the Debian sid
// userland of scripts/podman5), full and quick, on one store podman 5.8 wrote holding a multi-GB
// layer of this machine's /usr — one run each, side by side, after an untimed warm-up so every
// case reads from the page cache. podman is timed inside its userland (bash `time`), so the
// namespace set-up of scripts/podman5 is not counted against it. CPU seconds (user + system) are
// printed beside the wall times: on a machine other work shares, they vary far less.
//
// What each case does: `cstor verify` rebuilds every layer's tar from tar-split + diff/ (CRC-64 of
// each body, sha256 of the tar) and compares every path of diff/ with its tar header;
// `--quick` does the latter only, reading no file content. `podman system check` rebuilds and
// digests every layer and then mounts each one and compares the tree with the headers;
// podman 5.8's `--quick` skips both the digests and the comparison (no per-file work).
//
//   node benches/verify.mjs [--source /usr] [--runs 1]
// Needs `npm run build` first and root. Writes bench-results/verify.md (git-ignored).
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { benchStore5, cli, measure, q, report, repo, shell } from './lib.mjs'

const { values } = parseArgs({ options: { source: { type: 'string', default: '/usr' }, runs: { type: 'string', default: '1' } } })
const runs = Number(values.runs)
const { root, runroot, image, podman, podman5 } = benchStore5(values.source)
const { Storage } = await import(path.join(repo, 'dist', 'index.js'))
const storage = await Storage.open({ root, runroot })
const layers = await storage.listLayers()
const bytes = layers.reduce((sum, l) => sum + (l.diffSize ?? 0), 0)
const big = layers.reduce((a, b) => ((a.diffSize ?? 0) > (b.diffSize ?? 0) ? a : b))
storage.close()
console.error(`${image}: ${layers.length} layers, the largest ${(big.diffSize / 1e9).toFixed(2)} GB`)

const cstor = (args) => shell(`node ${q(cli)} --root ${q(root)} --runroot ${q(runroot)} verify ${args} > /dev/null`)

/** `podman system check`, timed in its userland (wall and CPU seconds); a damage report still times the run. */
function podmanCheck(args) {
  const run = podman5(`TIMEFORMAT='%R %U %S'; time { ${podman} system check ${args} > /dev/null 2>&1; }`)
  const [seconds, user, system] = run.stderr.trim().split('\n').at(-1).split(' ').map(Number)
  if (run.status !== 0 || Number.isNaN(seconds)) throw new Error(`podman system check ${args}: ${run.stderr}`)
  return { seconds, cpu: user + system }
}

/** What each check says of the store (untimed), for the notes under the table. */
function verdicts() {
  const report = JSON.parse(execFileSync(process.execPath, [cli, '--root', root, '--runroot', runroot, 'verify', '--json'], { maxBuffer: 1 << 28 }).toString())
  const count = (severity) => report.findings.filter((f) => f.severity === severity).length
  const podmanOut = podman5(`${podman} system check 2>&1; echo "exit $?"`).stdout
  const modified = podmanOut.split('\n').filter((l) => l.endsWith('layer content modified')).length
  return [
    `- cstor verify: ${report.clean ? 'clean' : 'damaged'}, ${count('error')} errors, ${count('warning')} warnings, ${count('info')} notes`,
    `- podman system check: ${podmanOut.trim().split('\n').at(-1)}, ${modified} "layer content modified" lines`,
  ]
}

// Warm-up: every layer's tar-split and diff/ read once, untimed.
cstor('')
const cases = [
  ['cstor verify', () => cstor('')],
  ['podman system check', () => podmanCheck('')],
  ['cstor verify --quick', () => cstor('--quick')],
  ['podman system check --quick', () => podmanCheck('--quick')],
]
const results = await measure(cases, runs)
const of = (name) => results.find((r) => r.name === name)
const ratio = (a, b, goal) => {
  const wall = of(b).seconds / of(a).seconds
  const cpu = of(b).cpu / of(a).cpu
  return `- ${a} vs ${b}: ${wall.toFixed(2)}× faster (goal ≥ ${goal}×: ${wall >= goal ? 'met' : 'not met'}); ${cpu.toFixed(2)}× less CPU`
}
const gb = bytes / 1e9
report(
  'verify.md',
  `Store: ${layers.length} layers, ${gb.toFixed(2)} GB of layer tar (largest ${(big.diffSize / 1e9).toFixed(2)} GB, from ${values.source}), written by podman 5.8; ${runs} run(s) each, ${new Date().toISOString()}`,
  results,
  'podman system check',
  gb,
  [
    ratio('cstor verify', 'podman system check', 3),
    ratio('cstor verify --quick', 'podman system check --quick', 3),
    ratio('cstor verify --quick', 'cstor verify', 10),
    ...verdicts(),
  ],
)
