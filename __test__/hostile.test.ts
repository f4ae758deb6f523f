/**
 * Every public read, export, extraction, TOC, splitfdstream, OCI copy, RPC, registry and CLI entry point,
 * run on each case of the hostile-store corpus (`hostile-stores.ts`). Each call must end — in a
 * correct result or a typed `CstorError` that is not `EINTERNAL` (a panic) — within its time
 * limit; nothing outside the store may be read (the canary's content appears in no result) or
 * written (the canaries' directory is unchanged, nothing appears beside the target), and no fd
 * may be left open once the store is closed. `errors.test.ts` checks the exact error of a few of
 * these cases; this file checks every entry point against all of them.
 */
import { createHash } from 'node:crypto'
import http from 'node:http'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { assembleSplitFdStream, CstorError, RpcClient, Storage, type AccessLogEntry, type Image, type ImageFs, type Layer, type LayerPart, type SplitFdStream } from '../ts/index'
import { CASES, crc64GoIso, sandbox, snapshot, victimOf, type HostileCase, type Sandbox } from './hostile-stores'
import { cliOn, openFds, settledFds } from './helpers'

/** Far above any of these calls on a fixture store (they take milliseconds): reaching it is a hang. */
const CALL_LIMIT_MS = 20_000

type Outcome = { call: string; code: string | null; text: string }

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`


/** A layer's overlay link name as the store has it, whatever it is ('' when unreadable). */
function linkName(s: Sandbox, id: string): string {
  try {
    return fs.readFileSync(path.join(s.store.root, 'overlay', id, 'link'), 'utf8').trim()
  } catch {
    return ''
  }
}

/** Runs one call with a time limit; its result or typed error, as text to search for the canary. */
async function attempt(outcomes: Outcome[], call: string, work: () => Promise<unknown>): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${call}: no answer in ${CALL_LIMIT_MS} ms (a hang)`)), CALL_LIMIT_MS)
  })
  try {
    const value = await Promise.race([work(), limit])
    outcomes.push({ call, code: null, text: textOf(value) })
    return value
  } catch (err) {
    if (!(err instanceof CstorError)) throw new Error(`${call}: an untyped error: ${String(err)}`, { cause: err })
    outcomes.push({ call, code: err.code, text: err.message })
    return undefined
  } finally {
    clearTimeout(timer)
  }
}

function textOf(value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString('latin1')
  if (value === undefined || typeof value === 'function') return ''
  return JSON.stringify(value, (_k, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : typeof v === 'bigint' ? String(v) : v)) ?? ''
}

async function drain(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** A layer's parts read back into its tar, every fd closed. */
async function partsTar(parts: AsyncIterable<LayerPart>): Promise<Buffer> {
  const pieces: Buffer[] = []
  for await (const part of parts) {
    if (part.kind === 'segment') pieces.push(part.data)
    else {
      try {
        pieces.push(fs.readFileSync(part.fd))
      } finally {
        fs.closeSync(part.fd)
      }
    }
  }
  return Buffer.concat(pieces)
}

/** A splitfdstream assembled into a file under the target, every fd closed. */
async function assembled(s: Sandbox, name: string, get: () => Promise<SplitFdStream>): Promise<Buffer> {
  const stream = await get()
  const file = path.join(s.target, name)
  const out = fs.openSync(file, 'w')
  try {
    await assembleSplitFdStream(stream.stream, stream.content, out)
  } finally {
    fs.closeSync(out)
    for (const fd of [stream.stream, ...stream.content]) fs.closeSync(fd)
  }
  return fs.readFileSync(file)
}

/** Every regular file's content in an image's (or a layer's) filesystem, read in place. */
async function filesOf(tree: ImageFs): Promise<Buffer> {
  const contents: Buffer[] = []
  for await (const entry of tree.entries()) if (entry.isFile()) contents.push(await tree.readFile(entry.path))
  return Buffer.concat(contents)
}

/** Every regular file's content under `dir`, not following symlinks, for the canary search. */
function contentsUnder(dir: string): string {
  let text = ''
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath, entry.name)
    if (entry.isFile()) text += fs.readFileSync(file).toString('latin1')
  }
  return text
}

/**
 * Runs every entry point on the damaged store. A tar that an export, the parts, a splitfdstream
 * or the RPC server produced must hash to the layer's diff-digest (a damaged layer must fail, not
 * give another tar), unless the case edited tar headers inside tar-split segments.
 */
