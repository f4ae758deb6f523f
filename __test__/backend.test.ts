/**
 * Every public method of `Storage`, `Image` and `Layer` reaches the store through the backend the
 * store was opened with — so a rootless store, whose backend is the user-namespace helper, gets
 * every method. Each method is called on objects whose backend records the operation started and
 * refuses to run it; a method that finishes without starting one bypassed the backend. A method
 * added without an entry here fails too, so none escapes the check.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { Backend, type Method } from '../ts/backend'
import type { OperationCall } from '../ts/call'
import { Image, ImageFs, Layer, Storage } from '../ts/index'
import { storageOn } from '../ts/storage'

class Refused extends Error {}

/** A backend that records what it was asked to start and refuses it. */
class RecordingBackend extends Backend {
  readonly started: string[] = []

  start(method: Method): OperationCall<never> {
    this.started.push(method)
    throw new Refused(method)
  }

  async close(): Promise<void> {}
}

const IMAGE = { id: 'a'.repeat(64), names: [], namesHistory: [], digests: [], repoDigests: [], size: 0, bigDataNames: [], store: '/', readOnly: false }
const LAYER = { id: 'b'.repeat(64), names: [], uidset: [], gidset: [], flags: {}, bigDataNames: [], store: '/', readOnly: false, volatile: false }

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-backend-'))
const out = (name: string) => path.join(scratch, name)

/** The public methods and accessors a class's instances have (its prototype chain's, own). */
function publicMembers(prototype: object): string[] {
  return Object.getOwnPropertyNames(prototype).filter((name) => name !== 'constructor')
}

/** How each public method is called; `null`: it touches no store (a getter's plain value). */
const CALLS: Record<string, Record<string, ((o: never) => unknown) | null>> = {
  Storage: {
    close: null,
    serve: (s: Storage) => s.serve(out('sock')),
    serveRegistry: (s: Storage) => s.serveRegistry(),
    listImages: (s: Storage) => s.listImages(),
    images: (s: Storage) => s.images().next(),
    image: (s: Storage) => s.image('x'),
    listLayers: (s: Storage) => s.listLayers(),
    layers: (s: Storage) => s.layers().next(),
    layer: (s: Storage) => s.layer('x'),
    verify: (s: Storage) => s.verify(),
    resolveLink: (s: Storage) => s.resolveLink('X'),
    createLayer: (s: Storage) => s.createLayer(process.stdin.fd),
    createImage: (s: Storage) => s.createImage({}),
    tag: (s: Storage) => s.tag('x', 'y'),
    untag: (s: Storage) => s.untag('x', 'y'),
    removeImage: (s: Storage) => s.removeImage('x'),
    removeLayer: (s: Storage) => s.removeLayer('x'),
    pull: (s: Storage) => s.pull('oci:x'),
    import: (s: Storage) => s.import('x.tar'),
    registries: (s: Storage) => s.registries(),
    login: (s: Storage) => s.login('registry.example', { username: 'u', password: 'p' }),
    logout: (s: Storage) => s.logout('registry.example'),
    root: null,
    runroot: null,
    stores: null,
  },
  Image: {
    inspect: (i: Image) => i.inspect(),
    manifest: (i: Image) => i.manifest(),
    config: (i: Image) => i.config(),
    platform: (i: Image) => i.platform(),
    layers: (i: Image) => i.layers(),
    extract: (i: Image) => i.extract(out('extracted')),
    toc: (i: Image) => i.toc(),
    composefs: (i: Image) => i.composefs(out('image.cfs')),
    copyToOci: (i: Image) => i.copyToOci(out('oci')),
    copyTo: (i: Image) => i.copyTo(`oci:${out('oci')}`),
    bigData: (i: Image) => i.bigData('manifest'),
    fs: (i: Image) => i.fs.stat('/'),
    diff: (i: Image) => i.diff(),
    analyze: (i: Image) => i.analyze(),
  },
  Layer: {
    exportToFd: (l: Layer) => l.exportToFd(process.stdout.fd),
    exportToFile: (l: Layer) => l.exportToFile(out('layer.tar')),
    export: (l: Layer) => l.export().toArray(),
    parts: (l: Layer) => l.parts().next(),
    extract: (l: Layer) => l.extract(out('layer')),
    splitFdStream: (l: Layer) => l.splitFdStream(),
    toc: (l: Layer) => l.toc(),
    chain: (l: Layer) => l.chain(),
    lowerChain: (l: Layer) => l.lowerChain(),
    fs: (l: Layer) => l.fs.stat('/'),
  },
  // `image.fs` and `layer.fs`: checked on an image's (the same class serves a layer). The
  // `Stats` and `Dirent` it returns are plain values, with no way to the store.
  ImageFs: {
    stat: (f: ImageFs) => f.stat('/'),
    lstat: (f: ImageFs) => f.lstat('/'),
    exists: (f: ImageFs) => f.exists('/'),
    readdir: (f: ImageFs) => f.readdir('/'),
    readFile: (f: ImageFs) => f.readFile('/etc/os-release'),
    createReadStream: (f: ImageFs) => f.createReadStream('/etc/os-release').toArray(),
    readlink: (f: ImageFs) => f.readlink('/bin/sh'),
    realpath: (f: ImageFs) => f.realpath('/bin/sh'),
    getxattr: (f: ImageFs) => f.getxattr('/', 'user.x'),
    listxattr: (f: ImageFs) => f.listxattr('/'),
    entries: (f: ImageFs) => f.entries().next(),
  },
}


async function storageWith(backend: RecordingBackend): Promise<Storage> {
  const info = { graphRoot: '/r', runRoot: '/rr', storePaths: ['/r'] }
  // `Describe`, which opening a store runs, is answered here; everything else is refused.
  const describing: RecordingBackend = Object.create(backend)
  const call = Backend.prototype.call as (...args: unknown[]) => Promise<unknown>
  describing.call = (async (method: Method, ...rest: unknown[]) => (method === 'Describe' ? info : call.apply(backend, [method, ...rest]))) as RecordingBackend['call']
  return storageOn(describing)
}

describe('every public method goes through the store backend', () => {
  it('the table names every public method of Storage, Image, Layer and ImageFs', () => {
    for (const [name, klass] of Object.entries({ Storage, Image, Layer, ImageFs })) {
      expect(publicMembers(klass.prototype).sort(), name).toEqual(Object.keys(CALLS[name]).sort())
    }
  })

  it.each(Object.entries(CALLS).flatMap(([klass, methods]) => Object.entries(methods).filter(([, how]) => how).map(([method, how]) => [klass, method, how!] as const)))(
    '%s.%s starts an operation on the backend',
    async (klass, _method, how) => {
      const backend = new RecordingBackend()
      const target =
        klass === 'Storage' ? await storageWith(backend) : klass === 'Image' ? new Image(backend, IMAGE) : klass === 'ImageFs' ? new Image(backend, IMAGE).fs : new Layer(backend, LAYER)
      try {
        await (how as (o: unknown) => unknown)(target)
      } catch (err) {
        if (!(err instanceof Refused) && !(err as { cause?: unknown }).cause) throw err
      }
      expect(backend.started.length).toBeGreaterThan(0)
    },
  )
})
