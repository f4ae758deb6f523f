/**
 * Registries as the user configured them for podman, every case run by cstor and by podman with
 * the same files: registries.conf (mirrors, pull-from-mirror, insecure, blocked, short names),
 * certs.d (a private CA, client certificates), credential helpers, policy.json (reject, sigstore
 * signatures made by skopeo 1.22, judged by podman 5.8 too: Debian's podman 4.3 has sigstore
 * patched out; signedBy), and peer mirrors served by `cstor serve
 * --registry`. Registries are Distribution's `docker-registry` on loopback; HOME is a directory
 * of the test's, so both tools read only the files written here (and the system's drop-ins).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Storage } from '../ts/index'
import { cli, copyStore, main, repo, storageConf, type FixtureStore } from './helpers'
import { inPodman5 } from './podman5'
import { authFile, freePort, startRegistry, type LoggedRequest, type Registry } from './registry'

let dir: string
let home: string
let env: NodeJS.ProcessEnv
let primary: Registry
let mirror: Registry
let baseId: string
let baseDigest: string
const saved = { cache: process.env.XDG_CACHE_HOME }
const stores: string[] = []

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-registries-'))
  home = path.join(dir, 'home')
  fs.mkdirSync(path.join(home, '.config', 'containers'), { recursive: true })
  fs.mkdirSync(path.join(dir, 'run'))
  process.env.XDG_CACHE_HOME = path.join(dir, 'cache')
  const { XDG_CONFIG_HOME: _config, DOCKER_CONFIG: _docker, REGISTRY_AUTH_FILE: _auth, ...rest } = process.env
  env = {
    ...rest,
    HOME: home,
    XDG_RUNTIME_DIR: path.join(dir, 'run'),
    CONTAINERS_REGISTRIES_CONF: path.join(dir, 'registries.conf'),
    CONTAINERS_STORAGE_CONF: storageConf,
    PATH: `${path.join(repo, '__test__', 'fixtures', 'credential-helper')}:${process.env.PATH}`,
    CSTOR_TEST_CREDENTIALS: path.join(dir, 'helper-credentials.json'),
  }
  ;[primary, mirror] = await Promise.all([startRegistry(path.join(dir, 'primary')), startRegistry(path.join(dir, 'mirror'))])
  const storage = await Storage.open(main)
  const base = await storage.image('localhost/base:1')
  baseId = base.id
  for (const host of [primary.host, mirror.host]) baseDigest = (await base.copyTo(`docker://${host}/team/base:1`, { tlsVerify: false })).manifestDigest
  storage.close()
})

afterAll(async () => {
  await primary?.stop()
  await mirror?.stop()
  for (const root of stores) execFileSync('sh', ['-c', `umount ${root}/overlay 2>/dev/null || true`])
  fs.rmSync(dir, { recursive: true, force: true })
  if (saved.cache === undefined) delete process.env.XDG_CACHE_HOME
  else process.env.XDG_CACHE_HOME = saved.cache
})

interface Run {
  status: number | null
  stdout: string
  stderr: string
}

/** An empty store, named shortly (podman refuses long runroots). */
function newStore(): FixtureStore {
  const name = `s${stores.length}`
  const store = { root: path.join(dir, name, 'root'), runroot: path.join(dir, name, 'run') }
  stores.push(store.root)
  return store
}

const registriesConf = (text: string) => fs.writeFileSync(path.join(dir, 'registries.conf'), text)

function cstorPull(store: FixtureStore, ref: string, extra: NodeJS.ProcessEnv = {}): Run {
  return cli(['--root', store.root, '--runroot', store.runroot, 'pull', '--json', ref], { ...env, ...extra })
}

function podman(store: FixtureStore, args: string[], extra: NodeJS.ProcessEnv = {}): Run {
  const run = spawnSync('podman', ['--root', store.root, '--runroot', store.runroot, '--storage-driver', 'overlay', ...args], {
    env: { ...env, ...extra },
    encoding: 'utf8',
  })
  return { status: run.status, stdout: run.stdout, stderr: run.stderr }
}