async function battery(s: Sandbox, c: HostileCase, victim: ReturnType<typeof victimOf>): Promise<Outcome[]> {
  const outcomes: Outcome[] = []
  const tried = <T>(call: string, work: () => Promise<T>) => attempt(outcomes, call, work) as Promise<T | undefined>
  const digests = new Map<string, string | null | undefined>()
  const checked = async (call: string, layer: Layer, work: () => Promise<Buffer>) => {
    const tar = await tried(call, work)
    if (tar && !c.exportsMayDiffer) expect(sha256(tar), `${call} of ${layer.id}`).toBe(digests.get(layer.id))
  }

  const storage = await tried('Storage.open', () => Storage.open({ ...s.store, unshare: false }))
  if (!storage) return outcomes
  try {
    await tried('listImages', () => storage.listImages())
    for (const layer of (await tried('listLayers', () => storage.listLayers())) ?? []) digests.set(layer.id, layer.diffDigest)
    await tried('image(name)', () => storage.image('localhost/app:1'))
    const image = await tried<Image>('image(id)', () => storage.image(victim.image))
    if (image) {
      const details = await tried('inspect', () => image.inspect())
      for (const key of ['manifest', '../../../outside/canary.txt', '=not base64!', '', 'manifest/../manifest']) {
        await tried(`bigData(${JSON.stringify(key)})`, () => image.bigData(key))
      }
      for (const layer of details?.layers ?? []) digests.set(layer.id, layer.diffDigest)
      await tried('image.toc', () => image.toc({ digests: true, whiteouts: 'list' }))
      // Every file of the merged view read in place: what comes back must be the image's, never
      // the canary outside the store.
      await tried('image.fs', () => filesOf(image.fs))
      await tried('image.fs.realpath', () => image.fs.realpath('/../../../outside/canary.txt'))
      await tried('image.diff', () => image.diff())
      await tried('image.analyze', () => image.analyze())
      await tried('image.extract', () => image.extract(path.join(s.target, 'image')))
      await tried('image.copyToOci', () => image.copyToOci(path.join(s.target, 'oci'), { refName: 'x' }))
    }
    for (const [i, id] of victim.layers.entries()) {
      const layer = await tried<Layer>(`layer(${i})`, () => storage.layer(id))
      if (!layer) continue
      await tried(`chain(${i})`, () => layer.chain())
      await tried(`lowerChain(${i})`, () => layer.lowerChain())
      await tried(`resolveLink(${i})`, () => storage.resolveLink(linkName(s, id)))
      await checked(`export(${i})`, layer, () => drain(layer.export()))
      await checked(`export(${i}, no verify)`, layer, () => drain(layer.export({ verify: false })))
      await checked(`exportToFile(${i})`, layer, async () => {
        const file = path.join(s.target, `layer-${i}.tar`)
        await layer.exportToFile(file)
        return fs.readFileSync(file)
      })
      await checked(`parts(${i})`, layer, () => partsTar(layer.parts()))
      await checked(`splitFdStream(${i})`, layer, () => assembled(s, `sfd-${i}.tar`, () => layer.splitFdStream({ inlineThreshold: 0 })))
      await tried(`layer.toc(${i})`, () => layer.toc({ digests: true }))
      await tried(`layer.fs(${i})`, () => filesOf(layer.fs))
      const whiteouts = (['overlay', 'aufs', 'apply'] as const)[i % 3]
      await tried(`layer.extract(${i}, ${whiteouts})`, () => layer.extract(path.join(s.target, `layer-${i}`), { whiteouts }))
    }

    const server = await tried('serve', () => storage.serve(path.join(s.target, 'rpc.sock')))
    if (server) {
      try {
        const client = new RpcClient(server.path)
        await tried('rpc ListImages', () => client.listImages())
        await tried('rpc ListLayers', () => client.listLayers())
        const top = { id: victim.top } as Layer
        await checked('rpc GetLayerSplitfdstream', top, () => assembled(s, 'rpc.tar', () => client.getLayerSplitFdStream(victim.top)))
        await checked('rpc StreamLayer', top, () => partsTar(client.streamLayer(victim.top)))
      } finally {
        server.close()
      }
    }
    await registryBattery(c, storage, tried, digests)
  } finally {
    storage.close()
  }

  // The CLI runs over the same API; these two verbs check that it reports, not crashes.
  for (const args of [
    ['layer', 'export', victim.top, '-o', path.join(s.target, 'cli.tar')],
    ['image', 'extract', victim.image, path.join(s.target, 'cli-rootfs')],
  ]) {
    const result = cliOn(s.store, args)
    expect([0, 1], `cstor ${args.join(' ')}: ${result.stderr}`).toContain(result.status)
    expect(result.stderr).not.toMatch(/internal error|EINTERNAL|panicked/)
    outcomes.push({ call: `cli ${args[0]} ${args[1]}`, code: result.status === 0 ? null : 'exit 1', text: result.stdout + result.stderr })
  }
  return outcomes
}

