/**
 * One backend: a rootless store gets every method. A real unprivileged user with its own
 * subordinate ID range, plain `node` (no `podman unshare` around cstor), on a rootless podman
 * store holding an image whose 0600 and 0640 files and 0700 directory belong to subordinate IDs,
 * runs every public API method — and every CLI verb — and gets what root gets on a root store
 * holding the same image: exports bit for bit, TOC digests, the same copies (a composefs
 * repository too), the same writes; its extraction equals `podman unshare podman image mount`;
 * what it copies out, rootless podman pulls back with the same IDs; skopeo pulls from the
 * registry it serves; verify is clean, then finds damage. All of it through one helper per opened
 * store: a process that lists images and exports 50 layers starts `podman unshare` once.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main, repo, storageConf, unprivilegedUser } from './helpers'
import { startRegistry, type Registry } from './registry'

const user = 'cstor-parity'
const home = `/home/${user}`
const userStore = { root: `${home}/.local/share/containers/storage`, runroot: '' }
const cstor = `node ${path.join(repo, 'dist', 'cli', 'main.js')}`
const IMAGE = 'localhost/parity:1'
let asUser: (script: string) => string
/** Inputs every user can read: the image as an OCI layout, a rootfs tar, the check script. */
let inputs: string
/** Root's store holding the same image, pulled from the same layout. */
let rootStore: { root: string; runroot: string }
let registry: Registry

const sh = (script: string) => execFileSync('sh', ['-c', script], { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf } })

beforeAll(async () => {
  asUser = unprivilegedUser(user)
  if (!fs.readFileSync('/etc/subuid', 'utf8').includes(`${user}:`)) {
    execFileSync('usermod', ['--add-subuids', '400000-465535', '--add-subgids', '400000-465535', user])
  }
  // Lower case: podman names an image pulled from an OCI layout after its path.
  inputs = path.join(os.tmpdir(), `cstor-parity-${process.pid}`)
  fs.rmSync(inputs, { recursive: true, force: true })
  fs.mkdirSync(inputs, { mode: 0o755 })
  // The image: the fixture base with what a Debian rootfs has that a user cannot read — a 0600
  // file and a 0640 file of other owners, a 0700 directory of a system user (apt's `partial`) —
  // built by podman into two layers (the second deletes a file and adds another 0600 one).
  const rootfs = path.join(inputs, 'rootfs')
  const baseTar = path.join(inputs, 'base.tar')
  execFileSync('skopeo', ['copy', '--quiet', `containers-storage:[overlay@${main.root}+${main.runroot}]localhost/base:1`, `docker-archive:${baseTar}:localhost/base:1`], {
    env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf },
  })
  const build = path.join(inputs, 'build')
  const containerfile = [
    'FROM localhost/base:1',
    'RUN mkdir -p /var/lib/apt/lists/partial && echo lock > /var/lib/apt/lists/partial/lock \\',
    ' && chown -R 100:65534 /var/lib/apt/lists/partial && chmod 700 /var/lib/apt/lists/partial \\',
    ' && echo secret > /etc/secret && chown 1000:1000 /etc/secret && chmod 600 /etc/secret \\',
    ' && echo shadow > /etc/shadow && chown 0:42 /etc/shadow && chmod 640 /etc/shadow',
    'RUN rm /etc/motd && mkdir -p /opt/app && echo key > /opt/app/key && chown -R 1001:1001 /opt/app && chmod 600 /opt/app/key',
  ].join('\n')
  fs.mkdirSync(build)
  fs.writeFileSync(path.join(build, 'Containerfile'), containerfile)
  const builder = { root: path.join(inputs, 'builder', 'root'), runroot: path.join(inputs, 'builder', 'run') }
  const podmanAt = (store: { root: string; runroot: string }) => `podman --root ${store.root} --runroot ${store.runroot} --storage-driver overlay`
  sh(`${podmanAt(builder)} load -q -i ${baseTar} >/dev/null && ${podmanAt(builder)} build -q --isolation chroot -t ${IMAGE} ${build} >/dev/null`)
  sh(`skopeo copy --quiet containers-storage:[overlay@${builder.root}+${builder.runroot}]${IMAGE} oci:${inputs}/layout:parity`)
  sh(`umount ${builder.root}/overlay 2>/dev/null; rm -rf ${path.dirname(builder.root)}`)
  // A rootfs tar for import, with a 0600 file of another owner.
  sh(`mkdir -p ${rootfs}/etc && echo private > ${rootfs}/etc/private && chown 1000:1000 ${rootfs}/etc/private && chmod 600 ${rootfs}/etc/private && tar -C ${rootfs} -cf ${inputs}/rootfs.tar .`)
  execFileSync('chmod', ['-R', 'a+rX', inputs])
  // The same image in root's store and in the user's rootless store, pulled from the layout.
  rootStore = { root: path.join(inputs, 'root-store', 'root'), runroot: path.join(inputs, 'root-store', 'run') }
  sh(`${podmanAt(rootStore)} pull -q oci:${inputs}/layout:parity >/dev/null && ${podmanAt(rootStore)} tag $(${podmanAt(rootStore)} images -q | head -1) ${IMAGE}`)
  asUser(
    [
      'set -e',
      'mkdir -p ~/.config/containers',
      `printf '[storage]\\ndriver = "overlay"\\n' > ~/.config/containers/storage.conf`,
      'podman system reset -f >/dev/null 2>&1 || true',
      `podman pull -q oci:${inputs}/layout:parity >/dev/null`,
      `podman tag $(podman images -q | head -1) ${IMAGE}`,
    ].join('\n'),
  )
  registry = await startRegistry(path.join(inputs, 'registry'))
  fs.writeFileSync(path.join(inputs, 'registries.conf'), `unqualified-search-registries = ["${registry.host}"]\n[[registry]]\nlocation = "${registry.host}"\ninsecure = true\n`, { mode: 0o644 })
  fs.writeFileSync(path.join(inputs, 'parity.cjs'), PARITY, { mode: 0o644 })
  fs.writeFileSync(path.join(inputs, 'picture.sh'), PICTURE, { mode: 0o644 })
}, 300_000)

