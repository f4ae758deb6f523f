/**
 * Bad input to every public function and CLI verb — wrong types, missing arguments, references
 * to nothing, paths and fds that cannot be used, files the caller may not read — gives the typed
 * error its code promises (CLI: exit 1 with the code, or 2 for usage), never a TypeError or a
 * Node error of another family. `cli.test.ts` has the basic exit codes; this is the whole surface.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  assembleSplitFdStream,
  CstorError,
  ImageProxy,
  RpcClient,
  Storage,
  tarDiff,
  type ErrorCode,
  type Image,
  type Layer,
  type RpcServer,
} from '../ts/index'
import { cliOn, copyStore, main, repo } from './helpers'
import { scratchDir } from './scratch'

let storage: Storage
let image: Image
let layer: Layer
let dir: string
let server: RpcServer
/** An fd open for reading only: writing a tar to it must fail. */
let readOnlyFd: number
beforeAll(async () => {
  storage = await Storage.open(main)
  image = await storage.image('localhost/app:1')
  layer = (await image.layers())[0]
  dir = scratchDir('cstor-bad-input-')
  fs.writeFileSync(path.join(dir, 'file'), 'not a tar, not a splitfdstream')
  readOnlyFd = fs.openSync(path.join(dir, 'file'), 'r')
  server = await storage.serve(path.join(dir, 'rpc.sock'))
})
afterAll(() => {
  server.close()
  storage.close()
  fs.closeSync(readOnlyFd)
  fs.rmSync(dir, { recursive: true, force: true })
})

/** Calls `work`, which must fail with a `CstorError` of `code`; returns its message. */
async function failsWith(code: ErrorCode, work: () => unknown): Promise<string> {
  const err = await (async () => work())().then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err, 'succeeded').toBeInstanceOf(CstorError)
  expect((err as CstorError).code, (err as Error).message).toBe(code)
  return (err as Error).message
}

/** A value of the wrong type, past TypeScript's checks, as a plain JavaScript caller could pass it. */
const js = (value: unknown) => value as never

describe('API: wrong types and missing arguments are EINVAL', () => {
  const cases: [string, () => unknown][] = [
    ['Storage.open()', () => Storage.open(js(undefined))],
    ['Storage.open(null)', () => Storage.open(js(null))],
    ['Storage.open({})', () => Storage.open(js({}))],
    ['Storage.open({ root: 42 })', () => Storage.open(js({ root: 42 }))],
    ['Storage.open({ driver: 5 })', () => Storage.open({ ...main, driver: js(5) })],
    ['Storage.open({ additionalImageStores: "x" })', () => Storage.open({ ...main, additionalImageStores: js('x') })],
    ['Storage.discover({ root: 5 })', () => Storage.discover(js({ root: 5 }))],
    ['storage.image()', () => storage.image(js(undefined))],
    ['storage.image(42)', () => storage.image(js(42))],
    ["storage.image('')", () => storage.image('')],
    ['storage.layer({})', () => storage.layer(js({}))],
    ["storage.layer('')", () => storage.layer('')],
    ['storage.resolveLink(5)', () => storage.resolveLink(js(5))],
    ["storage.resolveLink('')", () => storage.resolveLink('')],
    ["storage.resolveLink('../x')", () => storage.resolveLink('../x')],
    ['storage.serve(5)', () => storage.serve(js(5))],
    ['image.bigData()', () => image.bigData(js(undefined))],
    ['image.extract(42)', () => image.extract(js(42))],
    ["image.extract('')", () => image.extract('')],
    ['image.extract({ reflinks: "y" })', () => image.extract(path.join(dir, 'e1'), { reflinks: js('y') })],
    ['image.extract({ onProgress: 5 })', () => image.extract(path.join(dir, 'e2'), { onProgress: js(5) })],
    ['image.toc({ whiteouts: "x" })', () => image.toc({ whiteouts: js('x') })],
    ['image.toc({ digests: "x" })', () => image.toc({ digests: js('x') })],
    ['image.copyToOci(5)', () => image.copyToOci(js(5))],
    ['image.copyTo(5)', () => image.copyTo(js(5))],
    ['image.copyTo("nowhere")', () => image.copyTo('nowhere')],
    ['image.copyTo({ compression: "lz4" })', () => image.copyTo(`oci:${path.join(dir, 'o3')}`, { compression: js('lz4') })],
    ['image.copyTo({ tlsVerify: "no" })', () => image.copyTo(`oci:${path.join(dir, 'o4')}`, { tlsVerify: js('no') })],
    ['image.copyToOci({ compression: "lz4" })', () => image.copyToOci(path.join(dir, 'o1'), { compression: js('lz4') })],
    ['image.copyToOci({ platform: "windows/arm" })', () => image.copyToOci(path.join(dir, 'o2'), { platform: 'windows/arm' })],
    ['layer.exportToFd("x")', () => layer.exportToFd(js('x'))],
    ['layer.exportToFd(-1)', () => layer.exportToFd(-1)],
    ['layer.exportToFd(99999)', () => layer.exportToFd(99999)],
    ['layer.exportToFile(5)', () => layer.exportToFile(js(5))],
    ['layer.export({ verify: "x" })', async () => {
      for await (const _ of layer.export({ verify: js('x') })) {
        // drained for its error
      }
    }],
    ['layer.splitFdStream({ inlineThreshold: "x" })', () => layer.splitFdStream({ inlineThreshold: js('x') })],
    ['layer.toc({ digests: 5 })', () => layer.toc({ digests: js(5) })],
    ['layer.extract({ whiteouts: "x" })', () => layer.extract(path.join(dir, 'e3'), { whiteouts: js('x') })],
    ['assembleSplitFdStream("x", [], 1)', () => assembleSplitFdStream(js('x'), [], 1)],
    ['assembleSplitFdStream(-1, [], 1)', () => assembleSplitFdStream(-1, [], 1)],
    ['assembleSplitFdStream(fd, [99999], 1)', () => assembleSplitFdStream(readOnlyFd, [99999], 1)],
    ['tarDiff(5, 6)', () => tarDiff(js(5), js(6))],
    ['new RpcClient(5).listImages()', () => new RpcClient(js(5)).listImages()],
    ['rpcClient.call with circular params', () => {
      const params: Record<string, unknown> = {}
      params.self = params
      return new RpcClient(server.path).call('ListImages', params)
    }],
    ['ImageProxy.start({ skopeoOptions: 5 })', () => ImageProxy.start({ skopeoOptions: js(5) })],
  ]
  for (const [name, work] of cases) it(name, () => failsWith('EINVAL', work))
})

