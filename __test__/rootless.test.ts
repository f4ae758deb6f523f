/**
 * Rootless stores: a real unprivileged user with a real rootless podman store (overlay), whose
 * layer holds a 0600 file owned by a subordinate UID. The user cannot read it directly (EACCES);
 * through `startUnshareHelper` (podman unshare + cstor serve, fds passed back), and transparently
 * through `Storage.open` (which starts that helper for a rootless store), the layer arrives bit
 * for bit. Needs root to create the user; the repository must be readable by that user.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { repo, unprivilegedUser } from './helpers'

const user = 'cstor-rootless'
let asUser: (script: string) => string

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
})
