/**
 * `storage.verify()` and `cstor verify`: the fixture stores as podman 4.3 and podman 5.8 built
 * them are clean; copies damaged one way each (a byte of a file, a big-data file or digest, an
 * `l/` link, a layer directory, a layer record) report that damage, naming what is damaged; and
 * every metadata damage (chmod, chown, touch, a replaced symlink, a file removed or added in a
 * `diff/`) that podman 5.8's `system check` finds on a damaged copy, cstor finds in the same copy.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Storage, type Finding, type VerifyReport } from '../ts/index'
import { cliOn, copyStore, type FixtureStore, imagesJson, layersJson, main, podmanFixtures, readJson, storageConf, writeJson } from './helpers'
import { podman5 } from './podman5'

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup()
})

function damagedCopy(store: FixtureStore = main): FixtureStore {
  const copy = copyStore(store)
  cleanups.push(copy.cleanup)
  return copy
}

async function verify(store: FixtureStore, image?: string, quick = false): Promise<VerifyReport> {
  const storage = await Storage.open(store)
  try {
    return await storage.verify({ ...(image !== undefined && { image }), quick })
  } finally {
    storage.close()
  }
}

/** The findings of one kind, as `[subject, message]` pairs. */
const ofKind = (report: VerifyReport, kind: string) => report.findings.filter((f: Finding) => f.kind === kind).map((f) => [f.subject, f.message])

/** The first regular file with content in a layer's `diff/`, relative to the store root. */
function aFileOf(root: string, layer: string): string {
  const diff = path.join('overlay', layer, 'diff')
  const walk = (dir: string): string | undefined => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, entry.name)
      if (entry.isFile() && fs.statSync(path.join(root, rel)).size > 0) return rel
      if (entry.isDirectory()) {
        const found = walk(rel)
        if (found) return found
      }
    }
    return undefined
  }
  const file = walk(diff)
  if (!file) throw new Error(`layer ${layer} has no file with content`)
  return file
}

async function appLayers(store: FixtureStore): Promise<string[]> {
  const storage = await Storage.open(store)
  const layers = (await (await storage.image('localhost/app:1')).layers()).map((l) => l.id)
  storage.close()
  return layers
}

describe.each(podmanFixtures)('the store $name wrote', ({ store, podmanJson, chunked }) => {
  it('is clean, full or quick: no finding but the notes of podman 5 partial pulls; every layer and image checked; exit 0', async () => {
    const podmanImages = podmanJson<{ Id: string }[]>(['images', '--all', '--format', 'json'])
    const storage = await Storage.open(store)
    const layers = await storage.listLayers()
    const chunkedLayers = new Set(layers.filter((l) => l.tocDigest).map((l) => l.id))
    for (const quick of [false, true]) {
      const report = await verify(store, undefined, quick)
      // podman 5.8's own zstd:chunked pulls restore no directory or symlink mtimes and make no fifos.
      expect(report.findings.filter((f) => f.kind !== 'layer-metadata-unrestored')).toEqual([])
      const notes = report.findings.filter((f) => f.kind === 'layer-metadata-unrestored')
      expect(notes.length > 0).toBe(chunked)
      expect(notes.every((f) => f.severity === 'info' && chunkedLayers.has(f.subject) && f.message.includes(`/diff/${f.path}: `))).toBe(true)
      expect(report.clean).toBe(true)
      expect(report.images).toBe(new Set(podmanImages.map((i) => i.Id)).size)
      expect(report.layers).toBe(layers.length)
      expect(report.bytes).toBe(quick ? 0 : layers.reduce((sum, l) => sum + (l.diffSize ?? 0), 0))
    }
    const progress: number[] = []
    await storage.verify({ image: 'localhost/app:1', onProgress: (p) => progress.push(p.layer) })
    expect(progress).toEqual([0, 1, 2, 2])
    storage.close()
    for (const args of [['verify'], ['verify', '--quick']]) {
      const cli = cliOn(store, args)
      expect(cli.status, cli.stderr).toBe(0)
      expect(cli.stdout).toMatch(/^Checked \d+ images, \d+ layers .*: clean, 0 errors, 0 warnings/m)
    }
  })
})

