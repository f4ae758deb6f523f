#!/usr/bin/env node
// Registry benchmark: skopeo pulls the multi-GB benchmark image (podman's import of this machine's
// /usr) into a fresh store from `cstor serve --registry` (CRC checks on, and off), and from
// Distribution's `docker-registry` holding the same image uncompressed (its blobs uploaded through
// its own API, byte for byte what cstor serves); beside `podman save | podman load` through a pipe,
// and `cstor pull` from `cstor serve --registry` (cstor at both ends).
// Also the server alone: `curl` of the layer blob to /dev/null from each registry. Each case
// starts with its files in the page cache. One run by default (--runs N for the median of N),
// with peak RSS and ratios.
//
//   node benches/registry.mjs [--source /usr] [--runs 1]
// Needs root and `npm run build` first. Writes bench-results/registry.md.
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { benchStore, cli, measure, out, q, report, shell } from './lib.mjs'

const { values } = parseArgs({ options: { source: { type: 'string', default: '/usr' }, runs: { type: 'string', default: '1' } } })
const { root, runroot, image, env } = benchStore(values.source)
const repository = image.slice(0, image.lastIndexOf(':'))
const tag = image.slice(image.lastIndexOf(':') + 1)
const scratch = path.join(out, 'registry-scratch')
fs.rmSync(scratch, { recursive: true, force: true })
fs.mkdirSync(scratch, { recursive: true })
const children = []
process.on('exit', () => children.forEach((c) => c.kill()))

const freePort = () =>
  new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

async function waitFor(url) {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(url)).ok) return
    } catch {}
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${url} did not come up`)
}

/** `cstor serve --registry` on a free loopback port. */
async function cstorRegistry(...flags) {
  const address = `127.0.0.1:${await freePort()}`
  const child = spawn(process.execPath, [cli, '--root', root, '--runroot', runroot, 'serve', '--registry', address, '--quiet', ...flags], { env, stdio: 'ignore' })
  children.push(child)
  await waitFor(`http://${address}/v2/`)
  return address
}

/** Distribution's registry, filesystem storage in the scratch directory. */
async function distribution() {
  const address = `127.0.0.1:${await freePort()}`
  const config = path.join(scratch, 'registry.yml')
  fs.writeFileSync(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${scratch}/registry\nhttp:\n  addr: ${address}\n`)
  const child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' })
  children.push(child)
  await waitFor(`http://${address}/v2/`)
  return address
}

const cstor = await cstorRegistry()
const cstorNoVerify = await cstorRegistry('--no-verify')
const docker = await distribution()

// The same image into docker-registry, uncompressed: every blob cstor serves, uploaded with the
// registry's own monolithic upload, then the manifest.
const manifestResponse = await fetch(`http://${cstor}/v2/${repository}/manifests/${tag}`)
const manifestType = manifestResponse.headers.get('content-type')
const manifest = Buffer.from(await manifestResponse.arrayBuffer())
const { config, layers } = JSON.parse(manifest.toString())
const blobFile = path.join(scratch, 'blob')
for (const blob of [config, ...layers]) {
  execFileSync('curl', ['-sf', '-o', blobFile, `http://${cstor}/v2/${repository}/blobs/${blob.digest}`])
  const upload = await fetch(`http://${docker}/v2/${repository}/blobs/uploads/`, { method: 'POST' })
  const location = new URL(upload.headers.get('location'), `http://${docker}`)
  location.searchParams.set('digest', blob.digest)
  execFileSync('curl', ['-sf', '-X', 'PUT', '-H', 'Content-Type: application/octet-stream', '-T', blobFile, location.href])
}
fs.rmSync(blobFile)
const put = await fetch(`http://${docker}/v2/${repository}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': manifestType }, body: manifest })
if (!put.ok) throw new Error(`docker-registry refused the manifest: ${put.status} ${await put.text()}`)
const gb = layers.reduce((sum, l) => sum + l.size, config.size) / 1e9
console.error(`${image}: ${gb.toFixed(2)} GB in ${layers.length} layer(s), served by cstor and docker-registry`)

const fresh = path.join(scratch, 'fresh')
// (podman refuses a run root longer than 50 characters.)
const freshRun = fs.mkdtempSync('/tmp/cstor-bench-run-')
const freshArgs = `--root ${q(path.join(fresh, 'root'))} --runroot ${q(freshRun)}`
const reset = () => {
  execFileSync('sh', ['-c', `umount ${q(path.join(fresh, 'root', 'overlay'))} 2>/dev/null || true`])
  fs.rmSync(fresh, { recursive: true, force: true })
  fs.rmSync(freshRun, { recursive: true, force: true })
  fs.mkdirSync(freshRun)
  shell('sync')
}
const skopeoPull = (address) => () => shell(`skopeo copy --quiet --src-tls-verify=false docker://${address}/${image} containers-storage:[overlay@${path.join(fresh, 'root')}+${freshRun}]${image}`, env)
const curlBlob = (address) => () => shell(`curl -sf -o /dev/null http://${address}/v2/${repository}/blobs/${layers[0].digest}`)

// Each case starts with the files it reads in the page cache, as on a node serving pulls: the
// pulls write several GB, which would otherwise leave the next case reading from disk.
const cases = [
  ['skopeo ← cstor serve --registry', cstor, skopeoPull(cstor)],
  ['skopeo ← cstor serve --registry --no-verify', cstorNoVerify, skopeoPull(cstorNoVerify)],
  ['skopeo ← docker-registry (same blobs, uncompressed)', docker, skopeoPull(docker)],
  ['cstor pull ← cstor serve --registry', cstor, () => shell(`mkdir -p ${q(path.join(fresh, 'root'))} && node ${q(cli)} ${freshArgs} pull --quiet --tls-verify=false docker://${cstor}/${image}`, env)],
  ['podman save | podman load', cstor, () => shell(`podman --root ${q(root)} --runroot ${q(runroot)} save ${image} | podman ${freshArgs} load --quiet`, env)],
  ['server alone: curl layer ← cstor', cstor, curlBlob(cstor)],
  ['server alone: curl layer ← cstor --no-verify', cstorNoVerify, curlBlob(cstorNoVerify)],
  ['server alone: curl layer ← docker-registry', docker, curlBlob(docker)],
]
const warm = new Map(cases.map(([name, address]) => [name, curlBlob(address)]))
const results = await measure(
  cases.map(([name, , run]) => [name, run]),
  Number(values.runs),
  (name) => {
    reset()
    warm.get(name)()
  },
)
reset()
for (const child of children) child.kill()
fs.rmSync(scratch, { recursive: true, force: true })
fs.rmSync(freshRun, { recursive: true, force: true })
report('registry.md', `Pull of ${image} (${gb.toFixed(2)} GB, uncompressed layers) into a fresh store (median of ${values.runs})`, results, 'skopeo ← docker-registry (same blobs, uncompressed)', gb)