/** The image ID podman sees under `name` in `store`, or null. */
function idOf(store: FixtureStore, name: string): string | null {
  const run = podman(store, ['image', 'inspect', '--format', '{{.Id}}', name])
  return run.status === 0 ? run.stdout.trim() : null
}

/**
 * podman 5.8 pulling into `store` with this test's HOME (for policy.json and registries.d):
 * Debian's podman 4.3 has sigstore disabled by a Debian patch.
 */
function podman5Pull(store: FixtureStore, ref: string): Run {
  fs.mkdirSync(store.runroot, { recursive: true })
  return inPodman5([dir], ['env', `HOME=${home}`, 'podman', '--root', store.root, '--runroot', store.runroot, '--storage-driver', 'overlay', 'pull', '--quiet', ref], {
    CONTAINERS_REGISTRIES_CONF: env.CONTAINERS_REGISTRIES_CONF,
  })
}

/** Pulls `ref` with cstor and with podman (or `theirs`) into fresh stores: both runs, and the stores. */
function both(ref: string, extra: NodeJS.ProcessEnv = {}, theirs?: (store: FixtureStore, ref: string) => Run): { ours: Run; theirs: Run; cstorStore: FixtureStore; podmanStore: FixtureStore } {
  const cstorStore = newStore()
  const podmanStore = newStore()
  const ours = cstorPull(cstorStore, ref, extra)
  const run = theirs ? theirs(podmanStore, ref) : podman(podmanStore, ['pull', '--quiet', ref], extra)
  return { ours, theirs: run, cstorStore, podmanStore }
}

/** The image ID podman 5.8 sees under `name` in a store it wrote, or null. */
function idOf5(store: FixtureStore, name: string): string | null {
  const run = inPodman5([dir], ['podman', '--root', store.root, '--runroot', store.runroot, '--storage-driver', 'overlay', 'image', 'inspect', '--format', '{{.Id}}', name])
  return run.status === 0 ? run.stdout.trim() : null
}

/** Both pulled `ref` and both stores hold `id` under `name` (as `inspect` sees the one podman wrote). */
function expectSame(result: ReturnType<typeof both>, name: string, id: string, inspect = idOf): void {
  expect(result.ours.status, result.ours.stderr).toBe(0)
  expect(result.theirs.status, result.theirs.stderr).toBe(0)
  expect(idOf(result.cstorStore, name)).toBe(id)
  expect(inspect(result.podmanStore, name)).toBe(id)
}

/** Both refused `ref`, and neither store holds an image. */
function expectRefused(result: ReturnType<typeof both>): void {
  expect(result.ours.status, result.ours.stdout).not.toBe(0)
  expect(result.theirs.status, result.theirs.stdout).not.toBe(0)
  for (const store of [result.cstorStore, result.podmanStore]) {
    const images = path.join(store.root, 'overlay-images', 'images.json')
    expect(fs.existsSync(images) ? JSON.parse(fs.readFileSync(images, 'utf8')) : []).toEqual([])
  }
}

/**
 * What `registry` is asked while `run` runs. The registry's log is read by this process's event
 * loop, which a synchronous run blocks: it is given a moment afterwards.
 */
async function during<T>(registry: Registry, run: () => T): Promise<{ result: T; requests: LoggedRequest[] }> {
  const before = registry.requests().length
  const result = run()
  await settle()
  return { result, requests: registry.requests().slice(before) }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 300))

const manifests = (requests: LoggedRequest[]) => requests.filter((r) => r.path.includes('/manifests/'))
const blobs = (requests: LoggedRequest[]) => requests.filter((r) => r.path.includes('/blobs/'))

