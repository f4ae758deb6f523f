/**
 * `storage.verify()` and `cstor verify`: the fixture store as podman built it is clean; copies of
 * it damaged one way each (a byte of a file, a big-data file or digest, an `l/` link, a layer
 * directory, a layer record) report that damage, naming what is damaged.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Storage, type Finding, type VerifyReport } from '../ts/index'
import { cliOn, copyStore, type FixtureStore, imagesJson, layersJson, main, podmanJson, readJson, storageConf, writeJson } from './helpers'

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup()
})

function damagedCopy(): FixtureStore {
  const copy = copyStore(main)
  cleanups.push(copy.cleanup)
  return copy
}


async function verify(store: FixtureStore, image?: string): Promise<VerifyReport> {
  const storage = await Storage.open(store)
  try {
    return await storage.verify(image === undefined ? {} : { image })
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

describe('a clean store', () => {
  it('has no findings at all, checks every layer and every image, and exits 0', async () => {
    const podmanImages = podmanJson<{ Id: string }[]>(main, ['images', '--all', '--format', 'json'])
    const report = await verify(main)
    expect(report.findings).toEqual([])
    expect(report.clean).toBe(true)
    expect(report.images).toBe(new Set(podmanImages.map((i) => i.Id)).size)
    const storage = await Storage.open(main)
    const layers = await storage.listLayers()
    expect(report.layers).toBe(layers.length)
    expect(report.bytes).toBe(layers.reduce((sum, l) => sum + (l.diffSize ?? 0), 0))
    const progress: number[] = []
    await storage.verify({ image: 'localhost/app:1', onProgress: (p) => progress.push(p.layer) })
    expect(progress).toEqual([0, 1, 2, 2])
    storage.close()
    const cli = cliOn(main, ['verify'])
    expect(cli.status, cli.stderr).toBe(0)
    expect(cli.stdout).toMatch(/^Checked \d+ images, \d+ layers .*: clean, 0 errors/m)
  })

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

describe('damaged copies of the store', () => {
  it('a byte edited in a layer file: a CRC error naming the layer and the file, exit 1', async () => {
    const copy = damagedCopy()
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
    const copy = damagedCopy()
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
    expect(report.findings).toHaveLength(3)
  })

  it('an l/ link removed: the layer and every layer stacked on it', async () => {
    const copy = damagedCopy()
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
    const copy = damagedCopy()
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
    const copy = damagedCopy()
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
    const copy = damagedCopy()
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
    const copy = damagedCopy()
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
