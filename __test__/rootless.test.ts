/**
 * Rootless stores: a real unprivileged user with a real rootless podman store (overlay), whose
 * layer holds a 0600 file owned by a subordinate UID. The user cannot read it directly (EACCES);
 * through `startUnshareHelper` (podman unshare + cstor serve, fds passed back), and transparently
 * through `Storage.open` (which starts that helper for a rootless store), the layer arrives bit
 * for bit. Writes (pull, import, tag, rmi) by that user go through a writable helper inside the
 * user namespace and write what rootless podman writes for the same input, device nodes left out
 * as podman leaves them out there; `podman unshare cstor` finds the user's store. Needs root to
 * create the user; the repository must be readable by that user.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main, repo, storageConf, unprivilegedUser } from './helpers'
import { layerPicture } from './layer-picture'

const user = 'cstor-rootless'
let asUser: (script: string) => string
const home = `/home/${user}`
const cstor = `node ${path.join(repo, 'dist', 'cli', 'main.js')}`
/** Inputs the user can read: an OCI layout of a podman build, a rootfs tar with device nodes. */
let inputs: string

afterAll(() => {
  if (inputs) fs.rmSync(inputs, { recursive: true, force: true })
})

beforeAll(() => {
  asUser = unprivilegedUser(user)
  if (!fs.readFileSync('/etc/subuid', 'utf8').includes(`${user}:`)) {
    execFileSync('usermod', ['--add-subuids', '300000-365535', '--add-subgids', '300000-365535', user])
  }
  asUser(
    [
      'set -e',
      'mkdir -p ~/.config/containers',
      `printf '[storage]\\ndriver = "overlay"\\n' > ~/.config/containers/storage.conf`,
      'podman system reset -f >/dev/null 2>&1 || true',
      'rm -rf ~/rootfs && mkdir -p ~/rootfs/etc && echo secret > ~/rootfs/etc/private && chmod 600 ~/rootfs/etc/private',
      'tar -C ~/rootfs -c . | podman import -q - localhost/rootless:1 >/dev/null',
    ].join('\n'),
  )
  // Lower case: rootless podman names an image pulled from an OCI layout after its path.
  inputs = path.join(os.tmpdir(), `cstor-rootless-inputs-${process.pid}`)
  fs.rmSync(inputs, { recursive: true, force: true })
  fs.mkdirSync(inputs, { mode: 0o755 })
  // Whiteouts, an opaque directory, hardlinks (podman build's layers), as an OCI layout.
  execFileSync('skopeo', ['copy', '--quiet', `containers-storage:[overlay@${main.root}+${main.runroot}]localhost/app:1`, `oci:${inputs}/app:app`], {
    env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf },
  })
  // A Debian-style rootfs: /dev/console and /dev/null as character devices, a file of UID 1000.
  const rootfs = path.join(inputs, 'rootfs')
  fs.mkdirSync(path.join(rootfs, 'dev'), { recursive: true })
  fs.mkdirSync(path.join(rootfs, 'home', 'u'), { recursive: true })
  execFileSync('mknod', [path.join(rootfs, 'dev', 'console'), 'c', '5', '1'])
  execFileSync('mknod', [path.join(rootfs, 'dev', 'null'), 'c', '1', '3'])
  fs.writeFileSync(path.join(rootfs, 'home', 'u', 'f'), 'u\n')
  fs.chownSync(path.join(rootfs, 'home', 'u', 'f'), 1000, 1000)
  execFileSync('tar', ['-C', rootfs, '-cf', path.join(inputs, 'rootfs.tar'), '.'])
  // A file of UID 70000, which the user's 65536 subordinate IDs do not map.
  const unmapped = path.join(inputs, 'unmapped')
  fs.mkdirSync(unmapped)
  fs.writeFileSync(path.join(unmapped, 'f'), 'x\n')
  fs.chownSync(path.join(unmapped, 'f'), 70000, 70000)
  execFileSync('tar', ['-C', unmapped, '-cf', path.join(inputs, 'unmapped.tar'), '.'])
  execFileSync('chmod', ['-R', 'a+rX', inputs])
}, 180_000)

const CHECK = (dist: string) => `
const { Storage, startUnshareHelper, assembleSplitFdStream } = require(${JSON.stringify(dist)})
const fs = require('node:fs'), crypto = require('node:crypto'), os = require('node:os'), path = require('node:path')
;(async () => {
  const root = path.join(os.homedir(), '.local/share/containers/storage')
  const direct = await Storage.open({ root, unshare: false })
  const layer = (await (await direct.image('localhost/rootless:1')).layers())[0]
  let directly = 'read'
  try { await layer.exportToFile(path.join(os.tmpdir(), 'cstor-rootless-direct.tar')) } catch (e) { directly = e.code }
  direct.close()
  // The explicit helper.
  const helper = await startUnshareHelper({ root })
  const s = await helper.client.getLayerSplitFdStream(layer.id, { inlineThreshold: 0 })
  const file = path.join(os.tmpdir(), 'cstor-rootless-' + process.pid + '.tar')
  const out = fs.openSync(file, 'w')
  await assembleSplitFdStream(s.stream, s.content, out)
  fs.closeSync(out)
  ;[s.stream, ...s.content].forEach((fd) => fs.closeSync(fd))
  await helper.close()
  const got = 'sha256:' + crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')
  // Transparently: Storage.open on a rootless store reads content through the helper itself.
  const storage = await Storage.open({ root })
  const same = (await (await storage.image('localhost/rootless:1')).layers())[0]
  await same.exportToFile(file)
  const transparent = 'sha256:' + crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')
  const chunks = []
  for await (const chunk of same.export()) chunks.push(chunk)
  const streamed = 'sha256:' + crypto.createHash('sha256').update(Buffer.concat(chunks)).digest('hex')
  storage.close()
  fs.rmSync(file)
  console.log(JSON.stringify({ uid: process.getuid(), direct: directly, want: layer.diffDigest, got, transparent, streamed, fds: s.content.length }))
})().catch((e) => { console.error(e); process.exit(1) })
`

