import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { SystemError } from './errors.js'
import { RpcClient } from './rpc.js'

export interface UnshareHelperOptions {
  /** The store's graph root; default: what podman finds for the calling user. */
  root?: string
  runroot?: string
  /** The podman binary; default `podman` on PATH. */
  podman?: string
  /** How long to wait for the helper's socket, in ms (default 20,000). */
  timeout?: number
}

/** A cstor server running inside the user's podman user namespace. */
export interface UnshareHelper {
  /** A client whose layers arrive as fds opened inside the namespace. */
  client: RpcClient
  /** Stops the helper and removes its socket. */
  close(): Promise<void>
}

/**
 * Starts `podman unshare cstor serve` for a rootless store whose files (owned by subordinate
 * IDs) the calling user cannot read: the helper opens them inside the user namespace and passes
 * the fds back over a private socket (in a 0700 directory), so no content is copied.
 */
export async function startUnshareHelper(options: UnshareHelperOptions = {}): Promise<UnshareHelper> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-unshare-'))
  const socket = path.join(dir, 'store.sock')
  const cli = path.join(__dirname, 'cli', 'main.js')
  const args = [
    'unshare',
    process.execPath,
    cli,
    ...(options.root ? ['--root', options.root] : []),
    ...(options.runroot ? ['--runroot', options.runroot] : []),
    'serve',
    '--socket',
    socket,
  ]
  // A process group of its own: podman unshare does not pass signals on to its child, so the
  // helper is stopped by signalling the whole group.
  const child = spawn(options.podman ?? 'podman', args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true })
  const stop = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM')
    } catch {
      // Already gone.
    }
  }
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  let failed = false
  child.on('error', () => (failed = true))
  const deadline = Date.now() + (options.timeout ?? 20_000)
  while (!fs.existsSync(socket)) {
    if (failed || child.exitCode !== null || Date.now() > deadline) {
      stop()
      fs.rmSync(dir, { recursive: true, force: true })
      throw new SystemError('EIO', `podman unshare cstor serve did not start: ${stderr.trim() || 'no socket'}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    client: new RpcClient(socket),
    async close() {
      if (child.exitCode === null) stop()
      await exited
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}