describe('registries.conf', () => {
  it('a mirror listed for a prefix serves the pull; the primary sees no request', async () => {
    registriesConf(`[[registry]]\nlocation = "${primary.host}"\ninsecure = true\n[[registry.mirror]]\nlocation = "${mirror.host}"\ninsecure = true\n`)
    const ref = `${primary.host}/team/base:1`
    const [primaryBefore, mirrorBefore] = [primary.requests().length, mirror.requests().length]
    expectSame(both(ref), ref, baseId)
    await settle()
    expect(primary.requests().slice(primaryBefore)).toEqual([])
    expect(manifests(mirror.requests().slice(mirrorBefore)).length).toBeGreaterThanOrEqual(2)
  })

  it('a mirror that is down is skipped for the primary', async () => {
    const down = `127.0.0.1:${await freePort()}`
    registriesConf(`[[registry]]\nlocation = "${primary.host}"\ninsecure = true\n[[registry.mirror]]\nlocation = "${down}"\ninsecure = true\n`)
    const ref = `${primary.host}/team/base:1`
    const { result, requests } = await during(primary, () => both(ref))
    expectSame(result, ref, baseId)
    expect(manifests(requests).length).toBeGreaterThanOrEqual(2)
  })

  it('pull-from-mirror = "digest-only": tags from the primary, digests from the mirror', async () => {
    registriesConf(`[[registry]]\nlocation = "${primary.host}"\ninsecure = true\n[[registry.mirror]]\nlocation = "${mirror.host}"\ninsecure = true\npull-from-mirror = "digest-only"\n`)
    const tagged = `${primary.host}/team/base:1`
    const byTag = await during(mirror, () => both(tagged))
    expectSame(byTag.result, tagged, baseId)
    expect(byTag.requests).toEqual([])
    const digested = `${primary.host}/team/base@${baseDigest}`
    const byDigest = await during(primary, () => both(digested))
    expectSame(byDigest.result, digested, baseId)
    expect(byDigest.requests).toEqual([])
  })

  it('plain HTTP only to an insecure registry; a blocked one refused', () => {
    registriesConf('')
    const ref = `${primary.host}/team/base:1`
    const secure = both(ref)
    expectRefused(secure)
    expect(secure.ours.stderr).toContain('(EREMOTE)')
    // --registries-conf names another file, whose insecure registry is reached.
    const flagged = path.join(dir, 'flag-registries.conf')
    fs.writeFileSync(flagged, `[[registry]]\nlocation = "${primary.host}"\ninsecure = true\n`)
    const viaFlag = newStore()
    const pulled = cli(['--root', viaFlag.root, '--runroot', viaFlag.runroot, 'pull', '--registries-conf', flagged, ref], env)
    expect(pulled.status, pulled.stderr).toBe(0)
    expect(idOf(viaFlag, ref)).toBe(baseId)
    registriesConf(`[[registry]]\nlocation = "${primary.host}"\ninsecure = true\nblocked = true\n`)
    const blocked = both(ref)
    expectRefused(blocked)
    expect(blocked.ours.stderr).toContain(`registry ${primary.host} is blocked`)
    expect(blocked.theirs.stderr).toContain(`registry ${primary.host} is blocked`)
  })

  it('short names: aliases first, then the unqualified-search registries; several in enforcing mode refused, naming them', async () => {
    const insecure = `[[registry]]\nlocation = "${primary.host}"\ninsecure = true\n[[registry]]\nlocation = "${mirror.host}"\ninsecure = true\n`
    registriesConf(`unqualified-search-registries = ["${mirror.host}"]\n[aliases]\n"cstor-test/base" = "${primary.host}/team/base"\n${insecure}`)
    const aliased = await during(mirror, () => both('cstor-test/base:1'))
    expectSame(aliased.result, `${primary.host}/team/base:1`, baseId)
    expect(aliased.requests).toEqual([])

    registriesConf(`unqualified-search-registries = ["${primary.host}"]\nshort-name-mode = "enforcing"\n${insecure}`)
    expectSame(both('team/base:1'), `${primary.host}/team/base:1`, baseId)

    registriesConf(`unqualified-search-registries = ["${primary.host}", "${mirror.host}"]\nshort-name-mode = "enforcing"\n${insecure}`)
    const ambiguous = both('team/base:1')
    expectRefused(ambiguous)
    expect(ambiguous.ours.stderr).toContain(`${primary.host}/team/base:1, ${mirror.host}/team/base:1`)
    expect(ambiguous.ours.stderr).toContain('(EAMBIGUOUS)')
    expect(ambiguous.theirs.stderr).toContain('cannot prompt without a TTY')

    registriesConf(`unqualified-search-registries = ["${primary.host}", "${mirror.host}"]\nshort-name-mode = "permissive"\n${insecure}`)
    expectSame(both('team/base:1'), `${primary.host}/team/base:1`, baseId)
  })
})