describe('API: references to nothing', () => {
  it('images, layers, links and big data that do not exist', async () => {
    for (const reference of ['nope', 'sha256:', 'x@sha256:zz', '\0', 'a'.repeat(1 << 20), 'f'.repeat(64)]) {
      await failsWith('ENOIMAGE', () => storage.image(reference))
      await failsWith('ENOLAYER', () => storage.layer(reference))
    }
    await failsWith('ENOLAYER', () => storage.resolveLink('AAAAAAAAAAAAAAAAAAAAAAAAAA'))
    // A key the image does not have: the store lacks what was asked for.
    expect(await failsWith('ECORRUPT', () => image.bigData('nope'))).toContain('no big-data item "nope"')
    const client = new RpcClient(server.path)
    await failsWith('ENOLAYER', () => client.getLayerSplitFdStream('nope'))
    await failsWith('ENOLAYER', async () => {
      for await (const _ of client.streamLayer('nope')) {
        // drained for its error
      }
    })
    await failsWith('EREMOTE', () => client.call('NoSuchMethod'))
  })

  it('a closed store refuses every call', async () => {
    const closed = await Storage.open(main)
    const closedLayer = await closed.layer(layer.id)
    closed.close()
    for (const work of [() => closed.listImages(), () => closed.image('localhost/app:1'), () => closedLayer.chain(), () => closedLayer.exportToFd(1)]) {
      expect(await failsWith('EINVAL', work)).toContain('closed')
    }
  })
})

describe('API: paths and fds that cannot be used', () => {
  const file = () => path.join(dir, 'file')
  it('stores that are not there', async () => {
    await failsWith('ENOSTORE', () => Storage.open({ root: '' }))
    await failsWith('ENOSTORE', () => Storage.open({ root: file() }))
    await failsWith('ENOSTORE', () => Storage.open({ ...main, additionalImageStores: ['/nonexistent/cstor'] }))
  })

  it('outputs that cannot be written', async () => {
    await failsWith('ENOENT', () => layer.exportToFile('/nonexistent/cstor/layer.tar'))
    await failsWith('EIO', () => layer.exportToFile(dir))
    await failsWith('EIO', () => layer.exportToFd(readOnlyFd))
    await failsWith('EINVAL', () => image.extract(dir))
    await failsWith('EIO', () => image.extract(path.join(file(), 'x')))
    await failsWith('EIO', () => image.copyToOci(file()))
    await failsWith('ENOENT', () => storage.serve('/nonexistent/cstor/s.sock'))
    await failsWith('EIO', () => storage.serve(file()))
    expect(fs.readdirSync(dir).sort()).toEqual(['file', 'rpc.sock'])
  })

  it('inputs that are not what they should be', async () => {
    await failsWith('ECORRUPT', () => assembleSplitFdStream(readOnlyFd, [], readOnlyFd))
    await failsWith('ENOENT', () => tarDiff('/nonexistent/a.tar', file()))
    await failsWith('EIO', () => tarDiff(dir, dir))
    await failsWith('ECORRUPT', () => tarDiff(file(), file()))
    await failsWith('ENOENT', () => new RpcClient('/nonexistent/cstor.sock').listImages())
    await failsWith('EIO', () => new RpcClient(file()).listImages())
    await failsWith('ENOENT', () => ImageProxy.start({ skopeo: '/nonexistent/skopeo' }))
  })
})

