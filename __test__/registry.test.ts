/**
 * The store served as a read-only OCI registry, checked by real clients: skopeo and podman pull
 * every fixture image into fresh stores (same image IDs and diff IDs), the OCI distribution-spec
 * conformance suite's pull workflow passes, and the HTTP side answers as the spec says (errors,
 * pagination, HEAD, Range), over TLS and with htpasswd -B basic auth too, one access-log line
 * per request. Loads (1 GB+, 32 clients, rmi) are in registry-load.test.ts.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Storage, type AccessLogEntry, type RegistryServer } from '../ts/index'
import { fixtures, main, podmanJson, repo, storageConf, type FixtureStore } from './helpers'

const env = { ...process.env, CONTAINERS_STORAGE_CONF: storageConf }
let storage: Storage
let server: RegistryServer
let base: string
let dir: string
const log: AccessLogEntry[] = []
const fixtureNames = fs.readFileSync(path.join(fixtures, 'images.txt'), 'utf8').trim().split('\n')

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-registry-'))
  storage = await Storage.open(main)
  server = await storage.serveRegistry({ address: '127.0.0.1:0', onRequest: (entry) => log.push(entry) })
  base = `http://${server.address}`
})
afterAll(() => {
  server.close()
  for (const store of fs.readdirSync(dir).filter((n) => n.startsWith('store-'))) {
    spawnSync('umount', [path.join(dir, store, 'root', 'overlay')], { stdio: 'ignore' })
  }
  fs.rmSync(dir, { recursive: true, force: true })
})

const sha256 = (bytes: Buffer | Uint8Array) => `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`
const get = async (url: string, init: RequestInit = {}) => {
  const response = await fetch(url, init)
  return { response, body: Buffer.from(await response.arrayBuffer()) }
}
const errorCode = (body: Buffer) => JSON.parse(body.toString()).errors[0].code
/** Waits (up to 5 s) for `done`: a log line is written once its response is sent, which may be after the client has it. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) await new Promise((r) => setTimeout(r, 50))
}

/** A fresh store that podman has initialised. */
function freshStore(name: string): FixtureStore {
  const store = { root: path.join(dir, `store-${name}`, 'root'), runroot: path.join(dir, `store-${name}`, 'run') }
  podmanJson(store, ['images', '--format', 'json'])
  return store
}

/** What the pulled image must keep: its ID and its layers' diff IDs. */
const identity = (image: { Id: string; RootFS: { Layers: string[] } }) => ({ id: image.Id, diffIds: image.RootFS.Layers })
const inspect = (store: FixtureStore, name: string) => identity(podmanJson<{ Id: string; RootFS: { Layers: string[] } }[]>(store, ['image', 'inspect', name])[0])