describe('certs.d', () => {
  it('a private CA and client certificates: pulled with them, refused without', async () => {
    const pki = path.join(dir, 'pki')
    fs.mkdirSync(pki)
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: pki, stdio: 'ignore' })
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=cstor test CA', '-keyout', 'ca.key', '-out', 'ca.crt')
    fs.writeFileSync(path.join(pki, 'server.ext'), 'subjectAltName = IP:127.0.0.1\n')
    fs.writeFileSync(path.join(pki, 'client.ext'), 'extendedKeyUsage = clientAuth\n')
    for (const [name, ext] of [['server', ['-extfile', 'server.ext']], ['client', ['-extfile', 'client.ext']], ['v1', []]] as const) {
      openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`)
      openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', `${name}.cert`, ...ext)
    }
    const tls = await startRegistry(path.join(dir, 'tls'), { tls: { cert: path.join(pki, 'server.cert'), key: path.join(pki, 'server.key'), clientCas: path.join(pki, 'ca.crt') } })
    try {
      registriesConf('')
      const certs = path.join(home, '.config', 'containers', 'certs.d', tls.host)
      fs.mkdirSync(certs, { recursive: true })
      const install = (...files: string[]) => {
        for (const f of fs.readdirSync(certs)) fs.rmSync(path.join(certs, f))
        for (const f of files) fs.copyFileSync(path.join(pki, f), path.join(certs, f))
      }
      install('ca.crt', 'client.cert', 'client.key')
      const ref = `${tls.host}/team/base:1`
      const pushed = cli(['--root', main.root, '--runroot', main.runroot, 'copy', 'localhost/base:1', `docker://${ref}`], env)
      expect(pushed.status, pushed.stderr).toBe(0)
      expectSame(both(ref), ref, baseId)
      install('ca.crt')
      expectRefused(both(ref))
      install('client.cert', 'client.key')
      const unknownCa = both(ref)
      expectRefused(unknownCa)
      expect(unknownCa.ours.stderr).toMatch(/UnknownIssuer|certificate/i)
      // An X.509 v1 client certificate: rustls takes none (Go does), and cstor says so.
      install('ca.crt', 'v1.cert', 'v1.key')
      const v1 = cstorPull(newStore(), ref)
      expect(v1.stderr).toContain('(EUNSUPPORTED)')
      // --cert-dir instead of certs.d, for both.
      install()
      const certDir = path.join(pki, 'flag')
      fs.mkdirSync(certDir)
      for (const f of ['ca.crt', 'client.cert', 'client.key']) fs.copyFileSync(path.join(pki, f), path.join(certDir, f))
      const flagged = { cstorStore: newStore(), podmanStore: newStore() }
      const ours = cli(['--root', flagged.cstorStore.root, '--runroot', flagged.cstorStore.runroot, 'pull', '--cert-dir', certDir, ref], env)
      const theirs = podman(flagged.podmanStore, ['pull', '--quiet', '--cert-dir', certDir, ref])
      expectSame({ ours, theirs, ...flagged }, ref, baseId)
    } finally {
      await tls.stop()
    }
  })
})