describe('a clean store', () => {
  it('counts the read-write layers of containers as used', async () => {
    const copy = damagedCopy()
    // podman's database records the store's paths: a copy starts without one.
    fs.rmSync(path.join(copy.root, 'libpod'), { recursive: true, force: true })
    execFileSync('podman', ['--root', copy.root, '--runroot', copy.runroot, '--storage-driver', 'overlay', 'create', '--network', 'none', '--name', 'c1', 'localhost/app:1', 'true'], {
      env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf },
    })
    const containerLayer = readJson(path.join(copy.root, 'overlay-containers', 'containers.json'))[0].layer
    expect((await verify(copy)).findings).toEqual([])
    writeJson(path.join(copy.root, 'overlay-containers', 'containers.json'), [])
    const report = await verify(copy)
    expect(report.findings).toEqual([{ severity: 'info', kind: 'layer-unreferenced', subject: containerLayer, message: 'no image or container uses this layer' }])
    expect(report.clean).toBe(true)
  })
})

describe.each(podmanFixtures)('copies of the store $name wrote, damaged', ({ store }) => {
  it('a byte edited in a layer file: a CRC error naming the layer and the file, exit 1', async () => {
    const copy = damagedCopy(store)
    const [top] = await appLayers(copy)
    const file = aFileOf(copy.root, top)
    const fd = fs.openSync(path.join(copy.root, file), 'r+')
    const [byte] = fs.readFileSync(path.join(copy.root, file))
    fs.writeSync(fd, Buffer.from([byte ^ 0x20]), 0, 1, 0)
    fs.closeSync(fd)
    const report = await verify(copy)
    expect(report.clean).toBe(false)
    const modified = ofKind(report, 'layer-content-modified')
    expect(modified).toHaveLength(1)
    expect(modified[0][0]).toBe(top)
    expect(modified[0][1]).toContain(file)
    expect(modified[0][1]).toContain('CRC-64 mismatch')
    const cli = cliOn(copy, ['verify'])
    expect(cli.status).toBe(1)
    expect(cli.stdout).toMatch(new RegExp(`^error\\s+layer-content-modified\\s+${top.slice(0, 12)}\\s+${file}: CRC-64`, 'm'))
    const json = JSON.parse(cliOn(copy, ['verify', '--json']).stdout)
    expect(json.findings).toEqual(report.findings)
  })

  it('a big-data file deleted, a big-data digest and a size changed in images.json', async () => {
    const copy = damagedCopy(store)
    const images = readJson(imagesJson(copy.root))
    const [app, base] = ['localhost/app:1', 'localhost/base:1'].map((name) => images.find((i: { names?: string[] }) => i.names?.includes(name)))
    fs.rmSync(path.join(copy.root, 'overlay-images', app.id, 'manifest'))
    base['big-data-digests'].manifest = `sha256:${'0'.repeat(64)}`
    const configKey = base['big-data-names'].find((k: string) => k.startsWith('sha256:'))
    base['big-data-sizes'][configKey] += 1
    writeJson(imagesJson(copy.root), images)
    const report = await verify(copy)
    expect(ofKind(report, 'image-data-missing')).toEqual([[app.id, `big-data item "manifest" (overlay-images/${app.id}/manifest) is missing`]])
    const [[subject, message]] = ofKind(report, 'image-data-incorrect-digest')
    expect(subject).toBe(base.id)
    expect(message).toMatch(/^big-data item "manifest" hashes to sha256:[0-9a-f]{64}, images.json records sha256:0{64}$/)
    expect(ofKind(report, 'image-data-incorrect-size')).toEqual([[base.id, expect.stringContaining(`big-data item "${configKey}" is`)]])
    expect(report.findings.filter((f) => f.kind !== 'layer-metadata-unrestored')).toHaveLength(3)
  })

  it('an l/ link removed: the layer and every layer stacked on it', async () => {
    const copy = damagedCopy(store)
    const [top, middle, base] = await appLayers(copy)
    const link = fs.readFileSync(path.join(copy.root, 'overlay', base, 'link'), 'utf8').trim()
    fs.rmSync(path.join(copy.root, 'overlay', 'l', link))
    const report = await verify(copy)
    expect(ofKind(report, 'layer-link-missing')).toEqual([[base, `its link file names l/${link}, which does not exist`]])
    const lower = ofKind(report, 'layer-lower-incorrect')
    expect(lower.map(([subject]) => subject)).toEqual(expect.arrayContaining([top, middle]))
    expect(lower.every(([, message]) => message.includes(`l/${link}, which does not exist`))).toBe(true)
    expect(report.clean).toBe(false)
  })

  it('a layer directory deleted: the layer, its dangling link, the layers above', async () => {
    const copy = damagedCopy(store)
    const [top, middle] = await appLayers(copy)
    const link = fs.readFileSync(path.join(copy.root, 'overlay', middle, 'link'), 'utf8').trim()
    fs.rmSync(path.join(copy.root, 'overlay', middle), { recursive: true })
    const report = await verify(copy)
    expect(ofKind(report, 'layer-dir-missing')).toEqual([[middle, `overlay/${middle}/diff does not exist`]])
    expect(ofKind(report, 'link-dangling')).toEqual([[link, `l/${link} leads to ${middle}/diff, which does not exist`]])
    expect(report.findings.find((f) => f.kind === 'link-dangling')?.severity).toBe('warning')
    expect(ofKind(report, 'layer-lower-incorrect')).toContainEqual([top, `lower entry 1 is l/${link}, which leads to ${middle}/diff, which does not exist`])
    const cli = cliOn(copy, ['verify', '--image', 'localhost/app:1'])
    expect(cli.status).toBe(1)
    expect(cli.stdout).toContain('layer-dir-missing')
    expect(cli.stdout).not.toContain('link-dangling')
  })

  it('a layer record dropped that an image uses: the image, the child layer, the unaccounted directory', async () => {
    const copy = damagedCopy(store)
    const [top, middle] = await appLayers(copy)
    const images = readJson(imagesJson(copy.root))
    const app = images.find((i: { names?: string[] }) => i.names?.includes('localhost/app:1'))
    writeJson(
      layersJson(copy.root),
      readJson(layersJson(copy.root)).filter((l: { id: string }) => l.id !== middle),
    )
    const report = await verify(copy)
    expect(ofKind(report, 'image-layer-missing')).toContainEqual([app.id, `layer ${middle}, the parent of ${top}, has no record in layers.json`])
    expect(ofKind(report, 'layer-missing')).toEqual([[top, `parent ${middle} has no record in layers.json`]])
    expect(ofKind(report, 'layer-unaccounted').map(([subject]) => subject)).toEqual([middle])
  })

  it('a top layer record dropped, and a diff-digest changed', async () => {
    const copy = damagedCopy(store)
    const [top, middle] = await appLayers(copy)
    const layers = readJson(layersJson(copy.root)).filter((l: { id: string }) => l.id !== top)
    const record = layers.find((l: { id: string }) => l.id === middle)
    record['diff-digest'] = `sha256:${'1'.repeat(64)}`
    writeJson(layersJson(copy.root), layers)
    const report = await verify(copy)
    const imageIds = ofKind(report, 'image-layer-missing').map(([subject]) => subject)
    expect(imageIds.length).toBeGreaterThan(0)
    expect(ofKind(report, 'image-layer-missing').every(([, message]) => message === `top layer ${top} has no record in layers.json`)).toBe(true)
    expect(ofKind(report, 'layer-incorrect-content-digest')).toEqual([[middle, expect.stringMatching(/hashes to sha256:[0-9a-f]{64}, layers.json records sha256:1{64}$/)]])
  })

  it('--image checks one image only', async () => {
    const copy = damagedCopy(store)
    const [top] = await appLayers(copy)
    const file = aFileOf(copy.root, top)
    fs.appendFileSync(path.join(copy.root, file), 'x')
    const base = await verify(copy, 'localhost/base:1')
    expect(base.findings).toEqual([])
    expect(base.images).toBe(1)
    expect(base.layers).toBe(1)
    const app = await verify(copy, 'localhost/app:1')
    expect(ofKind(app, 'layer-content-modified')).toEqual([[top, `${file}: is ${fs.statSync(path.join(copy.root, file)).size} bytes, the tar-split recorded ${fs.statSync(path.join(copy.root, file)).size - 1}`]])
    expect(cliOn(copy, ['verify', '--image', 'nonexistent']).stderr).toContain('ENOIMAGE')
  })
})