afterAll(async () => {
  await registry?.stop()
  asUser?.(`podman system reset -f >/dev/null 2>&1 || true`)
  if (inputs) {
    sh(`for m in $(awk '{print $5}' /proc/self/mountinfo | grep '^${inputs}/' | sort -r); do umount $m; done`)
    fs.rmSync(inputs, { recursive: true, force: true })
  }
})

/**
 * A tree as `find`, `sha256sum` and `getfattr` see it: every entry's type, mode, owners, mtime,
 * and for all but directories size, target and link count (overlayfs gives merged directories a
 * link count of 1), content, xattrs.
 */
const PICTURE = `cd "$1" || exit 1
find . -type d -printf '%p %y %m %U:%G %T@\\n' | sort
find . ! -type d -printf '%p %y %m %U:%G %s %T@ %l %n\\n' | sort
find . -type f -exec sha256sum {} + | sort -k2
getfattr -R -h -d -m - -e base64 . 2>/dev/null | grep -v '^$' | sort
`

/**
 * Every public method of the API on one store, as a JSON picture with nothing of the machine in
 * it (no paths, no times): run by root on its store and by the user on the rootless one.
 */
const PARITY = String.raw`
const { Storage, RpcClient, assembleSplitFdStream } = require(process.argv[2])
const fs = require('node:fs'), os = require('node:os'), path = require('node:path'), crypto = require('node:crypto')
const { execFileSync } = require('node:child_process')
const [, , , inputs, registry, root, runroot] = process.argv
const sha = (data) => 'sha256:' + crypto.createHash('sha256').update(data).digest('hex')
const scratch = path.join(os.homedir(), 'parity-' + process.pid)
fs.mkdirSync(scratch)
const tarOf = async (write) => { const f = path.join(scratch, 'out-' + Math.random()); await write(f); const s = sha(fs.readFileSync(f)); fs.rmSync(f); return s }
;(async () => {
  const storage = root ? await Storage.open({ root, runroot }) : await Storage.discover()
  const out = {}
  const image = await storage.image('${IMAGE}')
  out.images = (await storage.listImages()).map((i) => i.id).sort()
  for await (const i of storage.images()) out.firstImage ??= typeof i.id
  const details = await image.inspect()
  out.inspect = { id: details.image.id, names: details.image.names, layers: details.layers.map((l) => l.id), platform: details.platform, diffIds: details.config.rootfs.diff_ids, size: details.size }
  out.manifest = sha(await image.bigData('manifest'))
  out.config = sha(JSON.stringify(await image.config())) + JSON.stringify([await image.platform(), (await image.manifest()).layers.length, (await image.layers()).length])
  out.layers = []
  for (const layer of details.layers) {
    const parts = []
    for await (const part of layer.parts()) {
      if (part.kind === 'segment') parts.push(part.data)
      else { parts.push(fs.readFileSync(part.fd)); fs.closeSync(part.fd) }
    }
    const streamed = []
    for await (const chunk of layer.export()) streamed.push(chunk)
    const s = await layer.splitFdStream({ inlineThreshold: 0 })
    const assembled = await tarOf(async (f) => { const fd = fs.openSync(f, 'w'); await assembleSplitFdStream(s.stream, s.content, fd); fs.closeSync(fd) })
    ;[s.stream, ...s.content].forEach((fd) => fs.closeSync(fd))
    const toFd = await tarOf(async (f) => { const fd = fs.openSync(f, 'w'); await layer.exportToFd(fd, { verify: false }); fs.closeSync(fd) })
    const dir = path.join(scratch, 'layer-' + layer.id)
    const stats = await layer.extract(dir, { whiteouts: 'aufs' })
    out.layers.push({
      id: layer.id, diffDigest: layer.diffDigest,
      file: await tarOf((f) => layer.exportToFile(f)), stream: sha(Buffer.concat(streamed)), parts: sha(Buffer.concat(parts)), splitfdstream: assembled, fd: toFd,
      toc: (await layer.toc({ digests: true })).entries, chain: (await layer.chain()).map((l) => l.id), lower: (await layer.lowerChain()).map((l) => l.id),
      extracted: stats, byLink: (await storage.layer(layer.id)).id,
    })
  }
  out.layerIds = (await storage.listLayers()).map((l) => l.id).sort()
  for await (const l of storage.layers()) out.firstLayer ??= typeof l.id
  const toc = await image.toc({ digests: true, whiteouts: 'list' })
  out.toc = toc.entries
  // The files in place: subordinate-owned 0600 bodies read through the helper's fds.
  out.files = { diff: await image.diff(), analyze: await image.analyze(), entries: [], xattrs: await image.fs.listxattr('/') }
  for await (const e of image.fs.entries()) out.files.entries.push([e.path, e.type, e.mode, e.uid, e.gid, e.size, e.isFile() ? sha(await image.fs.readFile(e.path)) : (e.linkTarget ?? '')])
  out.files.missing = await image.fs.stat('/no/such').catch((e) => e.code)
  const extracted = path.join(scratch, 'extracted')
  out.extract = await image.extract(extracted)
  out.composefs = await image.composefs(path.join(scratch, 'image.cfs'), { algorithm: 'sha256' })
  out.copies = {
    oci: (await image.copyToOci(path.join(scratch, 'oci'), { refName: 'parity' })).manifestDigest,
    ociGzip: (await image.copyTo('oci:' + path.join(scratch, 'oci-gzip') + ':parity')).layers,
    archive: (await image.copyTo('docker-archive:' + path.join(scratch, 'archive.tar') + ':${IMAGE}')).manifestDigest,
    push: (await image.copyTo('docker://' + registry + '/parity/pushed:1', { tlsVerify: false, compression: 'none' })).manifestDigest,
    composefs: await image.copyTo('composefs:' + path.join(scratch, 'cfs') + ':parity', { algorithm: 'sha256' }),
  }
  // Hard links to the store's files: the ID of the copy above, or the error code.
  out.hardlinked = await image.copyTo('composefs:' + path.join(scratch, 'cfs-hl') + ':parity', { algorithm: 'sha256', hardlink: true })
    .then((r) => (r.composefsId === out.copies.composefs.composefsId ? 'the same image' : r.composefsId), (e) => e.code)
  out.copies.composefsFiles = fs.readdirSync(path.join(scratch, 'cfs'), { recursive: true }).sort()
  const report = await storage.verify()
  out.verify = { clean: report.clean, kinds: report.findings.map((f) => f.kind).sort(), layers: report.layers, bytes: report.bytes }
  // Served: over JSON-RPC, and as a registry skopeo pulls from.
  const socket = path.join(scratch, 'rpc.sock')
  const server = await storage.serve(socket)
  const client = new RpcClient(socket)
  const remote = await client.getLayerSplitFdStream(details.layers[0].id)
  out.rpc = { images: (await client.listImages()).length, top: await tarOf(async (f) => { const fd = fs.openSync(f, 'w'); await assembleSplitFdStream(remote.stream, remote.content, fd); fs.closeSync(fd) }) }
  ;[remote.stream, ...remote.content].forEach((fd) => fs.closeSync(fd))
  server.close()
  const served = await storage.serveRegistry({ address: '127.0.0.1:0' })
  execFileSync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', 'docker://' + served.address + '/${IMAGE}', 'oci:' + path.join(scratch, 'pulled') + ':x'])
  served.close()
  const index = JSON.parse(fs.readFileSync(path.join(scratch, 'pulled', 'index.json')))
  const manifest = JSON.parse(fs.readFileSync(path.join(scratch, 'pulled', 'blobs', 'sha256', index.manifests[0].digest.slice(7))))
  out.servedConfig = manifest.config.digest
  // Writes.
  const imported = await storage.import(path.join(inputs, 'rootfs.tar'), { name: 'localhost/imported:1' })
  const created = await storage.createLayer(path.join(inputs, 'rootfs.tar'), { names: ['parity-layer'] })
  const made = await storage.createImage({ topLayer: created.id, names: ['localhost/made:1'], bigData: [{ key: 'note', data: Buffer.from('hi') }] })
  const tagged = await storage.tag('localhost/made:1', 'localhost/made:2')
  const untagged = await storage.untag('localhost/made:1', 'localhost/made:2')
  const pulled = await storage.pull('oci:' + path.join(inputs, 'layout') + ':parity', { name: 'localhost/pulled:1' })
  out.writes = {
    imported: imported.layers.length, createdDiff: created.diffDigest, made: made.names, bigData: (await made.bigData('note')).toString(),
    tagged: tagged.names, untagged: untagged.names, pulled: { id: pulled.imageId, existed: pulled.existed, written: pulled.layersWritten },
    removedImage: (await storage.removeImage('localhost/made:1')).length, removedLayerSame: await (async () => { const spare = await storage.createLayer(path.join(inputs, 'rootfs.tar')); return (await storage.removeLayer(spare.id)) === spare.id })(),
    removedImported: (await storage.removeImage('localhost/imported:1')).length,
  }
  await storage.untag('localhost/pulled:1', 'localhost/pulled:1')
  // The user's registry settings, read and written where the store's pulls run.
  const auth = path.join(scratch, 'auth.json')
  const login = await storage.login(registry, { username: 'parity', password: 'secret', authFile: auth, tlsVerify: false })
  const authStat = fs.statSync(auth)
  const loggedIn = fs.readFileSync(auth, 'utf8')
  await storage.logout(registry, { authFile: auth })
  out.registries = {
    conf: await storage.registries({ registriesConf: path.join(inputs, 'registries.conf') }),
    login: { storedIn: login.storedIn === auth, mode: authStat.mode & 0o7777, mine: authStat.uid === process.getuid(), loggedIn, loggedOut: fs.readFileSync(auth, 'utf8') },
    logoutAgain: await storage.logout(registry, { authFile: auth }).then(() => 'removed', (e) => e.code),
  }
  out.stores = storage.stores.length
  out.helper = root ? 'explicit root' : 'discovered'
  await storage.close()
  fs.writeFileSync(path.join(os.homedir(), 'parity-scratch'), scratch)
  console.log(JSON.stringify(out))
})().catch((e) => { console.error(e); process.exit(1) })
`

