#!/usr/bin/env node
// composefs benchmark: the benchmark image (one layer podman imports from this machine's /usr/bin
// and /usr/lib/x86_64-linux-gnu, 1.45 GB) turned into a composefs image by cstor and by
// composefs-rs's cfsctl (composefs-ctl 0.9.4, __test__/fixtures/build-cfsctl.sh), one run each:
//   - `cstor image composefs IMAGE -o FILE`: the tree from the store, every file's fs-verity
//     digest (sha512), the EROFS image and its ID — objects are named, not stored;
//   - `cfsctl compute-id DIR` of the same image extracted (untimed) to a directory: the same
//     work from a plain tree, nothing stored;
//   - `cstor copy IMAGE composefs:REPO:bench` into an empty insecure repository on the store's
//     filesystem: objects reflinked or copied, the split streams, the image, the name;
//   - `cfsctl oci pull containers-storage:IMAGE --local-fetch auto` into the same kind of
//     repository: the same work by composefs-rs, the import the issue names as the reference.
// cfsctl reads only /var/lib/containers/storage, so it runs in a private mount namespace with the
// benchmark store there. The IDs are compared (untimed). Peak RSS by GNU time.
//
//   node benches/composefs.mjs [--source /usr/bin,/usr/lib/x86_64-linux-gnu] [--runs 1]
// Needs `npm run build` first and root. Writes bench-results/composefs.md (git-ignored).
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { benchStore, cli, measure, out, q, report, repo, shell } from './lib.mjs'

const { values } = parseArgs({ options: { source: { type: 'string', default: '/usr/bin,/usr/lib/x86_64-linux-gnu' }, runs: { type: 'string', default: '1' } } })
const runs = Number(values.runs)
const { root, runroot, image } = benchStore(values.source)
const cfsctl = execFileSync('bash', [path.join(repo, '__test__/fixtures/build-cfsctl.sh')], { encoding: 'utf8' }).trim()
const work = path.join(out, 'composefs')
fs.rmSync(work, { recursive: true, force: true })
fs.mkdirSync(path.join(work, 'containers', 'storage'), { recursive: true })
const repoDir = path.join(work, 'repo')
const rootfs = path.join(work, 'rootfs')
const cstorCli = `node ${q(cli)} --root ${q(root)} --runroot ${q(runroot)}`
execFileSync('sh', ['-c', `${cstorCli} image extract ${q(image)} ${q(rootfs)} --quiet`])
const { Storage } = await import(path.join(repo, 'dist', 'index.js'))
const storage = await Storage.open({ root, runroot })
const bytes = (await (await storage.image(image)).layers()).reduce((sum, l) => sum + (l.diffSize ?? 0), 0)
storage.close()

/** A command line (words, quoted) run with the benchmark store as the default store root. */
const inNamespace = (...words) =>
  `unshare -m --propagation private sh -c 'mount --bind "$0" /var/lib/containers && mount --bind "$1" /var/lib/containers/storage && shift && exec "$@"' ${[path.join(work, 'containers'), root, ...words].map(q).join(' ')}`
const freshRepo = () => {
  fs.rmSync(repoDir, { recursive: true, force: true })
  execFileSync(cfsctl, ['init', '--insecure', repoDir], { stdio: 'ignore' })
}

// cfsctl's import fails on an image whose tar names usr/bin but not usr (podman import of two
// directories makes one): the pull is then reported as failing, not timed.
let pullFailure
const pull = () => {
  try {
    return shell(`${inNamespace(cfsctl, '--repo', repoDir, 'oci', 'pull', `containers-storage:${image}`, 'bench', '--local-fetch', 'auto')} > /dev/null`)
  } catch (e) {
    pullFailure = String(e.message).match(/\d+: (Directory entry .*)/)?.[1] ?? 'failed'
    return { seconds: NaN, cpu: NaN, rss: NaN }
  }
}

const cases = [
  ['cstor image composefs', () => shell(`${cstorCli} image composefs ${q(image)} -o ${q(path.join(work, 'image.cfs'))} > ${q(path.join(work, 'cstor.id'))}`)],
  ['cfsctl compute-id DIR', () => shell(`${cfsctl} --repo ${q(repoDir)} compute-id ${q(rootfs)} > ${q(path.join(work, 'dir.id'))}`)],
  ['cstor copy composefs:REPO', () => shell(`${cstorCli} copy ${q(image)} ${q(`composefs:${repoDir}:bench`)} --quiet > /dev/null`)],
  ['cfsctl oci pull --local-fetch auto', pull],
]
// Warm-up: the store's files read once, untimed (the extraction above wrote the tree cfsctl
// reads, so it is in the page cache too).
cases[0][1]()
const results = await measure(cases, runs, freshRepo)
const pulled = spawnSync('sh', ['-c', inNamespace(cfsctl, '--repo', repoDir, 'oci', 'compute-id', 'bench')], { encoding: 'utf8' })
const ids = { cstor: fs.readFileSync(path.join(work, 'cstor.id'), 'utf8').trim(), dir: fs.readFileSync(path.join(work, 'dir.id'), 'utf8').trim() }
const pulledNote =
  pulled.status === 0 ? `cfsctl oci compute-id after the pull ${pulled.stdout.trim() === ids.cstor ? 'equal' : 'DIFFERENT'}` : `cfsctl oci pull failed: ${pullFailure}`
report('composefs.md', `composefs image of ${image} (${(bytes / 1e9).toFixed(2)} GB), median of ${runs}`, results.filter((r) => !Number.isNaN(r.seconds)), 'cstor image composefs', bytes / 1e9, [
  `- IDs: cstor ${ids.cstor.slice(0, 16)}…; cfsctl compute-id DIR ${ids.dir === ids.cstor ? 'equal' : 'DIFFERENT'}; ${pulledNote}`,
  '- cfsctl oci pull and cstor copy composefs: store every object, the streams and the image; cstor image composefs names them only.',
])