/** A GET on its own connection (closed after the response): the body, or null when it broke off. */
function httpGet(url: string): Promise<{ status: number; body: Buffer | null }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('error', () => {})
        response.on('close', () => resolve({ status: response.statusCode ?? 0, body: response.complete ? Buffer.concat(chunks) : null }))
      })
      .on('error', reject)
  })
}

/**
 * The registry server on the damaged store: the catalog, each repository's tags, manifests and
 * blobs. Every request must be answered — a status and error JSON, or a body cut off on purpose
 * (a layer found damaged mid-transfer, logged with its error) — never lost to a panic, and a
 * whole blob must hash to the digest it was asked by.
 */
async function registryBattery(
  c: HostileCase,
  storage: Storage,
  tried: <T>(call: string, work: () => Promise<T>) => Promise<T | undefined>,
  digests: Map<string, string | null | undefined>,
): Promise<void> {
  const log: AccessLogEntry[] = []
  const registry = await tried('serveRegistry', () => storage.serveRegistry({ address: '127.0.0.1:0', onRequest: (entry) => log.push(entry) }))
  if (!registry) return
  let requests = 0
  const get = (call: string, target: string, digest?: string) =>
    tried(call, async () => {
      requests++
      const reply = await httpGet(`http://${registry.address}${target}`)
      const known = [...digests.values()].includes(digest)
      if (reply.status === 200 && reply.body && digest && known && !c.exportsMayDiffer) expect(sha256(reply.body), call).toBe(digest)
      return reply
    })
  try {
    const catalog = await get('registry catalog', '/v2/_catalog')
    const repositories: string[] = catalog?.status === 200 && catalog.body ? JSON.parse(catalog.body.toString()).repositories : []
    for (const repository of repositories) {
      const tags = await get(`registry tags ${repository}`, `/v2/${repository}/tags/list`)
      const [tag] = tags?.status === 200 && tags.body ? (JSON.parse(tags.body.toString()).tags as string[]) : []
      if (!tag) continue
      const manifest = await get(`registry manifest ${repository}:${tag}`, `/v2/${repository}/manifests/${tag}`)
      if (manifest?.status !== 200 || !manifest.body) continue
      const { config, layers } = JSON.parse(manifest.body.toString())
      for (const blob of [config, ...layers]) await get(`registry blob ${blob.digest}`, `/v2/${repository}/blobs/${blob.digest}`, blob.digest)
    }
  } finally {
    registry.close()
  }
  for (let i = 0; i < 100 && log.length < requests; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  expect(log.length, 'every registry request answered (none lost to a panic)').toBe(requests)
}

const tally = { cases: 0, calls: 0, errors: {} as Record<string, number> }

describe('hostile stores: a typed error or a correct result, never an escape, a hang or a panic', () => {
  it('computes tar-split CRCs as Go does', () => {
    expect(crc64GoIso(Buffer.from('123456789')).toString('hex')).toBe('b90956c775a41001')
  })

  for (const c of CASES) {
    it(c.name, { timeout: 120_000 }, async () => {
      const s = sandbox()
      try {
        const victim = victimOf(s)
        c.damage(s, victim)
        const outside = snapshot(s.outside)
        const beside = fs.readdirSync(s.dir).sort()
        const fds = openFds()

        const outcomes = await battery(s, c, victim)

        expect(await settledFds(fds), 'fds left open').toBe(fds)
        expect(snapshot(s.outside), 'the canaries outside the store changed').toEqual(outside)
        expect(fs.readdirSync(s.dir).sort(), 'something appeared beside the store and target').toEqual(beside)
        for (const o of outcomes) {
          expect(o.code, `${o.call}: ${o.text}`).not.toBe('EINTERNAL')
          expect(o.text.includes(s.marker), `${o.call} read the canary out of the store`).toBe(false)
        }
        expect(contentsUnder(s.target).includes(s.marker), 'an export or extraction copied the canary').toBe(false)
        tally.cases++
        tally.calls += outcomes.length
        for (const o of outcomes) tally.errors[o.code ?? 'ok'] = (tally.errors[o.code ?? 'ok'] ?? 0) + 1
      } finally {
        s.cleanup()
      }
    })
  }

  it('counts', () => {
    console.log(`hostile stores: ${tally.cases} cases, ${tally.calls} calls, outcomes ${JSON.stringify(tally.errors)}; escapes 0, panics 0, hangs 0`)
    expect(tally.cases).toBe(CASES.length)
  })
})
