#!/usr/bin/env node
// Rootless vs root on the same image: the benchmark image (one layer podman imports from this
// machine's /usr/bin and /usr/lib/x86_64-linux-gnu, ~1.45 GB) in root's benchmark store, and the
// same image pulled by rootless podman into an unprivileged user's store. The same `cstor`
// commands, whole processes, as root on root's store and as the user on the user's — where every
// operation runs in the user-namespace helper (`podman unshare`) that `Storage.open` starts:
//   layer export (to a pipe), image extract (tmpfs), copy to an OCI layout (tmpfs, uncompressed);
// and, in one process, 50 layer exports after an image list, counting the `podman unshare`
// starts through a logging `podman` on PATH (the helper is started once per opened store).
//
//   node benches/rootless.mjs [--source /usr/bin,/usr/lib/x86_64-linux-gnu] [--runs 3]
// Needs root (it creates the user `cstor-bench`) and `npm run build` first. Writes
// bench-results/rootless.md (git-ignored).
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { benchStore, cli, measure, out, q, shell } from './lib.mjs'

const { values } = parseArgs({
  options: { source: { type: 'string', default: '/usr/bin,/usr/lib/x86_64-linux-gnu' }, runs: { type: 'string', default: '3' } },
})
const runs = Number(values.runs)
const user = 'cstor-bench'
const home = `/home/${user}`
const { root, runroot, image, podman } = benchStore(values.source)
const [inspected] = JSON.parse(podman('image', 'inspect', image))
const gb = inspected.Size / 1e9

// The user, with a subordinate ID range, and the same image in its rootless store.
const as = (who, script) => execFileSync('su', ['-', who, '-c', script], { encoding: 'utf8', maxBuffer: 1 << 26 })
if (spawnOk('id', user) === false) execFileSync('useradd', ['--create-home', user])
if (!fs.readFileSync('/etc/subuid', 'utf8').includes(`${user}:`)) {
  execFileSync('usermod', ['--add-subuids', '500000-565535', '--add-subgids', '500000-565535', user])
}
// Overlay before podman first touches the store: left to choose, rootless podman 4.3 may make it vfs.
as(user, `mkdir -p ~/.config/containers && printf '[storage]\\ndriver = "overlay"\\n' > ~/.config/containers/storage.conf`)
const layout = path.join(out, 'rootless-layout')
if (!as(user, `podman images --format '{{.Repository}}:{{.Tag}}'`).split('\n').includes(image)) {
  console.error(`copying ${image} to the user's rootless store…`)
  fs.rmSync(layout, { recursive: true, force: true })
  execFileSync('node', [cli, '--root', root, '--runroot', runroot, 'copy', '--quiet', '--compress', 'none', image, `oci:${layout}:bench`], { stdio: 'inherit' })
  execFileSync('chmod', ['-R', 'a+rX', out])
  as(user, `podman pull -q oci:${layout}:bench >/dev/null && podman tag $(podman images -q | head -1) ${image}`)
  fs.rmSync(layout, { recursive: true, force: true })
}

/** The image's top layer ID in a store, as cstor reports it. */
const topLayer = (who, cstor) => JSON.parse(as(who, `${cstor} --json image inspect ${image}`)).layers[0].id

function spawnOk(...args) {
  try {
    execFileSync(args[0], args.slice(1), { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

const scratch = '/dev/shm/cstor-rootless-bench'
const cstorAs = {
  root: `node ${q(cli)} --root ${q(root)} --runroot ${q(runroot)}`,
  rootless: `node ${q(cli)}`,
}
/** Times `script` run by `who` (`su -` both, so each pays the same login). */
const timed = (who, script) => () => shell(`su - ${who === 'root' ? 'root' : user} -c ${q(script)}`)
const clean = () => {
  execFileSync('sh', ['-c', `su - ${user} -c 'podman unshare rm -rf ${scratch}' 2>/dev/null; rm -rf ${scratch}; mkdir -p ${scratch}; chmod 1777 ${scratch}`])
}

const layers = { root: topLayer('root', cstorAs.root), rootless: topLayer(user, cstorAs.rootless) }

// One process, an image list and 50 exports: the per-call cost once the helper runs.
const fifty = (who, storage) =>
  `const layer = '${layers[who]}'; const { Storage } = require(${JSON.stringify(path.join(path.dirname(cli), '..', 'index.js'))}); (async () => { const s = await ${storage}; await s.listImages(); const l = await s.layer(layer); const fd = require('node:fs').openSync('/dev/null', 'w'); for (let i = 0; i < 50; i++) await l.exportToFd(fd); await s.close() })()`
const fiftyScripts = { root: path.join(out, 'rootless-fifty-root.cjs'), rootless: path.join(out, 'rootless-fifty.cjs') }
fs.writeFileSync(fiftyScripts.root, fifty('root', `Storage.open({ root: ${JSON.stringify(root)}, runroot: ${JSON.stringify(runroot)} })`), { mode: 0o644 })
fs.writeFileSync(fiftyScripts.rootless, fifty('rootless', 'Storage.discover()'), { mode: 0o644 })

const cases = []
for (const who of ['root', 'rootless']) {
  const cstor = cstorAs[who]
  const layer = layers[who]
  cases.push([`layer export, ${who}`, timed(who, `${cstor} layer export ${layer} | cat > /dev/null`)])
  cases.push([`image extract, ${who}`, timed(who, `${cstor} image extract --quiet ${image} ${scratch}/x`)])
  cases.push([`copy to oci:, ${who}`, timed(who, `${cstor} copy --quiet --compress none ${image} oci:${scratch}/oci:bench`)])
  cases.push([`50 exports in one process, ${who}`, timed(who, `node ${fiftyScripts[who]}`)])
}
clean()
const results = await measure(cases, runs, clean)
clean()

// How many helpers does that process start? Counted by a logging `podman` first on PATH.
const shim = `${home}/podman-shim`
as(user, `mkdir -p ${shim} && printf '#!/bin/sh\\necho "$*" >> ${shim}/log\\nexec /usr/bin/podman "$@"\\n' > ${shim}/podman && chmod +x ${shim}/podman && rm -f ${shim}/log`)
as(user, `PATH=${shim}:$PATH node ${fiftyScripts.rootless}`)
const starts = as(user, `grep -c '^unshare' ${shim}/log || true`).trim()

const rows = results
const pairs = rows.filter((r) => r.name.endsWith('rootless')).map((r) => {
  const base = rows.find((b) => b.name === r.name.replace(/rootless$/, 'root'))
  return `| ${r.name.replace(/, rootless$/, '')} | ${base.seconds.toFixed(2)} | ${r.seconds.toFixed(2)} | ${((r.seconds / base.seconds - 1) * 100).toFixed(1)} % | ${base.rss.toFixed(0)} / ${r.rss.toFixed(0)} |`
})
const table = [
  `Rootless vs root, ${image} (${gb.toFixed(2)} GB, one layer), median of ${runs}; whole \`cstor\` processes through \`su -\`:`,
  '',
  '| work | root s | rootless s | rootless slower by | peak RSS MB (root / rootless cstor process) |',
  '| --- | ---: | ---: | ---: | ---: |',
  ...pairs,
  '',
  `\`podman unshare\` starts for one rootless process listing images and exporting the layer 50 times: ${starts}.`,
].join('\n')
fs.writeFileSync(path.join(out, 'rootless.md'), table + '\n')
console.log(table)
