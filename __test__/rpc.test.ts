/**
 * JSON-RPC with fd passing: a store served on a Unix socket, read by cstor's client and by an
 * independent Python client (socket.recvmsg + SCM_RIGHTS), layers rebuilt bit for bit from the
 * fds; protocol errors; a client that leaves mid-stream leaks nothing on the server.
 */
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NoLayerError, RpcClient, Storage, type Layer, type RpcServer } from '../ts/index'
import { assembledAndClosed, copyStore, main, openFds, repo, storageConf, unprivilegedUser } from './helpers'

let storage: Storage
let layers: Layer[]
let dir: string
let server: RpcServer
let client: RpcClient
beforeAll(async () => {
  storage = await Storage.open(main)
  layers = await storage.listLayers()
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-rpc-'))
  server = await storage.serve(path.join(dir, 'store.sock'))
  client = new RpcClient(server.path)
})
afterAll(() => {
  server.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

/** A JSON-RPC client written from the protocol's description, in Python. */
const PYTHON_CLIENT = `
import array, hashlib, json, os, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
buf, fds = b'', []
def request(id, method, params):
    sock.sendall(json.dumps({'jsonrpc': '2.0', 'id': id, 'method': method, 'params': params}).encode() + b'\\n')
def receive():
    global buf, fds
    dec = json.JSONDecoder()
    while True:
        text = buf.decode('utf-8', 'replace').lstrip()
        try:
            msg, end = dec.raw_decode(text)
            buf = text[end:].encode()
            while len(fds) < msg.get('fds', 0):
                more()
            n = msg.get('fds', 0)
            mine, fds = fds[:n], fds[n:]
            return msg, mine
        except json.JSONDecodeError:
            if not more():
                raise SystemExit('closed')
def more():
    global buf, fds
    data, anc, flags, _ = sock.recvmsg(65536, socket.CMSG_SPACE(253 * 4))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += list(array.array('i', payload[: len(payload) - len(payload) % 4]))
    buf += data
    return len(data) > 0
request(1, 'ListImages', {})
images, _ = receive()
request(2, 'GetLayerSplitfdstream', {'layer': sys.argv[2]})
reply, got = receive()
stream = os.read(got[0], 1 << 30)
out, at = b'', 0
while at < len(stream):
    prefix = int.from_bytes(stream[at:at + 8], 'little', signed=True)
    at += 8
    if prefix < 0:
        out += stream[at:at - prefix]
        at -= prefix
    else:
        out += os.pread(got[prefix], 1 << 30, 0)
print(json.dumps({'images': len(images['result']), 'content': reply['result']['content'], 'fds': len(got), 'sha': 'sha256:' + hashlib.sha256(out).hexdigest()}))
`

describe('JSON-RPC server and client', () => {
  it('GetLayerSplitfdstream: every layer rebuilt from the fds equals its diff-digest; no fd leaks', async () => {
    const before = openFds()
    for (const layer of layers) {
      const tar = await assembledAndClosed(await client.getLayerSplitFdStream(layer.id), dir)
      expect(sha256(tar), layer.id).toBe(layer.diffDigest)
    }
    expect(openFds()).toBe(before)
  })

  it('StreamLayer: notifications with one fd per file rebuild the tar', async () => {
    for (const layer of layers.filter((l) => (l.diffSize ?? 0) > 1 << 16)) {
      const pieces: Buffer[] = []
      for await (const part of client.streamLayer(layer.id)) {
        if (part.kind === 'segment') pieces.push(part.data)
        else {
          pieces.push(fs.readFileSync(part.fd))
          fs.closeSync(part.fd)
        }
      }
      expect(sha256(Buffer.concat(pieces)), layer.id).toBe(layer.diffDigest)
    }
  })

  it('lists images and layers as the store has them', async () => {
    const remote = await client.listImages()
    expect(remote.map((i) => i.id).sort()).toEqual((await storage.listImages()).map((i) => i.id).sort())
    expect((await client.listLayers()).map((l) => l.diffDigest).sort()).toEqual(layers.map((l) => l.diffDigest).sort())
  })

  it('an independent Python client gets the same layer through recvmsg/SCM_RIGHTS', () => {
    const layer = layers.reduce((a, b) => ((a.diffSize ?? 0) > (b.diffSize ?? 0) ? a : b))
    const out = JSON.parse(execFileSync('python3', ['-c', PYTHON_CLIENT, server.path, layer.id]).toString())
    expect(out).toMatchObject({ sha: layer.diffDigest, fds: out.content + 1 })
    expect(out.images).toBeGreaterThan(0)
  })

  it('errors: unknown layer (typed), unknown method, bad params, garbage', async () => {
    await expect(client.getLayerSplitFdStream('no-such-layer')).rejects.toBeInstanceOf(NoLayerError)
    await expect(client.call('Nope')).rejects.toThrow(/no method "Nope"/)
    await expect(client.call('StreamLayer', { layer: 42 })).rejects.toThrow(/params.layer/)
    const reply = execFileSync('python3', [
      '-c',
      `import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'{"jsonrpc": nope}\\n'); print(s.recv(4096).decode())`,
      server.path,
    ]).toString()
    expect(JSON.parse(reply).error.code).toBe(-32700)
  })

  it('a client that disconnects mid-stream leaves no fd open on the server', async () => {
    const big = layers.reduce((a, b) => ((a.diffSize ?? 0) > (b.diffSize ?? 0) ? a : b))
    const before = openFds()
    for (let i = 0; i < 5; i++) {
      execFileSync('python3', [
        '-c',
        `import json,socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(json.dumps({'jsonrpc':'2.0','id':1,'method':'StreamLayer','params':{'layer':sys.argv[2]}}).encode()); s.recv(100); s.close()`,
        server.path,
        big.id,
      ])
    }
    // The server notices on its next send; give its threads a moment.
    for (let i = 0; i < 50 && openFds() > before; i++) await new Promise((r) => setTimeout(r, 100))
    expect(openFds()).toBe(before)
  })

  it('CLI: cstor serve --socket serves until SIGTERM and removes the socket', async () => {
    const socket = path.join(dir, 'cli.sock')
    const child = spawn(process.execPath, [path.join(repo, 'dist', 'cli', 'main.js'), '--root', main.root, '--runroot', main.runroot, 'serve', '--socket', socket], {
      env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    for (let i = 0; i < 100 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50))
    expect((await new RpcClient(socket).listImages()).length).toBeGreaterThan(0)
    const exited = new Promise((resolve) => child.on('exit', resolve))
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(fs.existsSync(socket)).toBe(false)
  })

  it('answers write methods only on a writable server: tag, create a layer from an fd, pull with progress', async () => {
    await expect(client.call('Tag', { image: 'localhost/base:1', names: ['x'] })).rejects.toThrow(/needs a writable server/)
    const store = copyStore(main)
    try {
      const writable = await Storage.open(store)
      const socket = path.join(dir, 'writable.sock')
      const writer = await writable.serve(socket, { writable: true })
      const remote = new RpcClient(socket)
      expect((await remote.call('Tag', { image: 'localhost/base:1', names: ['localhost/tagged:1'] })).result).toMatchObject({
        id: (await writable.image('localhost/base:1')).id,
      })
      expect((await writable.image('localhost/tagged:1')).names).toContain('localhost/tagged:1')
      const tar = path.join(dir, 'layer.tar')
      fs.writeFileSync(path.join(dir, 'hello'), 'hello\n')
      execFileSync('tar', ['-C', dir, '-cf', tar, 'hello'])
      const fd = fs.openSync(tar, 'r')
      const { result } = await remote.call('CreateLayer', { names: ['from-rpc'] }, { fds: [fd] })
      fs.closeSync(fd)
      const created = await writable.layer((result as { id: string }).id)
      expect(created.diffDigest).toBe(sha256(fs.readFileSync(tar)))
      const layout = path.join(dir, 'layout')
      await (await writable.image('localhost/app:1')).copyToOci(layout, { refName: 'app' })
      const progress: unknown[] = []
      const pulled = await remote.call('Pull', { source: `oci:${layout}:app`, name: 'localhost/again:1' }, {
        onNotification: (method, params) => method === 'progress' && progress.push(params),
      })
      expect(pulled.result).toMatchObject({ imageId: (await writable.image('localhost/app:1')).id, layersWritten: 0, existed: true })
      expect(progress.length).toBeGreaterThan(0)
      expect(progress.at(-1)).toMatchObject({ layers: 3 })
      await expect(remote.call('RemoveImage', { image: 'localhost/nope:1' })).rejects.toMatchObject({ code: 'ENOIMAGE' })
      writer.close()
      writable.close()
    } finally {
      store.cleanup()
    }
  })

  it('the socket is owner-only under umask 000, or shared with one group only when asked', async () => {
    const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-rpc-perm-'))
    fs.chmodSync(shared, 0o755)
    const asMember = unprivilegedUser('cstor-rpc-member', ['cstor-rpc-share'])
    const asOther = unprivilegedUser('cstor-rpc-other')
    /** What an unprivileged user gets when connecting and asking for the images. */
    const connect = (as: (script: string) => string, socket: string) =>
      as(
        `python3 -c 'import json,socket,sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(type(e).__name__); sys.exit()
s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ListImages"}).encode())
print("images" if "result" in s.recv(1 << 20).decode() else "error")' ${socket}`,
      ).trim()
    /** `cstor serve` started under umask 000, as a careless root service would be. */
    const serve = async (socket: string, ...extra: string[]) => {
      const cli = [process.execPath, path.join(repo, 'dist', 'cli', 'main.js'), '--root', main.root, '--runroot', main.runroot, 'serve', '--socket', socket, ...extra]
      const child = spawn('sh', ['-c', 'umask 000; exec "$@"', 'sh', ...cli], { env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf }, stdio: 'ignore' })
      for (let i = 0; i < 100 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50))
      return child
    }
    try {
      const owner = path.join(shared, 'owner.sock')
      const first = await serve(owner)
      const mode = (file: string) => (fs.statSync(file).mode & 0o777).toString(8)
      expect(mode(owner)).toBe('600')
      expect(connect(asMember, owner)).toBe('PermissionError')
      first.kill('SIGTERM')

      const group = path.join(shared, 'group.sock')
      const second = await serve(group, '--socket-group', 'cstor-rpc-share')
      expect(mode(group)).toBe('660')
      expect(execFileSync('stat', ['-c', '%G', group]).toString().trim()).toBe('cstor-rpc-share')
      expect(connect(asMember, group)).toBe('images')
      expect(connect(asOther, group)).toBe('PermissionError')
      second.kill('SIGTERM')
    } finally {
      fs.rmSync(shared, { recursive: true, force: true })
    }
  })
})