describe('the distribution API, read-only', () => {
  it('GET /v2/ says which API it speaks; the catalog lists every image name without its tag', async () => {
    const { response, body } = await get(`${base}/v2/`)
    expect(response.status).toBe(200)
    expect(response.headers.get('docker-distribution-api-version')).toBe('registry/2.0')
    expect(JSON.parse(body.toString())).toEqual({})
    const catalog = JSON.parse((await get(`${base}/v2/_catalog`)).body.toString())
    const repositories = [...new Set(fixtureNames.map((n) => n.slice(0, n.lastIndexOf(':'))))].sort()
    expect(catalog).toEqual({ repositories })
    const first = await get(`${base}/v2/_catalog?n=2`)
    expect(JSON.parse(first.body.toString()).repositories).toEqual(repositories.slice(0, 2))
    expect(first.response.headers.get('link')).toBe(`</v2/_catalog?last=${repositories[1]}&n=2>; rel="next"`)
    const rest = JSON.parse((await get(`${base}/v2/_catalog?last=${repositories[1]}`)).body.toString())
    expect(rest.repositories).toEqual(repositories.slice(2))
  })

  it('tags list, paginated with n and last', async () => {
    const all = JSON.parse((await get(`${base}/v2/localhost/app/tags/list`)).body.toString())
    expect(all).toEqual({ name: 'localhost/app', tags: ['1', 'latest', 'v1.0'] })
    const page = await get(`${base}/v2/localhost/app/tags/list?n=1&last=1`)
    expect(JSON.parse(page.body.toString()).tags).toEqual(['latest'])
    expect(page.response.headers.get('link')).toBe('</v2/localhost/app/tags/list?last=latest&n=1>; rel="next"')
  })

  it('every fixture image: manifest by tag and by digest, HEAD, and every blob matches its digest', async () => {
    for (const name of fixtureNames) {
      const [repository, tag] = [name.slice(0, name.lastIndexOf(':')), name.slice(name.lastIndexOf(':') + 1)]
      const image = await storage.image(name)
      const byTag = await get(`${base}/v2/${repository}/manifests/${tag}`)
      expect(byTag.response.status, name).toBe(200)
      const digest = byTag.response.headers.get('docker-content-digest')!
      expect(sha256(byTag.body)).toBe(digest)
      const manifest = JSON.parse(byTag.body.toString())
      expect(byTag.response.headers.get('content-type')).toBe(manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json')
      const byDigest = await get(`${base}/v2/${repository}/manifests/${digest}`)
      expect(byDigest.body).toEqual(byTag.body)
      const head = await fetch(`${base}/v2/${repository}/manifests/${tag}`, { method: 'HEAD' })
      expect([head.status, head.headers.get('content-length'), head.headers.get('docker-content-digest')]).toEqual([200, `${byTag.body.length}`, digest])

      // The config byte for byte (so the image ID stays), the layers as their diff IDs.
      expect(manifest.config.digest).toBe(`sha256:${image.id}`)
      const layers = (await image.layers()).reverse()
      expect(manifest.layers.map((l: { digest: string }) => l.digest)).toEqual(layers.map((l) => l.diffDigest))
      for (const blob of [manifest.config, ...manifest.layers]) {
        const { response, body } = await get(`${base}/v2/${repository}/blobs/${blob.digest}`)
        expect(response.status).toBe(200)
        expect([sha256(body), body.length]).toEqual([blob.digest, blob.size])
        const head = await fetch(`${base}/v2/${repository}/blobs/${blob.digest}`, { method: 'HEAD' })
        expect(head.headers.get('content-length')).toBe(`${blob.size}`)
      }
    }
  })

  it('Range: any slice of a layer blob is that slice of the layer export; past the end is 416', async () => {
    const image = await storage.image('quay.io/cstor/formats:1')
    const layer = (await image.layers()).reduce((a, b) => ((a.diffSize ?? 0) > (b.diffSize ?? 0) ? a : b))
    const file = path.join(dir, 'layer.tar')
    await layer.exportToFile(file)
    const tar = fs.readFileSync(file)
    const repository = 'quay.io/cstor/formats'
    const url = `${base}/v2/${repository}/blobs/${layer.diffDigest}`
    const n = tar.length
    for (const [range, start, end] of [
      ['bytes=0-0', 0, 1],
      ['bytes=0-511', 0, 512],
      ['bytes=100-70000', 100, 70001],
      [`bytes=${n - 1000}-`, n - 1000, n],
      ['bytes=-777', n - 777, n],
      [`bytes=5000-${n + 50}`, 5000, n],
    ] as const) {
      const { response, body } = await get(url, { headers: { range } })
      expect(response.status, range).toBe(206)
      expect(response.headers.get('content-range')).toBe(`bytes ${start}-${end - 1}/${n}`)
      expect(body.equals(tar.subarray(start, end)), range).toBe(true)
    }
    const past = await get(url, { headers: { range: `bytes=${n}-` } })
    expect([past.response.status, past.response.headers.get('content-range')]).toEqual([416, `bytes */${n}`])
  })

  it("errors carry the spec's status and code", async () => {
    const cases: [string, RequestInit, number, string][] = [
      ['/v2/localhost/nope/tags/list', {}, 404, 'NAME_UNKNOWN'],
      ['/v2/localhost/nope/manifests/1', {}, 404, 'NAME_UNKNOWN'],
      ['/v2/Bad..Name/manifests/1', {}, 400, 'NAME_INVALID'],
      ['/v2/localhost/app/manifests/missing-tag', {}, 404, 'MANIFEST_UNKNOWN'],
      [`/v2/localhost/app/manifests/sha256:${'0'.repeat(64)}`, {}, 404, 'MANIFEST_UNKNOWN'],
      ['/v2/localhost/app/manifests/sha256:baddigeststring', {}, 400, 'DIGEST_INVALID'],
      [`/v2/localhost/app/blobs/sha256:${'0'.repeat(64)}`, {}, 404, 'BLOB_UNKNOWN'],
      ['/v2/localhost/app/blobs/sha256:zz', {}, 400, 'DIGEST_INVALID'],
      ['/v2/localhost/app/manifests/1', { method: 'PUT', body: '{}' }, 405, 'UNSUPPORTED'],
      ['/v2/localhost/app/manifests/1', { method: 'DELETE' }, 405, 'UNSUPPORTED'],
      ['/v2/localhost/app/blobs/uploads/', { method: 'POST' }, 405, 'UNSUPPORTED'],
      ['/v2/localhost/app/referrers/sha256:' + '0'.repeat(64), {}, 404, 'UNSUPPORTED'],
      ['/v2/no/such/endpoint', {}, 404, 'NOT_FOUND'],
      ['/other', {}, 404, 'NOT_FOUND'],
    ]
    for (const [target, init, status, code] of cases) {
      const { response, body } = await get(`${base}${target}`, init)
      expect([target, response.status, errorCode(body)]).toEqual([target, status, code])
      expect(response.headers.get('content-type')).toBe('application/json')
    }
    // Not HTTP at all: 400, and the connection closed.
    const reply = execFileSync('python3', [
      '-c',
      'import socket,sys; s=socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.sendall(b"\\x00garbage\\r\\n\\r\\n"); print(s.recv(4096).decode().split("\\r\\n")[0])',
      server.address.split(':')[1],
    ]).toString()
    expect(reply.trim()).toBe('HTTP/1.1 400 Bad Request')
  })

  it('one access-log line per request', async () => {
    await get(`${base}/v2/`, { headers: { 'user-agent': 'cstor-test/1' } })
    await get(`${base}/v2/localhost/nope/tags/list`, { headers: { 'user-agent': 'cstor-test/1' } })
    const mine = () => log.filter((entry) => entry.userAgent === 'cstor-test/1')
    await until(() => mine().length >= 2)
    expect(mine().length).toBe(2)
    const [ok, missing] = mine()
    expect(ok).toMatchObject({ method: 'GET', target: '/v2/', status: 200, bytes: 2, userAgent: 'cstor-test/1' })
    expect(ok.error).toBeUndefined()
    expect(ok.line).toMatch(/^127\.0\.0\.1 - - \[\d{4}-\d\d-\d\dT[\d:.]+Z\] "GET \/v2\/" 200 2 "cstor-test\/1" \d+\.\d{3}s$/)
    expect(missing.status).toBe(404)
  })

  it('listens on loopback unless told otherwise', async () => {
    const loopback = await storage.serveRegistry({ address: '0' })
    expect(loopback.address).toMatch(/^127\.0\.0\.1:\d+$/)
    loopback.close()
    const everywhere = await storage.serveRegistry({ address: '0.0.0.0:0' })
    expect(everywhere.address).toMatch(/^0\.0\.0\.0:\d+$/)
    everywhere.close()
    await expect(storage.serveRegistry({ address: 'example.com:5000' })).rejects.toMatchObject({ code: 'EINVAL' })
  })
})

describe('real clients pull every fixture image', () => {
  it('skopeo copy into a fresh store: same image IDs and diff IDs', () => {
    const store = freshStore('skopeo')
    for (const name of fixtureNames) {
      execFileSync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${server.address}/${name}`, `containers-storage:[overlay@${store.root}+${store.runroot}]${name}`], { env })
      expect(inspect(store, name), name).toEqual(inspect(main, name))
    }
  })

  it('podman pull into a fresh store: same image IDs and diff IDs', () => {
    const store = freshStore('podman')
    for (const name of fixtureNames) {
      execFileSync('podman', ['--root', store.root, '--runroot', store.runroot, 'pull', '--quiet', '--tls-verify=false', `${server.address}/${name}`], { env })
      expect(inspect(store, `${server.address}/${name}`), name).toEqual(inspect(main, name))
    }
  })
})

describe('TLS and basic auth', () => {
  it('HTTPS with a PEM certificate and key, and only htpasswd -B users get in', async () => {
    const tls = path.join(dir, 'tls')
    fs.mkdirSync(tls)
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(tls, 'key.pem'), '-out', path.join(tls, 'ca.crt')], { stdio: 'ignore' })
    const htpasswd = path.join(dir, 'htpasswd')
    execFileSync('htpasswd', ['-B', '-b', '-c', htpasswd, 'alice', 's3cret'], { stdio: 'ignore' })
    const secure = await storage.serveRegistry({ address: '127.0.0.1:0', tls: { cert: path.join(tls, 'ca.crt'), key: path.join(tls, 'key.pem') }, htpasswd, onRequest: (e) => log.push(e) })
    try {
      const curl = (...args: string[]) => execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code} %{header_json}', '--cacert', path.join(tls, 'ca.crt'), ...args], { encoding: 'utf8' })
      const url = `https://${secure.address}/v2/`
      const [anonymous] = curl(url).split(' ')
      expect(anonymous).toBe('401')
      expect(JSON.parse(curl(url).slice(4))['www-authenticate']).toEqual(['Basic realm="cstor"'])
      expect(curl('-u', 'alice:wrong', url).split(' ')[0]).toBe('401')
      expect(curl('-u', 'bob:s3cret', url).split(' ')[0]).toBe('401')
      expect(curl('-u', 'alice:s3cret', url).split(' ')[0]).toBe('200')
      // Plain HTTP to the TLS port gets nowhere.
      expect(spawnSync('curl', ['-sf', '-u', 'alice:s3cret', `http://${secure.address}/v2/`]).status).not.toBe(0)

      // skopeo verifies the certificate (the CA from --cert-dir) and logs in.
      const reference = `docker://${secure.address}/localhost/app:1`
      const inspected = JSON.parse(execFileSync('skopeo', ['inspect', '--cert-dir', tls, '--creds', 'alice:s3cret', reference], { env, encoding: 'utf8' }))
      expect(inspected.Layers).toEqual((await (await storage.image('localhost/app:1')).layers()).reverse().map((l) => l.diffDigest))
      const refused = spawnSync('skopeo', ['inspect', '--cert-dir', tls, '--creds', 'alice:wrong', reference], { env, encoding: 'utf8' })
      expect(refused.status).not.toBe(0)
      expect(refused.stderr).toMatch(/unauthorized|authentication required/i)
      const alice = () => log.some((e) => e.user === 'alice' && e.status === 200 && e.line.includes(' - alice ['))
      await until(alice)
      expect(alice()).toBe(true)
    } finally {
      secure.close()
    }
  })
})

describe('the OCI distribution-spec conformance suite', () => {
  it('passes its pull workflow against the store', async () => {
    const binary = execFileSync('bash', [path.join(repo, '__test__', 'fixtures', 'build-conformance.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim()
    const manifest = await get(`${base}/v2/localhost/app/manifests/1`)
    const blobs = JSON.parse(manifest.body.toString())
    const results = path.join(dir, 'conformance')
    const run = spawnSync(binary, ['-test.run', 'TestLegacy'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 300_000,
      env: {
        ...process.env,
        OCI_REGISTRY: server.address,
        OCI_TLS: 'disabled',
        OCI_REPO1: 'localhost/app',
        OCI_REPO2: 'localhost/base',
        OCI_RESULTS_DIR: results,
        OCI_API_PULL: 'true',
        OCI_API_PUSH: 'false',
        OCI_API_BLOBS_DELETE: 'false',
        OCI_API_MANIFESTS_DELETE: 'false',
        OCI_API_TAGS_DELETE: 'false',
        OCI_API_REFERRER: 'false',
        // (Its manifest digest-header check needs the manifest bytes, which read-only data lacks.)
        OCI_API_BLOBS_DIGEST_HEADER: 'true',
        OCI_RO_DATA_TAGS: '1 latest v1.0',
        OCI_RO_DATA_MANIFESTS: manifest.response.headers.get('docker-content-digest')!,
        OCI_RO_DATA_BLOBS: [blobs.config, ...blobs.layers].map((b: { digest: string }) => b.digest).join(' '),
      },
    })
    const report = run.stdout
    // (This version of the suite crashes writing its result files when push is off, after it
    // printed the summary: the summary is what counts.)
    const count = (status: string) => Number(new RegExp(`^\\s+${status}\\.*:\\s+(\\d+)$`, 'm').exec(report)?.[1])
    expect(report, report + run.stderr).toMatch(/^OCI Conformance Result: Pass$/m)
    expect([count('FAIL'), count('Error')]).toEqual([0, 0])
    expect(count('Pass')).toBeGreaterThan(20)
  }, 600_000)
})

describe('cstor serve --registry', () => {
  it('serves until SIGTERM, one access-log line per request on stdout', async () => {
    const child = spawn(process.execPath, [path.join(repo, 'dist', 'cli', 'main.js'), '--root', main.root, '--runroot', main.runroot, 'serve', '--registry', '127.0.0.1:0'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    for (let i = 0; i < 100 && !/http:\/\/([\d.:]+)/.test(stderr); i++) await new Promise((r) => setTimeout(r, 50))
    const address = /http:\/\/([\d.:]+)/.exec(stderr)![1]
    expect((await fetch(`http://${address}/v2/localhost/app/tags/list`)).status).toBe(200)
    expect((await fetch(`http://${address}/v2/nope/tags/list`)).status).toBe(404)
    await until(() => stdout.split('\n').length >= 3)
    const exited = new Promise((resolve) => child.on('exit', resolve))
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    // (Two connections' threads may log in either order.)
    const lines = stdout.trim().split('\n')
    expect(lines).toHaveLength(2)
    expect(lines.filter((l) => /"GET \/v2\/localhost\/app\/tags\/list" 200 /.test(l))).toHaveLength(1)
    expect(lines.filter((l) => /"GET \/v2\/nope\/tags\/list" 404 /.test(l))).toHaveLength(1)
  })

  it('refuses options that do not go together', () => {
    for (const args of [['--tls-cert', 'x.pem'], ['--registry', '0', '--tls-cert', 'x.pem'], ['--socket-group', 'x', '--registry', '0'], []]) {
      const result = spawnSync(process.execPath, [path.join(repo, 'dist', 'cli', 'main.js'), '--root', main.root, 'serve', ...args], { env, encoding: 'utf8' })
      expect([args, result.status]).toEqual([args, 2])
    }
  })
})