describe('credential helpers', () => {
  it('credHelpers in the auth file and credential-helpers in registries.conf, for an htpasswd registry', async () => {
    const user = { user: 'helper-user', password: 'helper-secret' }
    const guarded = await startRegistry(path.join(dir, 'guarded'), { htpasswd: user })
    try {
      registriesConf(`[[registry]]\nlocation = "${guarded.host}"\ninsecure = true\n`)
      fs.writeFileSync(env.CSTOR_TEST_CREDENTIALS as string, JSON.stringify({ [guarded.host]: { Username: user.user, Secret: user.password } }))
      const authFile = path.join(dir, 'helper-auth.json')
      fs.writeFileSync(authFile, JSON.stringify({ auths: {}, credHelpers: { [guarded.host]: 'cstortest' } }))
      const ref = `${guarded.host}/team/base:1`
      const pushed = cli(['--root', main.root, '--runroot', main.runroot, 'copy', 'localhost/base:1', `docker://${ref}`], { ...env, REGISTRY_AUTH_FILE: authFile })
      expect(pushed.status, pushed.stderr).toBe(0)
      expectSame(both(ref, { REGISTRY_AUTH_FILE: authFile }), ref, baseId)

      registriesConf(`credential-helpers = ["cstortest"]\n[[registry]]\nlocation = "${guarded.host}"\ninsecure = true\n`)
      const empty = path.join(dir, 'empty-auth.json')
      fs.writeFileSync(empty, '{"auths": {}}')
      expectSame(both(ref, { REGISTRY_AUTH_FILE: empty }), ref, baseId)
      const asked = fs.readFileSync(`${env.CSTOR_TEST_CREDENTIALS}.log`, 'utf8')
      expect(asked).toContain(`get ${guarded.host}\n`)

      fs.writeFileSync(env.CSTOR_TEST_CREDENTIALS as string, '{}')
      const none = both(ref, { REGISTRY_AUTH_FILE: empty })
      expectRefused(none)
      expect(none.ours.stderr).toContain('(EACCES)')
    } finally {
      await guarded.stop()
    }
  })

  it('an identity token from a helper (user <token>) buys bearer tokens by an OAuth2 refresh grant', async () => {
    const user = { user: 'oauth-user', password: 'refresh-token-secret' }
    const tokens = await startRegistry(path.join(dir, 'oauth'), { token: user })
    try {
      const insecure = `[[registry]]\nlocation = "${tokens.host}"\ninsecure = true\n`
      registriesConf(insecure)
      const ref = `${tokens.host}/team/base:1`
      const basic = authFile(path.join(dir, 'oauth-auth.json'), tokens.host, user)
      const pushed = cli(['--root', main.root, '--runroot', main.runroot, 'copy', '--tls-verify=false', 'localhost/base:1', `docker://${ref}`], { ...env, REGISTRY_AUTH_FILE: basic })
      expect(pushed.status, pushed.stderr).toBe(0)
      registriesConf(`credential-helpers = ["cstortest"]\n${insecure}`)
      fs.writeFileSync(env.CSTOR_TEST_CREDENTIALS as string, JSON.stringify({ [tokens.host]: { Username: '<token>', Secret: user.password } }))
      const empty = path.join(dir, 'empty-auth.json')
      fs.writeFileSync(empty, '{"auths": {}}')
      expectSame(both(ref, { REGISTRY_AUTH_FILE: empty }), ref, baseId)
    } finally {
      await tokens.stop()
    }
  })
})