describe('rootless stores', () => {
  it('an unprivileged user gets an unreadable rootless layer bit for bit through podman unshare', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-rootless-'))
    fs.chmodSync(dir, 0o755)
    const script = path.join(dir, 'check.cjs')
    fs.writeFileSync(script, CHECK(path.join(repo, 'dist', 'index.js')), { mode: 0o644 })
    const out = JSON.parse(asUser(`node ${script}`).trim().split('\n').at(-1)!)
    fs.rmSync(dir, { recursive: true, force: true })
    expect(out.uid).not.toBe(0)
    expect(out.direct).toBe('EACCES')
    expect(out.got).toBe(out.want)
    expect(out.transparent).toBe(out.want)
    expect(out.streamed).toBe(out.want)
    expect(out.fds).toBeGreaterThan(0)
  }, 120_000)

  it('an unprivileged user pulls, imports, tags and removes images as rootless podman does', () => {
    const ours = `${home}/.local/share/containers/storage`
    const theirs = `${home}/podman-store`
    const writesBegan = BigInt(Date.now() - 2000) * 1_000_000n
    const podmanTheirs = `podman --root ${theirs}/root --runroot ${theirs}/run`
    asUser(
      [
        'set -e',
        `${podmanTheirs} system reset -f >/dev/null 2>&1 || true`,
        `${podmanTheirs} pull -q oci:${inputs}/app:app >/dev/null`,
        `${podmanTheirs} import -q ${inputs}/rootfs.tar localhost/rootfs:1 >/dev/null`,
        // cstor, plainly: its writes go through podman unshare on their own.
        `${cstor} pull oci:${inputs}/app:app localhost/app:1 >/dev/null`,
        `${cstor} import ${inputs}/rootfs.tar localhost/rootfs:1 >/dev/null`,
        `${cstor} tag localhost/rootfs:1 localhost/rootfs:tagged`,
      ].join('\n'),
    )
    // Every layer directory as rootless podman (4.3) writes it: diff/ with subordinate owners,
    // user.overlay.opaque, whiteout devices, and no /dev/console, which a user namespace cannot make.
    const ids = fs.readdirSync(path.join(theirs, 'root', 'overlay')).filter((n) => /^[0-9a-f]{64}$/.test(n))
    expect(ids.length).toBe(4)
    for (const id of ids) {
      const picture = (root: string) => {
        const { 'lower-layers': _newer, ...rest } = layerPicture(root, id, writesBegan)
        return rest
      }
      expect(picture(ours), id).toEqual(picture(path.join(theirs, 'root')))
    }
    const opaque = execFileSync('getfattr', ['-R', '-h', '-d', '-m', 'overlay', path.join(ours, 'overlay')]).toString()
    expect(opaque).toContain('user.overlay.opaque="y"')
    expect(opaque).not.toContain('trusted.')

    // Rootless podman reads the result; every layer still exports bit for bit (through the helper).
    const images = asUser(`podman images --format '{{.Repository}}:{{.Tag}} {{.ID}}'`)
    expect(images).toContain('localhost/rootfs:tagged')
    expect(images).toContain('localhost/app:1')
    expect(asUser(`podman unshare sh -c 'cat $(podman image mount localhost/rootfs:1)/home/u/f; podman image unmount localhost/rootfs:1 >/dev/null'`)).toBe('u\n')
    const layers = JSON.parse(asUser(`${cstor} --json layer list`)) as { id: string; diffDigest: string }[]
    for (const layer of layers) {
      expect(asUser(`${cstor} layer export ${layer.id} | sha256sum`).slice(0, 64), layer.id).toBe(layer.diffDigest.slice(7))
    }
    // Discovery inside podman unshare finds this user's store, not root's.
    expect(asUser(`podman unshare ${cstor} image list`)).toContain('localhost/rootfs')
    // An owner the namespace cannot map is refused, as podman refuses it.
    expect(() => asUser(`${cstor} import ${inputs}/unmapped.tar localhost/unmapped:1`)).toThrow(/insufficient UIDs or GIDs.*70000:70000.*EINVAL/s)
    expect(() => asUser(`${podmanTheirs} import -q ${inputs}/unmapped.tar localhost/unmapped:1`)).toThrow(/insufficient UIDs or GIDs/)
    // rmi in the user namespace deletes the subordinate-owned files too.
    asUser(`${cstor} rmi localhost/app:1 localhost/rootfs:tagged localhost/rootfs:1`)
    expect(asUser(`podman images -q`).trim().split('\n')).toHaveLength(1)
    expect(fs.readdirSync(path.join(ours, 'overlay')).filter((n) => /^[0-9a-f]{64}$/.test(n))).toHaveLength(1)
    asUser(`${podmanTheirs} system reset -f >/dev/null 2>&1 || true`)
  }, 240_000)
})
