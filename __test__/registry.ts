/**
 * A real registry for tests: Distribution's `docker-registry` on a free loopback port, open, or
 * behind an htpasswd file (basic auth), or behind bearer tokens from a small token issuer
 * (`token-issuer.mjs`: Docker's token protocol, RS256 JWTs with the signing certificate in
 * `x5c`, which the registry checks against its `rootcertbundle`). Its access log tells which
 * requests it got.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'

export interface RegistryOptions {
  /** Basic auth with this user (an htpasswd file made by apache2-utils' htpasswd). */
  htpasswd?: { user: string; password: string }
  /** Bearer tokens, issued to this user by a token server on another loopback port. */
  token?: { user: string; password: string }
  /** HTTPS with this certificate and key; with `clientCas`, clients must present a certificate one of them signed. */
  tls?: { cert: string; key: string; clientCas?: string }
}

/** One line of the access log: `"METHOD PATH HTTP/1.1" STATUS`. */
export interface LoggedRequest {
  method: string
  path: string
  status: number
}

export interface Registry {
  /** `127.0.0.1:PORT`. */
  host: string
  /** The requests the registry answered so far. */
  requests(): LoggedRequest[]
  /** Where the registry keeps its data (`docker/registry/v2/...`). */
  storage: string
  stop(): Promise<void>
}

/** A loopback port nothing listens on (yet). */
export async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Starts a registry keeping its files in `dir`; resolves once it answers `/v2/`. */
export async function startRegistry(dir: string, options: RegistryOptions = {}): Promise<Registry> {
  fs.mkdirSync(dir, { recursive: true })
  const port = await freePort()
  const storage = path.join(dir, 'data')
  let auth = ''
  let issuer: ChildProcess | undefined
  if (options.htpasswd) {
    const { user, password } = options.htpasswd
    fs.writeFileSync(path.join(dir, 'htpasswd'), execFileSync('htpasswd', ['-Bbn', user, password]))
    auth = `auth:\n  htpasswd:\n    realm: cstor-test\n    path: ${dir}/htpasswd\n`
  }
  if (options.token) {
    const started = await startTokenIssuer(dir, options.token)
    issuer = started.process
    auth = `auth:\n  token:\n    realm: ${started.realm}\n    service: cstor-test\n    issuer: cstor-test-issuer\n    rootcertbundle: ${dir}/token.crt\n`
  }
  const config = path.join(dir, 'config.yml')
  const tls = options.tls
    ? `  tls:\n    certificate: ${options.tls.cert}\n    key: ${options.tls.key}\n${options.tls.clientCas ? `    clientcas:\n      - ${options.tls.clientCas}\n` : ''}`
    : ''
  fs.writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${tls}${auth}`,
  )
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()))
  const host = `127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    // A TLS registry that wants client certificates answers no plain request: a connection is enough.
    const answered = await new Promise<boolean>((resolve) => {
      if (options.tls) {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.destroy()
          resolve(true)
        })
        socket.on('error', () => resolve(false))
        return
      }
      http.get(`http://${host}/v2/`, (res) => {
        res.resume()
        resolve(true)
      }).on('error', () => resolve(false))
    })
    if (answered) break
    if (i > 100 || child.exitCode !== null) throw new Error(`docker-registry did not start: ${log}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    host,
    storage,
    requests: () =>
      [...log.matchAll(/"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3})/g)].map((m) => ({ method: m[1], path: m[2], status: Number(m[3]) })),
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill()
      await exited
      issuer?.kill()
    },
  }
}

/** Starts `token-issuer.mjs` for `user`, with a new signing key and certificate in `dir`. */
async function startTokenIssuer(dir: string, user: { user: string; password: string }): Promise<{ process: ChildProcess; realm: string }> {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=cstor-test-issuer', '-days', '2', '-keyout', `${dir}/token.key`, '-out', `${dir}/token.crt`], { stdio: 'ignore' })
  const child = spawn(process.execPath, [path.join(__dirname, 'token-issuer.mjs'), `${dir}/token.key`, `${dir}/token.crt`, user.user, user.password], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout?.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()))
    child.once('exit', () => reject(new Error('the token issuer did not start')))
  })
  return { process: child, realm: `http://127.0.0.1:${port}/token` }
}

/** An auth file (`REGISTRY_AUTH_FILE`) holding `user`'s credentials for `host`. */
export function authFile(file: string, host: string, user: { user: string; password: string }): string {
  const auth = Buffer.from(`${user.user}:${user.password}`).toString('base64')
  fs.writeFileSync(file, JSON.stringify({ auths: { [host]: { auth } } }))
  return file
}