describe('login and logout', () => {
  it('cstor login writes what podman login writes, mode 0600, and each pulls with the other’s; a wrong password stores nothing', async () => {
    const user = { user: 'login-user', password: 'login-secret' }
    const guarded = await startRegistry(path.join(dir, 'login'), { htpasswd: user })
    try {
      registriesConf(`[[registry]]\nlocation = "${guarded.host}"\ninsecure = true\n`)
      const ref = `${guarded.host}/team/base:1`
      const pushAuth = authFile(path.join(dir, 'login-push.json'), guarded.host, user)
      const pushed = cli(['--root', main.root, '--runroot', main.runroot, 'copy', 'localhost/base:1', `docker://${ref}`], { ...env, REGISTRY_AUTH_FILE: pushAuth })
      expect(pushed.status, pushed.stderr).toBe(0)
      // Each tool logs in with its own runtime directory: the auth file is $XDG_RUNTIME_DIR/containers/auth.json.
      const runtime = (name: string) => {
        const run = path.join(dir, name)
        fs.mkdirSync(run)
        return { env: { XDG_RUNTIME_DIR: run }, file: path.join(run, 'containers', 'auth.json') }
      }
      const ours = runtime('run-cstor')
      const theirs = runtime('run-podman')
      const store = newStore()
      const cstor = (args: string[], extra: NodeJS.ProcessEnv, input = '') => {
        const run = spawnSync(process.execPath, [path.join(repo, 'dist', 'cli', 'main.js'), '--root', store.root, '--runroot', store.runroot, ...args], { env: { ...env, ...extra }, input, encoding: 'utf8' })
        return { status: run.status, stdout: run.stdout, stderr: run.stderr }
      }
      const podmanLogin = (password: string) => spawnSync('podman', ['login', '-u', user.user, '--password-stdin', guarded.host], { env: { ...env, ...theirs.env }, input: `${password}\n`, encoding: 'utf8' })

      const wrong = cstor(['login', guarded.host, '-u', user.user, '--password-stdin'], ours.env, 'wrong\n')
      expect(wrong.status).toBe(1)
      expect(wrong.stderr).toContain('(EACCES)')
      expect(podmanLogin('wrong').status).not.toBe(0)
      expect([fs.existsSync(ours.file), fs.existsSync(theirs.file)]).toEqual([false, false])

      const right = cstor(['login', guarded.host, '-u', user.user, '--password-stdin'], ours.env, `${user.password}\n`)
      expect(right.status, right.stderr).toBe(0)
      expect(right.stdout).toBe('Login Succeeded!\n')
      const theirsRight = podmanLogin(user.password)
      expect(theirsRight.status, theirsRight.stderr).toBe(0)
      expect(fs.readFileSync(ours.file, 'utf8')).toBe(fs.readFileSync(theirs.file, 'utf8'))
      const modes = (file: string) => [fs.statSync(file).mode & 0o7777, fs.statSync(path.dirname(file)).mode & 0o7777]
      expect(modes(ours.file)).toEqual(modes(theirs.file))
      expect(modes(ours.file)[0]).toBe(0o600)

      // podman pulls with the file cstor wrote; cstor with the one podman wrote.
      const podmanStore = newStore()
      const theirPull = podman(podmanStore, ['pull', '--quiet', ref], ours.env)
      expect(theirPull.status, theirPull.stderr).toBe(0)
      expect(idOf(podmanStore, ref)).toBe(baseId)
      const cstorStore = newStore()
      const ourPull = cli(['--root', cstorStore.root, '--runroot', cstorStore.runroot, 'pull', '--authfile', theirs.file, ref], env)
      expect(ourPull.status, ourPull.stderr).toBe(0)
      expect(idOf(cstorStore, ref)).toBe(baseId)

      // Logged out, the file is what podman logout leaves; a second logout finds nothing.
      expect(cstor(['logout', guarded.host], ours.env).status).toBe(0)
      expect(podman(newStore(), ['logout', guarded.host], theirs.env).status).toBe(0)
      expect(fs.readFileSync(ours.file, 'utf8')).toBe(fs.readFileSync(theirs.file, 'utf8'))
      const again = cstor(['logout', guarded.host], ours.env)
      expect(again.status).toBe(1)
      expect(again.stderr).toContain('(ENOENT)')
    } finally {
      await guarded.stop()
    }
  })
})