describe('a rootless store through the helper: every method gives what root gets', () => {
  let rootOut: Record<string, unknown>
  let userOut: Record<string, unknown>
  let userScratch: string
  let hardlinked: { root: unknown; user: unknown }

  beforeAll(() => {
    const run = (as: (script: string) => string, args: string) => JSON.parse(as(`node ${inputs}/parity.cjs ${path.join(repo, 'dist', 'index.js')} ${inputs} ${registry.host} ${args}`).trim().split('\n').at(-1)!)
    const { helper: _r, hardlinked: rootHardlinked, ...fromRoot } = run(sh, `${rootStore.root} ${rootStore.runroot}`)
    rootOut = fromRoot
    const { helper: _u, hardlinked: userHardlinked, ...fromUser } = run(asUser, '')
    userOut = fromUser
    hardlinked = { root: rootHardlinked, user: userHardlinked }
    userScratch = asUser('cat ~/parity-scratch').trim()
  }, 300_000)

  it('copy to composefs --hardlink: root links its store\'s files; the rootless store\'s overlay/ is a mount of its own in the helper, so EXDEV, up front', () => {
    // Rootless podman's storage bind-mounts overlay/ on itself in the user namespace the helper
    // runs in (its mountinfo shows it), and a hard link cannot cross a mount: the typed refusal
    // before anything is written is the right answer there, not a difference to remove.
    expect(hardlinked).toEqual({ root: 'the same image', user: 'EXDEV' })
  })

  it('the same results, method by method', () => {
    for (const key of Object.keys(rootOut)) expect(userOut[key], key).toEqual(rootOut[key])
    expect(Object.keys(userOut).sort()).toEqual(Object.keys(rootOut).sort())
  })

  it('exports are bit for bit, by every route', () => {
    for (const layer of userOut.layers as { diffDigest: string; file: string; stream: string; parts: string; splitfdstream: string; fd: string }[]) {
      for (const route of ['file', 'stream', 'parts', 'splitfdstream', 'fd'] as const) expect(layer[route], route).toBe(layer.diffDigest)
    }
  })

  it('TOC digests of the files the user cannot read', () => {
    const entries = userOut.toc as { name: string; mode: number; uid: number; digest?: string }[]
    for (const name of ['etc/secret', 'etc/shadow', 'opt/app/key', 'var/lib/apt/lists/partial/lock']) {
      const entry = entries.find((e) => e.name === name)
      expect(entry?.digest, name).toMatch(/^sha256:/)
    }
    expect(entries.find((e) => e.name === 'etc/secret')).toMatchObject({ mode: 0o600, uid: 1000 })
  })

  it('its extraction equals podman unshare podman image mount', () => {
    // Both trees seen from inside the user namespace, where their owners are the image's own.
    const mounted = asUser(`podman unshare sh -c 'sh ${inputs}/picture.sh "$(podman image mount ${IMAGE})"; podman image unmount ${IMAGE} >/dev/null'`)
    const extracted = asUser(`podman unshare sh ${inputs}/picture.sh ${userScratch}/extracted`)
    expect(extracted.split("\n")).toEqual(mounted.split("\n"))
    expect(extracted).toMatch(/\.\/etc\/secret f 600 1000:1000/)
  })

  it('rootless podman pulls back what it copied out, with the same image ID', () => {
    const id = (userOut.inspect as { id: string }).id
    const other = `podman --root ${home}/check/root --runroot /tmp/cstor-parity-check-run`
    const seen = asUser(
      [
        'set -e',
        `${other} pull -q oci:${userScratch}/oci:parity`,
        `${other} pull -q oci:${userScratch}/oci-gzip:parity`,
        `${other} load -q -i ${userScratch}/archive.tar >/dev/null`,
        `${other} image inspect --format '{{.Id}}' ${IMAGE}`,
        `${other} pull -q --tls-verify=false ${registry.host}/parity/pushed:1`,
        `${other} system reset -f >/dev/null 2>&1`,
      ].join('\n'),
    )
    expect(seen.trim().split('\n').map((l) => l.replace(/^sha256:/, '').trim())).toEqual([id, id, id, id])
    expect(userOut.servedConfig).toBe(`sha256:${id}`)
  })

  it('verify is clean, then finds a changed byte in a file only the namespace can read', () => {
    expect(userOut.verify).toMatchObject({ clean: true, kinds: [] })
    const layer = (userOut.layers as { id: string }[]).find((l) => fs.existsSync(`${userStore.root}/overlay/${l.id}/diff/opt/app/key`))!
    const key = `${userStore.root}/overlay/${layer.id}/diff/opt/app/key`
    const before = fs.statSync(key)
    fs.writeFileSync(key, 'kez\n')
    fs.utimesSync(key, before.atime, before.mtime)
    try {
      let failed: { status: number; stdout: string } | undefined
      try {
        asUser(`${cstor} verify --json`)
      } catch (err) {
        failed = err as { status: number; stdout: string }
      }
      expect(failed?.status).toBe(1)
      const report = JSON.parse(failed!.stdout)
      expect(report.findings.map((f: { kind: string }) => f.kind)).toContain('layer-content-modified')
    } finally {
      fs.writeFileSync(key, 'key\n')
      fs.utimesSync(key, before.atime, before.mtime)
    }
  })

  it('one helper for a list and 50 exports in one process', () => {
    const shim = `${home}/shim`
    asUser(`mkdir -p ${shim} && printf '#!/bin/sh\\necho "$*" >> ${shim}/log\\nexec /usr/bin/podman "$@"\\n' > ${shim}/podman && chmod +x ${shim}/podman && rm -f ${shim}/log`)
    const script = `const { Storage } = require('${path.join(repo, 'dist', 'index.js')}'); (async () => {
      const s = await Storage.discover(); await s.listImages(); const layers = (await (await s.image('${IMAGE}')).inspect()).layers
      const fd = require('node:fs').openSync('/dev/null', 'w')
      for (let i = 0; i < 50; i++) await layers[i % layers.length].exportToFd(fd)
      await s.close() })().catch((e) => { console.error(e); process.exit(1) })`
    asUser(`PATH=${shim}:$PATH node -e "${script.replace(/"/g, '\\"')}"`)
    const starts = asUser(`grep -c '^unshare' ${shim}/log`).trim()
    expect(starts).toBe('1')
  })
})

