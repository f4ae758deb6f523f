/**
 * The process `startUnshareHelper` starts inside `podman unshare`: it opens the store directly
 * (as root of the user namespace, where its files are readable and writable), serves every
 * operation on the socket it was given, says so on stdout — `{"listening": PATH}`, or
 * `{"error": {code, message}}` — and stops when its stdin, a pipe from the process that started
 * it, ends.
 */
import { Storage, type OpenOptions } from './storage.js'

interface HelperRequest {
  socket: string
  store: Partial<OpenOptions>
  writable: boolean
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? '{}') as HelperRequest
  const { root, ...rest } = request.store
  const storage = root ? await Storage.open({ root, ...rest, unshare: false }) : await Storage.discover({ ...rest, unshare: false })
  const server = await storage.serve(request.socket, { writable: request.writable })
  process.stdout.write(`${JSON.stringify({ listening: server.path })}\n`)
  const stop = async () => {
    await server.close()
    await storage.close()
    process.exit(0)
  }
  process.stdin.on('end', stop)
  process.stdin.on('error', stop)
  process.once('SIGTERM', stop)
  process.stdin.resume()
}

main().catch((err: unknown) => {
  const { code = 'EIO', message = String(err) } = err as { code?: string; message?: string }
  process.stdout.write(`${JSON.stringify({ error: { code, message } })}\n`)
  process.exit(1)
})
