#!/usr/bin/env node
// composefs benchmark: the benchmark image with its parent directories (`localhost/bench-dirs:…`:
// one layer podman imports from this machine's /usr/bin and /usr/lib/x86_64-linux-gnu, 1.45 GB,
// with tar entries for `usr/` and `usr/lib/`, without which cfsctl refuses it) turned into a
// composefs image by cstor and by composefs-rs's cfsctl (composefs-ctl 0.9.4,
// __test__/fixtures/build-cfsctl.sh), round robin:
//   - `cstor image composefs IMAGE -o FILE`: the tree from the store, every file's fs-verity
//     digest (sha512), the EROFS image and its ID — objects are named, not stored;
//   - `cfsctl compute-id DIR` of the same image extracted (untimed) to a directory: the same
//     work from a plain tree, nothing stored;
//   - `cstor copy IMAGE composefs:REPO:bench` into an empty insecure repository on the store's
//     filesystem: objects reflinked or copied, the split streams, the image, the name;
//   - `cfsctl oci pull containers-storage:IMAGE bench --local-fetch auto` into the same kind of
//     repository: the same work by composefs-rs, the import the issue names as the reference.
// The two imports run on ext4 (this machine's disk: objects copied) and, with `--fs ext4,xfs`, on
// a loop-mounted XFS with reflink=1 holding a copy of the store (objects reflinked; filefrag
// checks an object's extents are shared, untimed). cfsctl reads only /var/lib/containers/storage,
// so it runs in a private mount namespace with the benchmark store there. The IDs are compared
// (untimed). Peak RSS by GNU time.
//
//   node benches/composefs.mjs [--source /usr/bin,/usr/lib/x86_64-linux-gnu] [--runs 1] [--fs ext4,xfs]
// Needs `npm run build` first and root. Writes bench-results/composefs-<fs>.md (git-ignored).
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { benchStore, cli, measure, out, q, report, repo, shell } from './lib.mjs'

const { values } = parseArgs({
  options: { source: { type: 'string', default: '/usr/bin,/usr/lib/x86_64-linux-gnu' }, runs: { type: 'string', default: '1' }, fs: { type: 'string', default: 'ext4,xfs' } },
})
const runs = Number(values.runs)
const store = benchStore(values.source, { dirs: true })
const { image } = store
const cfsctl = execFileSync('bash', [path.join(repo, '__test__/fixtures/build-cfsctl.sh')], { encoding: 'utf8' }).trim()
const { Storage } = await import(path.join(repo, 'dist', 'index.js'))
const storage = await Storage.open({ root: store.root, runroot: store.runroot })
const bytes = (await (await storage.image(image)).layers()).reduce((sum, l) => sum + (l.diffSize ?? 0), 0)
storage.close()