/** `podman system check` (5.8) of a store: `[layer ID, what]` for each "layer content modified" it reports. */
function podmanCheck(store: FixtureStore): [string, string][] {
  const result = podman5(store, ['system', 'check'])
  const found = new Set<string>()
  for (const match of `${result.stdout}\n${result.stderr}`.matchAll(/\* layer ([0-9a-f]{64}): (.*), layer content modified$/gm)) found.add(`${match[1]} ${match[2]}`)
  return [...found].map((line) => [line.slice(0, 64), line.slice(65)])
}

/** A path's mtime in whole seconds, in podman's notation (`0x…`). */
const seconds = (file: string) => `0x${Math.floor(fs.lstatSync(file).mtimeMs / 1000).toString(16)}`

/** The path a podman check finding is about: `+/app/bin/tool(mode:4755￫0700)` → `app/bin/tool`. */
const podmanPath = (what: string) => what.replace(/^[+-]/, '').replace(/\(.*\)$/, '').replace(/^\//, '')

describe.each(podmanFixtures)('metadata damage in a copy of the store $name wrote, against podman 5.8 system check', ({ store }) => {
  it('chmod, chown, touch, a replaced symlink, a file added: cstor finds, in the layer holding it, every path podman finds', async () => {
    const copy = damagedCopy(store)
    const before = new Set(podmanCheck(copy).map(([layer, what]) => `${layer} ${what}`))
    const [top, middle, base] = await appLayers(copy)
    const diff = (layer: string, rel: string) => path.join(copy.root, 'overlay', layer, 'diff', rel)
    fs.chmodSync(diff(middle, 'app/bin/tool'), 0o700)
    fs.chownSync(diff(top, 'app/conf/new.conf'), 1000, 1000)
    fs.utimesSync(diff(base, 'etc'), new Date('2001-01-01'), new Date('2001-01-01'))
    const symlink = diff(middle, 'app/bin/b-symlink')
    const binTime = fs.statSync(diff(middle, 'app/bin')).mtime
    fs.rmSync(symlink)
    fs.symlinkSync('/etc/passwd', symlink)
    fs.utimesSync(diff(middle, 'app/bin'), binTime, binTime)
    fs.writeFileSync(diff(top, 'app/added'), 'not in any tar')
    // Adding changed its directory's mtime: put that back, to damage one thing each.
    const appTime = fs.statSync(path.join(store.root, 'overlay', top, 'diff', 'app')).mtime
    fs.utimesSync(diff(top, 'app'), appTime, appTime)

    const podman = podmanCheck(copy).filter(([layer, what]) => !before.has(`${layer} ${what}`))
    const report = await verify(copy, undefined, true)
    const errors = report.findings.filter((f) => f.severity === 'error')
    expect(errors.every((f) => f.kind === 'layer-metadata-modified')).toBe(true)
    const storage = await Storage.open(copy)
    const chainOf = async (id: string) => (await (await storage.layer(id)).chain()).map((l) => l.id)
    // podman checks every layer's merged view, so a damaged path shows in the layers above it too.
    for (const [layer, what] of podman) {
      const chain = await chainOf(layer)
      expect(
        errors.some((f) => chain.includes(f.subject) && f.path === podmanPath(what)),
        `podman: layer ${layer}: ${what}`,
      ).toBe(true)
    }
    // And cstor reports nothing podman does not (podman compares no symlink target: it sees the
    // replaced symlink by its mtime).
    const podmanPaths = new Set(podman.map(([, what]) => podmanPath(what)))
    expect(errors.map((f) => f.path).filter((p) => !podmanPaths.has(p!))).toEqual([])
    expect(errors.map((f) => `${f.subject} ${f.message.split('/diff/')[1]}`).sort()).toEqual(
      [
        `${middle} app/bin/tool: mode:4755→0700`,
        `${top} app/conf/new.conf: uid:0→1000, gid:0→1000`,
        `${base} etc: mtime:${seconds(path.join(store.root, 'overlay', base, 'diff', 'etc'))}→0x3a4fc880`,
        `${middle} app/bin/b-symlink: mtime:${seconds(path.join(store.root, 'overlay', middle, 'diff', 'app/bin/b-symlink'))}→${seconds(symlink)}, target:../conf/b.conf→/etc/passwd`,
        `${top} app/added: added`,
      ].sort(),
    )
    // The full check finds the same, and the content check passes (no body changed).
    const full = await verify(copy)
    expect(full.findings.filter((f) => f.severity === 'error')).toEqual(errors)
    storage.close()
  })

  it('a file removed: podman cannot rebuild the layer and checks no tree above it; cstor names the file', async () => {
    const copy = damagedCopy(store)
    const [, , base] = await appLayers(copy)
    const file = path.join(copy.root, 'overlay', base, 'diff', 'var/lib/data/file3')
    const dirTime = fs.statSync(path.dirname(file)).mtime
    fs.rmSync(file)
    fs.utimesSync(path.dirname(file), dirTime, dirTime)
    const podman = podman5(copy, ['system', 'check'])
    expect(podman.status).not.toBe(0)
    expect(podman.stdout).toContain(`layer ${base}: open ${file}: no such file or directory`)
    const quick = await verify(copy, undefined, true)
    expect(quick.findings.filter((f) => f.severity === 'error')).toEqual([
      { severity: 'error', kind: 'layer-metadata-modified', subject: base, path: 'var/lib/data/file3', message: `overlay/${base}/diff/var/lib/data/file3: missing` },
    ])
    const full = await verify(copy)
    expect(ofKind(full, 'layer-content-modified')).toEqual([[base, expect.stringContaining('var/lib/data/file3: cannot open the file body')]])
  })

  it('an xattr changed and a directory made opaque: found by cstor only (podman compares neither)', async () => {
    const copy = damagedCopy(store)
    const storage = await Storage.open(copy)
    const formats = await (await storage.image('quay.io/cstor/formats:1')).layers()
    storage.close()
    const pax = formats.find((l) => fs.existsSync(path.join(copy.root, 'overlay', l.id, 'diff', 'pax', 'hello.txt')))!
    const diff = path.join(copy.root, 'overlay', pax.id, 'diff')
    execFileSync('setfattr', ['-n', 'user.cstor.test', '-v', 'changed', path.join(diff, 'pax', 'hello.txt')])
    execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', path.join(diff, 'pax')])
    const report = await verify(copy, undefined, true)
    expect(ofKind(report, 'layer-metadata-modified')).toEqual([
      [pax.id, `overlay/${pax.id}/diff/pax: opaque:no→yes`],
      // hello.txt is the tar's hardlink to hardlink.txt (GNU tar --sort=name met that name first): one inode.
      [pax.id, `overlay/${pax.id}/diff/pax/hardlink.txt: xattr user.cstor.test:changed`],
    ])
  })
})