describe('signature policy', () => {
  const policyFile = () => path.join(home, '.config', 'containers', 'policy.json')
  const policy = (scopes: Record<string, unknown[]>) =>
    fs.writeFileSync(policyFile(), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }], transports: { docker: scopes } }))
  afterAll(() => {
    fs.rmSync(policyFile(), { force: true })
    fs.rmSync(path.join(home, '.config', 'containers', 'registries.d'), { recursive: true, force: true })
  })

  it('reject: refused before any blob is fetched, nothing written', async () => {
    registriesConf(`[[registry]]\nlocation = "${primary.host}"\ninsecure = true\n`)
    policy({ [`${primary.host}/team`]: [{ type: 'reject' }] })
    const { result, requests } = await during(primary, () => both(`${primary.host}/team/base:1`))
    expectRefused(result)
    expect(result.ours.stderr).toContain('is rejected by policy')
    expect(result.theirs.stderr).toContain('is rejected by policy')
    expect(blobs(requests)).toEqual([])
    for (const store of [result.cstorStore, result.podmanStore]) {
      const layers = path.join(store.root, 'overlay-layers', 'layers.json')
      expect(fs.existsSync(layers) ? JSON.parse(fs.readFileSync(layers, 'utf8')) : []).toEqual([])
    }
  })

  it('an import is judged by the tarball transport, as podman import; --signature-policy names another policy', () => {
    const rootfs = path.join(dir, 'import-rootfs')
    fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true })
    fs.writeFileSync(path.join(rootfs, 'etc', 'hostname'), 'imported\n')
    const tar = path.join(dir, 'import.tar')
    execFileSync('tar', ['-C', rootfs, '-cf', tar, '.'])
    fs.writeFileSync(policyFile(), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }], transports: { tarball: { '': [{ type: 'reject' }] } } }))
    const [ourStore, theirStore] = [newStore(), newStore()]
    const ours = cli(['--root', ourStore.root, '--runroot', ourStore.runroot, 'import', tar, 'localhost/imported:1'], env)
    const theirs = podman(theirStore, ['import', '--quiet', tar, 'localhost/imported:1'])
    expectRefused({ ours, theirs, cstorStore: ourStore, podmanStore: theirStore })
    expect(ours.stderr).toContain(`Running image tarball:${tar} is rejected by policy.`)
    expect(theirs.stderr).toContain('is rejected by policy')
    const accept = path.join(dir, 'accept-policy.json')
    fs.writeFileSync(accept, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }))
    const allowed = cli(['--root', ourStore.root, '--runroot', ourStore.runroot, 'import', '--signature-policy', accept, tar, 'localhost/imported:1'], env)
    expect(allowed.status, allowed.stderr).toBe(0)
    expect(idOf(ourStore, 'localhost/imported:1')).not.toBeNull()
  })

  it('sigstoreSigned: an image skopeo signed passes with its key, not with another key, not unsigned; signedBy is EUNSUPPORTED', { timeout: 300_000 }, () => {
    const keys = path.join(dir, 'keys')
    fs.mkdirSync(keys)
    fs.writeFileSync(path.join(keys, 'pass'), 'cstor-test-passphrase\n')
    const registriesD = path.join(home, '.config', 'containers', 'registries.d')
    fs.mkdirSync(registriesD, { recursive: true })
    fs.writeFileSync(path.join(registriesD, 'sigstore.yaml'), 'default-docker:\n  use-sigstore-attachments: true\n')
    const made = inPodman5([keys], ['skopeo', 'generate-sigstore-key', '--output-prefix', path.join(keys, 'signer'), '--passphrase-file', path.join(keys, 'pass')])
    expect(made.status, made.stderr).toBe(0)
    // Another P-256 public key, in the same PEM form.
    execFileSync('sh', ['-c', 'openssl ecparam -name prime256v1 -genkey | openssl ec -pubout -out other.pub'], { cwd: keys, stdio: 'ignore' })
    const signed = `${primary.host}/signed/base:1`
    const copied = inPodman5(
      [keys, home],
      ['skopeo', 'copy', '--quiet', '--registries.d', registriesD, '--src-tls-verify=false', '--dest-tls-verify=false', '--sign-by-sigstore-private-key', path.join(keys, 'signer.private'), '--sign-passphrase-file', path.join(keys, 'pass'), `docker://${primary.host}/team/base:1`, `docker://${signed}`],
    )
    expect(copied.status, copied.stderr).toBe(0)
    registriesConf(`[[registry]]\nlocation = "${primary.host}"\ninsecure = true\n`)
    const requireKey = (key: string) => [{ type: 'sigstoreSigned', keyPath: path.join(keys, `${key}.pub`) }]

    policy({ [`${primary.host}/signed`]: requireKey('signer') })
    expectSame(both(signed, {}, podman5Pull), signed, baseId, idOf5)

    policy({ [`${primary.host}/signed`]: requireKey('other') })
    const wrongKey = both(signed, {}, podman5Pull)
    expectRefused(wrongKey)
    expect(wrongKey.ours.stderr).toContain('cryptographic signature verification failed')

    policy({ [primary.host]: requireKey('signer') })
    const unsigned = both(`${primary.host}/team/base:1`, {}, podman5Pull)
    expectRefused(unsigned)
    expect(unsigned.ours.stderr).toContain('no signature exists')

    policy({ [primary.host]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: path.join(keys, 'signer.pub') }] })
    const gpg = cstorPull(newStore(), signed)
    expect(gpg.status).toBe(1)
    expect(gpg.stderr).toContain('signedBy (GPGKeys)')
    expect(gpg.stderr).toContain('(EUNSUPPORTED)')
  })
})