describe('CLI: every verb with bad input', () => {
  type Case = [args: string[], status: number, stderr: RegExp]
  const usage = (args: string[]): Case => [args, 2, /Run 'cstor --help'/]
  const fails = (args: string[], code: ErrorCode, status = 1): Case => [args, status, new RegExp(`\\(${code}\\)$`, 'm')]
  it('exits 2 with usage, or 1 with a one-line message and its code', () => {
    const top = layer.id
    const out = (name: string) => path.join(dir, name)
    const cases = [
      usage(['layer', 'inspect']),
      usage(['layer', 'export']),
      usage(['layer', 'toc']),
      usage(['layer', 'extract', top]),
      usage(['layer', 'extract', top, out('x'), '--whiteouts', 'bogus']),
      usage(['layer', 'bogus']),
      usage(['image', 'layers']),
      usage(['image', 'toc']),
      usage(['image', 'extract', 'app']),
      usage(['copy', 'app']),
      usage(['copy', 'app', `oci:${out('o')}`, '--compress', 'lz4']),
      usage(['serve']),
      usage(['resolve-link']),
      usage(['tar-diff', '/etc/hostname']),
      usage(['--storage-opt', 'foo=bar', 'image', 'list']),
      usage(['--root']),
      fails(['layer', 'inspect', 'nope'], 'ENOLAYER'),
      fails(['layer', 'export', 'nope', '-o', out('x.tar')], 'ENOLAYER'),
      fails(['layer', 'export', top, '-o', '/nonexistent/cstor/x.tar'], 'ENOENT'),
      fails(['layer', 'toc', 'nope'], 'ENOLAYER'),
      fails(['layer', 'extract', 'nope', out('x')], 'ENOLAYER'),
      fails(['image', 'layers', 'nope'], 'ENOIMAGE'),
      fails(['image', 'toc', 'nope'], 'ENOIMAGE'),
      fails(['image', 'toc', 'app', '--whiteouts', 'bogus'], 'EINVAL'),
      fails(['image', 'extract', 'app', dir], 'EINVAL'),
      fails(['image', 'extract', 'app', '/etc/hostname/x'], 'EIO'),
      fails(['copy', 'nope', `oci:${out('o')}`], 'ENOIMAGE'),
      // An unknown transport or an empty path is a bad argument, as for pull.
      fails(['copy', 'app', 'dir:/x'], 'EINVAL'),
      fails(['copy', 'app', 'oci:'], 'EINVAL'),
      fails(['copy', 'app', 'docker-archive:/nonexistent/cstor/x.tar'], 'ENOENT'),
      fails(['copy', 'app', `oci:${out('o')}`, '--platform', 'windows/arm'], 'EINVAL'),
      fails(['serve', '--socket', '/nonexistent/cstor/s.sock'], 'ENOENT'),
      fails(['resolve-link', '../../x'], 'EINVAL'),
      fails(['--storage-opt', 'additionalimagestore=/nonexistent/cstor', 'image', 'list'], 'ENOSTORE'),
      // tar-diff's trouble is 2, as diff's is.
      fails(['tar-diff', '/nonexistent/a.tar', '/etc/hostname'], 'ENOENT', 2),
    ]
    for (const [args, status, message] of cases) {
      const result = cliOn(main, args)
      expect(result.status, `cstor ${args.join(' ')}: ${result.stderr}`).toBe(status)
      expect(result.stderr, args.join(' ')).toMatch(message)
      expect(result.stderr).not.toMatch(/internal error/)
    }
    expect(fs.readdirSync(dir).sort()).toEqual(['file', 'rpc.sock'])
  })
})

describe('files the caller may not read', () => {
  /** Runs the CLI as `nobody` (root reads everything, so unreadable needs another user). */
  function asNobody(args: string[]) {
    return spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, path.join(repo, 'dist', 'cli', 'main.js'), ...args], {
      encoding: 'utf8',
      env: { ...process.env, HOME: '/nonexistent' },
    })
  }

  it('a store root, and a layer of a readable store, that nobody may read give EACCES', () => {
    const hidden = asNobody(['--root', main.root, 'image', 'list'])
    expect(hidden.status, hidden.stderr).toBe(1)
    expect(hidden.stderr).toContain(`${main.root}: Permission denied`)
    expect(hidden.stderr).toMatch(/\(EACCES\)$/m)

    const copy = copyStore(main)
    try {
      // Readable metadata, one unreadable tar-split: the listing works, that layer's export does not.
      execFileSync('chmod', ['-R', 'a+rX', path.dirname(copy.root)])
      fs.chmodSync(path.join(copy.root, 'overlay-layers', `${layer.id}.tar-split.gz`), 0o600)
      expect(asNobody(['--root', copy.root, 'layer', 'list']).status).toBe(0)
      const exported = asNobody(['--root', copy.root, 'layer', 'export', layer.id])
      expect(exported.status, exported.stderr).toBe(1)
      expect(exported.stderr).toMatch(/tar-split\.gz: Permission denied .*\(EACCES\)$/m)
    } finally {
      copy.cleanup()
    }
  })
})