describe('the CLI as the user, on the user\'s store, does what it does as root', () => {
  const onRoot = (args: string) => sh(`${cstor} --root ${rootStore.root} --runroot ${rootStore.runroot} ${args}`)
  const asUserCli = (args: string) => asUser(`${cstor} ${args}`)

  it('reads: image list/inspect/layers/toc, layer list/inspect/export/toc, resolve-link', () => {
    const ids = (out: string) => (JSON.parse(out) as { id: string }[]).map((i) => i.id).sort()
    expect(ids(asUserCli('--json image list'))).toEqual(ids(onRoot('--json image list')))
    expect(JSON.parse(asUserCli(`image inspect ${IMAGE} --json`)).image.id).toBe(JSON.parse(onRoot(`image inspect ${IMAGE} --json`)).image.id)
    expect(ids(asUserCli(`--json image layers ${IMAGE}`))).toEqual(ids(onRoot(`--json image layers ${IMAGE}`)))
    expect(asUserCli(`image toc ${IMAGE} --digests`)).toBe(onRoot(`image toc ${IMAGE} --digests`))
    const layers = JSON.parse(asUserCli('--json layer list')) as { id: string; diffDigest: string }[]
    expect(layers.map((l) => l.id).sort()).toEqual(ids(onRoot('--json layer list')))
    for (const layer of layers) {
      expect(asUser(`${cstor} layer export ${layer.id} | sha256sum`).slice(0, 64)).toBe(layer.diffDigest.slice(7))
      expect(asUserCli(`layer toc ${layer.id} --digests`)).toBe(onRoot(`layer toc ${layer.id} --digests`))
      expect(JSON.parse(asUserCli(`layer inspect ${layer.id}`)).lower).toEqual(JSON.parse(onRoot(`layer inspect ${layer.id}`)).lower)
    }
    const link = asUser(`cat ${userStore.root}/overlay/${layers[0].id}/link`).trim()
    expect(asUserCli(`resolve-link ${link}`).trim()).toBe(layers[0].id)
  })

  it('extract, copy, verify, serve, and the writes', () => {
    const dir = `${home}/cli-parity`
    asUser(`podman unshare rm -rf ${dir}; mkdir -p ${dir}`)
    asUserCli(`image extract ${IMAGE} ${dir}/image -q`)
    asUserCli(`layer extract $(${cstor} --json image inspect ${IMAGE} | node -p 'JSON.parse(require("fs").readFileSync(0)).layers[0].id') ${dir}/layer -q`)
    expect(asUser(`podman unshare cat ${dir}/image/etc/secret`)).toBe('secret\n')
    asUserCli(`copy ${IMAGE} oci:${dir}/oci:parity -q`)
    expect(asUser(`skopeo inspect --config oci:${dir}/oci:parity | sha256sum`).slice(0, 64)).toBe(sh(`skopeo inspect --config oci:${inputs}/layout:parity | sha256sum`).slice(0, 64))
    expect(JSON.parse(asUserCli('verify --json')).clean).toBe(true)
    asUser(
      [
        'set -e',
        `${cstor} serve --socket ${dir}/s.sock & pid=$!`,
        `for i in $(seq 100); do [ -S ${dir}/s.sock ] && break; sleep 0.1; done`,
        `python3 -c 'import json,socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"{\\"jsonrpc\\":\\"2.0\\",\\"id\\":1,\\"method\\":\\"ListImages\\"}"); print("ok" if b"result" in s.recv(1<<20) else "error")' ${dir}/s.sock`,
        'kill $pid; wait $pid || true',
      ].join('\n'),
    )
    asUserCli(`import ${inputs}/rootfs.tar localhost/cli:1 -q`)
    asUserCli('tag localhost/cli:1 localhost/cli:2')
    asUserCli('untag localhost/cli:1 localhost/cli:2')
    asUserCli(`pull oci:${inputs}/layout:parity localhost/cli-pulled:1 -q`)
    expect(asUser(`podman images --format '{{.Repository}}:{{.Tag}}'`)).toMatch(/localhost\/cli:1[\s\S]*|localhost\/cli-pulled:1/)
    asUserCli('rmi localhost/cli:1 localhost/cli-pulled:1')
    expect(asUser(`podman images --format '{{.Repository}}:{{.Tag}}'`)).not.toContain('localhost/cli:1')
    asUser(`podman unshare rm -rf ${dir}`)
  })

  it('login and logout: the credentials go where the user\'s podman looks for them', () => {
    // Run as `su -` runs it, without XDG_RUNTIME_DIR: podman sets one for itself and its
    // `podman unshare`, where the store's helper writes the auth file.
    const seen = asUser(
      [
        'set -e',
        `echo parity-secret | ${cstor} login ${registry.host} -u parity-user --password-stdin --tls-verify=false`,
        `podman login --get-login ${registry.host}`,
        `${cstor} logout ${registry.host}`,
        `podman login --get-login ${registry.host} 2>/dev/null || echo 'not logged in'`,
      ].join('\n'),
    )
    expect(seen.trim().split('\n')).toEqual(['Login Succeeded!', 'parity-user', `Removed login credentials for ${registry.host}`, 'not logged in'])
  })
})