describe('peer mirrors', () => {
  it('two stores served by cstor serve --registry mirror a third; a peer stopped midway leaves the rest to the next', { timeout: 300_000 }, async () => {
    const storage = await Storage.open(main)
    const app = await storage.image('localhost/app:1')
    await app.copyTo(`docker://${primary.host}/app:1`, { tlsVerify: false })
    const peerCopy = copyStore(main)
    const peerStorage = await Storage.open(peerCopy)
    const seen: string[][] = [[], []]
    const peers = [
      await storage.serveRegistry({ address: '127.0.0.1:0', onRequest: (e) => seen[0].push(e.target) }),
      await peerStorage.serveRegistry({ address: '127.0.0.1:0', onRequest: (e) => seen[1].push(e.target) }),
    ]
    // The first peer is reached through a proxy that cuts every connection, for good, when the
    // third blob (the second layer) is asked for: a peer that went away midway.
    const cut = await cuttingProxy(peers[0].address, 3)
    try {
      const conf = (first: string) =>
        `[[registry]]\nlocation = "${primary.host}"\ninsecure = true\n[[registry.mirror]]\nlocation = "${first}/localhost"\ninsecure = true\n[[registry.mirror]]\nlocation = "${peers[1].address}/localhost"\ninsecure = true\n`
      registriesConf(conf(peers[0].address))
      const ref = `${primary.host}/app:1`
      const fromPeer = await during(primary, () => both(ref))
      expectSame(fromPeer.result, ref, app.id)
      expect(fromPeer.requests).toEqual([])
      expect(seen[0].filter((p) => p.includes('/manifests/')).length).toBeGreaterThanOrEqual(2)

      registriesConf(conf(cut.address))
      const store = newStore()
      const pulled = await new Promise<Run>((resolve) => {
        const child = spawn(process.execPath, [path.join(repo, 'dist', 'cli', 'main.js'), '--root', store.root, '--runroot', store.runroot, 'pull', '--json', ref], { env })
        let stdout = ''
        let stderr = ''
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
        child.on('close', (status) => resolve({ status, stdout, stderr }))
      })
      expect(pulled.status, pulled.stderr).toBe(0)
      await settle()
      expect(cut.cut()).toBe(true)
      expect(idOf(store, ref)).toBe(app.id)
      expect(seen[1].filter((p) => p.includes('/blobs/')).length).toBeGreaterThan(0)
    } finally {
      cut.close()
      for (const peer of peers) peer.close()
      peerStorage.close()
      storage.close()
      peerCopy.cleanup()
    }
  })
})

/**
 * A TCP proxy to `target` that, when the `nth` blob request passes through it, destroys every
 * connection and stops listening.
 */
async function cuttingProxy(target: string, nth: number): Promise<{ address: string; cut: () => boolean; close: () => void }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))]
  const sockets = new Set<net.Socket>()
  let blobRequests = 0
  let done = false
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host)
    sockets.add(client).add(upstream)
    client.on('data', (data: Buffer) => {
      blobRequests += data.toString('latin1').split('/blobs/').length - 1
      if (blobRequests >= nth) {
        done = true
        server.close()
        for (const s of sockets) s.destroy()
        return
      }
      upstream.write(data)
    })
    upstream.on('data', (data: Buffer) => client.write(data))
    for (const s of [client, upstream]) s.on('error', () => {}).on('close', () => (client.destroy(), upstream.destroy()))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port: listening } = server.address() as net.AddressInfo
  return { address: `127.0.0.1:${listening}`, cut: () => done, close: () => server.close() }
}
