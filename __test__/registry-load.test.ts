/**
 * The registry under load, on a private store holding a 1 GB+ image that podman imports: 32
 * concurrent pulls all get the right digests; a client that leaves mid-blob leaves no fd open
 * and the store's lock free; `podman rmi` of the image while it is served never yields a blob
 * with a wrong digest — the transfer under way ends whole (rmi waits for the layers lock), and
 * later requests get 404, so the client gets an error.
 */
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Storage, type RegistryServer } from '../ts/index'
import { openFds, storageConf } from './helpers'

const env = { ...process.env, CONTAINERS_STORAGE_CONF: storageConf }
const IMAGE = 'localhost/big:1'
let dir: string
let store: { root: string; runroot: string }
let storage: Storage
let server: RegistryServer
let port: string

const podman = (...args: string[]) => execFileSync('podman', ['--root', store.root, '--runroot', store.runroot, ...args], { env, encoding: 'utf8' })

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-registry-load-'))
  store = { root: path.join(dir, 'root'), runroot: path.join(dir, 'run') }
  // 8 files of 140 MiB that no compression shrinks: a 1.1 GiB layer.
  const rootfs = path.join(dir, 'rootfs')
  fs.mkdirSync(rootfs)
  for (let i = 0; i < 8; i++) execFileSync('sh', ['-c', `head -c ${140 << 20} /dev/urandom > ${rootfs}/blob${i}`])
  execFileSync('sh', ['-c', `tar -C ${rootfs} -c . | podman --root ${store.root} --runroot ${store.runroot} import --quiet - ${IMAGE} >/dev/null`], { env })
  fs.rmSync(rootfs, { recursive: true })
  storage = await Storage.open(store)
  server = await storage.serveRegistry({ address: '127.0.0.1:0' })
  port = server.address.split(':')[1]
}, 300_000)
afterAll(() => {
  server?.close()
  storage?.close()
  execFileSync('sh', ['-c', `umount ${store.root}/overlay 2>/dev/null || true`])
  fs.rmSync(dir, { recursive: true, force: true })
})

/**
 * A pull as a registry client makes it — manifest by tag, then the config and every layer,
 * each streamed and hashed — by N threads at once; prints one JSON line per pull. With `pace`,
 * each thread reads 1 MiB at a time and sleeps `pace` seconds between reads.
 */
const PULL = `
import hashlib, http.client, json, sys, threading, time
port, name, tag, count, pace = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
def get(conn, path):
    conn.request('GET', path, headers={'Accept': 'application/vnd.oci.image.manifest.v1+json'})
    return conn.getresponse()
def pull(results, i):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
    out = {'ok': [], 'bad': [], 'errors': []}
    try:
        r = get(conn, f'/v2/{name}/manifests/{tag}')
        body = r.read()
        if r.status != 200:
            raise Exception(f'manifest: {r.status}')
        manifest = json.loads(body)
        for blob in [manifest['config']] + manifest['layers']:
            r = get(conn, f'/v2/{name}/blobs/{blob["digest"]}')
            if r.status != 200:
                r.read(); raise Exception(f'blob {blob["digest"]}: {r.status}')
            h, n = hashlib.sha256(), 0
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk); n += len(chunk)
                if pace: time.sleep(pace)
            got = 'sha256:' + h.hexdigest()
            (out['ok'] if got == blob['digest'] and n == blob['size'] else out['bad']).append(blob['digest'])
    except Exception as e:
        out['errors'].append(f'{type(e).__name__}: {e}')
    out['done'] = time.time()
    results[i] = out
results = [None] * count
threads = [threading.Thread(target=pull, args=(results, i)) for i in range(count)]
for t in threads: t.start()
for t in threads: t.join()
for r in results: print(json.dumps(r))
`

/** Runs `count` pulls at once; resolves with each pull's result. */
function pulls(count: number, pace = 0): Promise<{ ok: string[]; bad: string[]; errors: string[]; done: number }[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', PULL, port, 'localhost/big', '1', `${count}`, `${pace}`], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.on('error', reject)
    child.on('exit', (code) => (code === 0 ? resolve(out.trim().split('\n').map((l) => JSON.parse(l))) : reject(new Error(`pull client exited ${code}`))))
  })
}


/** Whether another process could take the layers lock for writing now (python's lockf is fcntl). */
const lockFree = () =>
  execFileSync('python3', ['-c', 'import fcntl,sys\nf=open(sys.argv[1],"r+")\ntry:\n fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB); print("free")\nexcept OSError: print("held")', path.join(store.root, 'overlay-layers', 'layers.lock')])
    .toString()
    .trim() === 'free'

describe('the registry under load', () => {
  it('32 concurrent pulls of a 1 GB+ image all get every blob with its digest', async () => {
    const [layer] = await (await storage.image(IMAGE)).layers()
    expect(layer.diffSize).toBeGreaterThan(1 << 30)
    const results = await pulls(32)
    expect(results).toHaveLength(32)
    for (const result of results) expect(result).toMatchObject({ ok: [expect.any(String), layer.diffDigest], bad: [], errors: [] })
  }, 600_000)

  it('a client that disconnects mid-blob leaves no fd open and the lock free', async () => {
    const before = openFds()
    const [layer] = await (await storage.image(IMAGE)).layers()
    for (let i = 0; i < 5; i++) {
      execFileSync('python3', [
        '-c',
        `import socket,sys; s=socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.sendall(f"GET /v2/localhost/big/blobs/{sys.argv[2]} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n".encode()); s.recv(1 << 20); s.close()`,
        port,
        layer.diffDigest!,
      ])
    }
    for (let i = 0; i < 100 && (openFds() > before || !lockFree()); i++) await new Promise((r) => setTimeout(r, 100))
    expect(openFds()).toBe(before)
    expect(lockFree()).toBe(true)
  })

  it('podman rmi while a blob is served: the transfer ends whole, rmi waits for it, later pulls get 404', async () => {
    // A slow client: ~1.1 GiB read 1 MiB at a time, 2 ms apart.
    const slow = pulls(1, 0.002)
    await new Promise((r) => setTimeout(r, 1000))
    expect(lockFree()).toBe(false)
    const rmi = new Promise<number>((resolve, reject) => {
      const child = spawn('podman', ['--root', store.root, '--runroot', store.runroot, 'rmi', IMAGE], { env, stdio: 'ignore' })
      child.on('error', reject)
      child.on('exit', (code) => (code === 0 ? resolve(Date.now() / 1000) : reject(new Error(`podman rmi exited ${code}`))))
    })
    const [transfer] = await slow
    const removed = await rmi
    expect(transfer).toMatchObject({ bad: [], errors: [] })
    expect(transfer.ok).toHaveLength(2)
    expect(removed).toBeGreaterThanOrEqual(transfer.done)
    expect(podman('images', '-q').trim()).toBe('')
    const [after] = await pulls(1)
    expect(after.errors).toEqual(['Exception: manifest: 404'])
  }, 600_000)
})