/** The cases on one filesystem: `root`/`runroot` the store there, `work` a directory beside it. */
async function on(name, { root, runroot, work }, withNaming) {
  fs.rmSync(work, { recursive: true, force: true })
  fs.mkdirSync(path.join(work, 'containers', 'storage'), { recursive: true })
  const repoDir = path.join(work, 'repo')
  const cstorCli = `node ${q(cli)} --root ${q(root)} --runroot ${q(runroot)}`
  /** A command line (words, quoted) run with the store as the default store root. */
  const inNamespace = (...words) =>
    `unshare -m --propagation private sh -c 'mount --bind "$0" /var/lib/containers && mount --bind "$1" /var/lib/containers/storage && shift && exec "$@"' ${[path.join(work, 'containers'), root, ...words].map(q).join(' ')}`
  const freshRepo = (dir = repoDir) => {
    fs.rmSync(dir, { recursive: true, force: true })
    execFileSync(cfsctl, ['init', '--insecure', dir], { stdio: 'ignore' })
  }
  const copy = (dir = repoDir) => shell(`${cstorCli} copy ${q(image)} ${q(`composefs:${dir}:bench`)} --quiet > /dev/null`)
  const pull = (dir = repoDir) => shell(`${inNamespace(cfsctl, '--repo', dir, 'oci', 'pull', `containers-storage:${image}`, 'bench', '--local-fetch', 'auto')} > /dev/null`)
  // Each run starts with nothing dirty (`sync`, untimed): both tools sync what they wrote
  // (cstor one syncfs before it names anything, cfsctl one syncfs at the end), and neither should
  // wait for the writeback of the store copy, the extraction or the other tool's run.
  const before = () => {
    freshRepo()
    execFileSync('sync')
  }
  const results = []
  if (withNaming) {
    // The naming cases first, and the extracted tree they need removed before the imports run:
    // with it still there, both imports ran 1.5–3.5× slower in earlier runs here, mostly in
    // system time (at a higher load too: the cause is not pinned down).
    const rootfs = path.join(work, 'rootfs')
    execFileSync('sh', ['-c', `${cstorCli} image extract ${q(image)} ${q(rootfs)} --quiet`])
    const naming = [
      ['cstor image composefs', () => shell(`${cstorCli} image composefs ${q(image)} -o ${q(path.join(work, 'image.cfs'))} > ${q(path.join(work, 'cstor.id'))}`)],
      ['cfsctl compute-id DIR', () => shell(`${cfsctl} --repo ${q(repoDir)} compute-id ${q(rootfs)} > ${q(path.join(work, 'dir.id'))}`)],
    ]
    results.push(...(await measure(naming, runs, before)))
    fs.rmSync(rootfs, { recursive: true, force: true })
  }
  // Warm-up: the store's files read once, untimed.
  execFileSync('sh', ['-c', `${cstorCli} image composefs ${q(image)} -o ${q(path.join(work, 'warm.cfs'))} > ${q(path.join(work, 'warm.id'))}`])
  const id = fs.readFileSync(path.join(work, 'warm.id'), 'utf8').trim()
  const cases = [
    [`cstor copy composefs:REPO (${name})`, () => copy()],
    [`cfsctl oci pull --local-fetch auto (${name})`, () => pull()],
  ]
  results.unshift(...(await measure(cases, runs, before)))
  // Untimed: each import once more into a repository of its own, read back by cfsctl.
  const notes = []
  for (const [who, run] of [
    ['cstor copy', copy],
    ['cfsctl oci pull', pull],
  ]) {
    const dir = path.join(work, `check-${who.split(' ')[0]}`)
    freshRepo(dir)
    run(dir)
    const computed = spawnSync('sh', ['-c', inNamespace(cfsctl, '--repo', dir, 'oci', 'compute-id', 'bench')], { encoding: 'utf8' }).stdout.trim()
    const objects = path.join(dir, 'objects')
    const largest = fs
      .readdirSync(objects, { recursive: true })
      .map((o) => path.join(objects, o))
      .filter((o) => fs.statSync(o).isFile())
      .reduce((a, b) => (fs.statSync(a).size >= fs.statSync(b).size ? a : b))
    const shared = /shared/.test(execFileSync('filefrag', ['-v', largest], { encoding: 'utf8' }))
    const used = execFileSync('du', ['-sm', dir], { encoding: 'utf8' }).split('\t')[0]
    notes.push(`- ${who}: compute-id ${computed === id ? 'equal to cstor image composefs' : `DIFFERENT (${computed})`}; largest object's extents ${shared ? 'shared with the store (reflinked)' : 'not shared (copied)'}; repository ${used} MB on disk`)
    fs.rmSync(dir, { recursive: true, force: true })
  }
  if (withNaming) {
    const dirId = fs.readFileSync(path.join(work, 'dir.id'), 'utf8').trim()
    notes.push(`- IDs: cstor ${id.slice(0, 16)}…; cfsctl compute-id DIR ${dirId === id ? 'equal' : 'DIFFERENT'}`)
    notes.push('- cfsctl oci pull and cstor copy composefs: store every object, the streams and the image; cstor image composefs names them only.')
  }
  const file = `composefs-${name}.md`
  report(file, `composefs: ${image} (${(bytes / 1e9).toFixed(2)} GB) on ${name}, median of ${runs}`, results, `cfsctl oci pull --local-fetch auto (${name})`, bytes / 1e9, notes)
  fs.rmSync(work, { recursive: true, force: true })
}

for (const name of values.fs.split(',')) {
  if (name === 'ext4') {
    await on('ext4', { root: store.root, runroot: store.runroot, work: path.join(out, 'composefs') }, true)
  } else if (name === 'xfs') {
    // A sparse XFS image with reflink=1, loop-mounted; the store copied onto it (cp -a).
    const img = path.join(out, 'xfs.img')
    const mnt = path.join(out, 'xfs')
    fs.mkdirSync(mnt, { recursive: true })
    fs.writeFileSync(img, '')
    fs.truncateSync(img, 12 * 2 ** 30)
    execFileSync('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', img])
    execFileSync('mount', ['-o', 'loop', img, mnt])
    try {
      console.error('copying the store onto XFS…')
      execFileSync('cp', ['-a', store.root, path.join(mnt, 'root')])
      fs.mkdirSync(path.join(mnt, 'run'))
      await on('xfs', { root: path.join(mnt, 'root'), runroot: path.join(mnt, 'run'), work: path.join(mnt, 'composefs') }, false)
    } finally {
      spawnSync('umount', [path.join(mnt, 'root', 'overlay')], { stdio: 'ignore' })
      execFileSync('umount', [mnt])
      fs.rmSync(img, { force: true })
      fs.rmdirSync(mnt)
    }
  } else {
    throw new Error(`--fs: ext4 or xfs, not ${name}`)
  }
}
