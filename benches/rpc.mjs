#!/usr/bin/env node
// Layer over a Unix socket: fds (JSON-RPC GetLayerSplitfdstream, StreamLayer) versus the tar as
// bytes through the socket — the multi-GB layer podman builds from this machine's /usr, in one
// run, median of N runs each, with ratios against the bytes case.
//
//   node benches/rpc.mjs [--source /usr] [--runs 3]
// Needs `npm run build` first. Writes bench-results/rpc.md (git-ignored).
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { benchStore, inProcess, measure, out, report, repo } from './lib.mjs'

const { values } = parseArgs({ options: { source: { type: 'string', default: '/usr' }, runs: { type: 'string', default: '3' } } })
const { root, runroot, image } = benchStore(values.source)
const { Storage, RpcClient, assembleSplitFdStream } = await import(path.join(repo, 'dist', 'index.js'))
const storage = await Storage.open({ root, runroot })
const layer = (await (await storage.image(image)).layers())[0]

const rpcSocket = path.join(out, 'rpc.sock')
const bytesSocket = path.join(out, 'bytes.sock')
for (const socket of [rpcSocket, bytesSocket]) fs.rmSync(socket, { force: true })
const server = await storage.serve(rpcSocket)
const client = new RpcClient(rpcSocket)
// The bytes baseline: a plain socket server writing the exported tar into each connection.
const bytesServer = net.createServer((connection) => layer.export().pipe(connection))
await new Promise((resolve) => bytesServer.listen(bytesSocket, resolve))

/** A `cat > /dev/null` consumer; resolves when it has read everything written to `fd`'s pipe. */
function catConsumer() {
  const child = spawn('sh', ['-c', 'cat > /dev/null'], { stdio: ['pipe', 'ignore', 'inherit'] })
  return { fd: child.stdin._handle.fd, done: new Promise((resolve) => child.on('exit', resolve)), end: () => child.stdin.end() }
}

const closeAll = (fds) => fds.forEach((fd) => fs.closeSync(fd))
// Bodies up to 64 KiB travel inline: /usr has ~5,000 files above that, ~40,000 above the 4 KiB
// default — more fds than this process (server and client both) may hold open here.
const inline = { inlineThreshold: 64 << 10 }
const cases = [
  [
    'bytes: tar through a Unix socket (Node net, layer.export())',
    () =>
      inProcess(
        () =>
          new Promise((resolve, reject) => {
            const connection = net.connect(bytesSocket)
            connection.on('data', () => {})
            connection.on('end', resolve)
            connection.on('error', reject)
          }),
      ),
  ],
  [
    'fds: GetLayerSplitfdstream, 64 KiB inline (receive stream + fds only)',
    () =>
      inProcess(async () => {
        const s = await client.getLayerSplitFdStream(layer.id, inline)
        closeAll([s.stream, ...s.content])
      }),
  ],
  [
    'fds: GetLayerSplitfdstream, 64 KiB inline + assemble the tar into a pipe (| cat)',
    () =>
      inProcess(async () => {
        const s = await client.getLayerSplitFdStream(layer.id, inline)
        const consumer = catConsumer()
        await assembleSplitFdStream(s.stream, s.content, consumer.fd)
        consumer.end()
        await consumer.done
        closeAll([s.stream, ...s.content])
      }),
  ],
  [
    'fds: StreamLayer notifications (segments + one fd per file, fds closed unread)',
    () =>
      inProcess(async () => {
        for await (const part of client.streamLayer(layer.id)) if (part.kind === 'file') fs.closeSync(part.fd)
      }),
  ],
]
const results = await measure(cases, Number(values.runs))
server.close()
bytesServer.close()
const gb = layer.diffSize / 1e9
report('rpc.md', `Layer: ${gb.toFixed(2)} GB from ${values.source}, ${values.runs} runs each (median), ${new Date().toISOString()}`, results, 'bytes: tar through a Unix socket (Node net, layer.export())', gb)
process.exit(0)
