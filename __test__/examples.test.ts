/**
 * examples/*.mjs run as a user would run them — `node examples/x.mjs`, importing the package by
 * its name (`cstor`, resolved through package.json `exports` to the built dist/) — against the
 * fixture store, their output checked against the API and the files they write.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Storage } from '../ts/index'
import { main, repo } from './helpers'

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-examples-'))
afterAll(() => fs.rmSync(work, { recursive: true, force: true }))

/** Runs an example with node from the repository root; the store root from `CSTOR_ROOT` unless given. */
function example(name: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  const result = spawnSync(process.execPath, [path.join(repo, 'examples', name), ...args], {
    cwd: repo,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  })
  expect(result.status, `${name}: ${result.stderr}`).toBe(0)
  return result.stdout
}

describe('examples', () => {
  it('list-images.mjs prints one line per image, root from argv or CSTOR_ROOT', async () => {
    const storage = await Storage.open(main)
    const images = await storage.listImages()
    storage.close()
    const lines = example('list-images.mjs', [main.root]).trim().split('\n')
    expect(lines).toHaveLength(images.length)
    for (const image of images) {
      expect(lines).toContain(`${image.id.slice(0, 12)}  ${String(image.size).padStart(10)}  ${image.names.join(' ') || '<none>'}`)
    }
    expect(example('list-images.mjs', [], { CSTOR_ROOT: main.root }).trim().split('\n')).toEqual(lines)
  })

  it('export-layer.mjs writes a layer tar that hashes to its diff digest', async () => {
    const storage = await Storage.open(main)
    const [top] = await (await storage.image('localhost/app:1')).layers()
    storage.close()
    const file = path.join(work, 'layer.tar')
    const out = example('export-layer.mjs', [top.id.slice(0, 12), file, main.root])
    const digest = `sha256:${createHash('sha256').update(fs.readFileSync(file)).digest('hex')}`
    expect(digest).toBe(top.diffDigest)
    expect(out).toContain(`of layer ${top.id} to ${file}`)
    expect(out).toContain(`${digest} = diff digest ${top.diffDigest}`)
  })

  it('extract-image.mjs writes the merged filesystem, layer by layer', () => {
    const dir = path.join(work, 'rootfs')
    const out = example('extract-image.mjs', ['localhost/app:1', dir], { CSTOR_ROOT: main.root })
    expect(out).toMatch(/^layer 1\/3\nlayer 2\/3\nlayer 3\/3\nextracted localhost\/app:1 into /)
    expect(fs.readFileSync(path.join(dir, 'etc', 'os-release'), 'utf8')).toContain('NAME=cstor-fixture')
    expect(fs.existsSync(path.join(dir, 'etc', 'motd'))).toBe(false) // deleted by the app's top layer
  })

  it('serve.mjs serves the store on a socket and reads it back with RpcClient', async () => {
    const storage = await Storage.open(main)
    const [images, layers] = await Promise.all([storage.listImages(), storage.listLayers()])
    storage.close()
    const out = example('serve.mjs', [main.root])
    expect(out).toMatch(new RegExp(`^/\\S+/cstor\\.sock: ${images.length} images, ${layers.length} layers$`, 'm'))
    expect(out).toMatch(/^layer [0-9a-f]{64} of \S+: a stream and \d+ content fds$/m)
  })
})
