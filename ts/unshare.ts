/**
 * The user-namespace helper of a rootless store: a cstor server started with `podman unshare`,
 * where the store's subordinate-owned files can be read and written as podman itself does —
 * as root of the user's namespace. Started once per opened store (see `HelperBackend`), it
 * serves every operation over a private socket, passes fds back and forth, and ends when the
 * store is closed or this process exits (it watches its stdin, a pipe from this process).
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import type { Readable } from 'node:stream'
import { fromNative, SystemError } from './errors.js'
import { RpcClient } from './rpc.js'

export interface UnshareHelperOptions {
  /** The store's graph root; default: what podman finds for the calling user. */
  root?: string
  runroot?: string
  driver?: string
  additionalImageStores?: string[]
  /** Create the store when it is missing or empty (as `Storage.open`'s `create`). */
  create?: boolean
  /** The podman binary; default `podman` on PATH. */
  podman?: string
  /** How long to wait for the helper to listen, in ms (default 20,000). */
  timeout?: number
  /** Let the helper write (pull, import, tag, rmi...) inside the namespace, as podman does. */
  writable?: boolean
}

/** A cstor server running inside the user's podman user namespace. */
export interface UnshareHelper {
  /** A client of it: every operation, layers arriving as fds opened inside the namespace. */
  client: RpcClient
  /** Stops the helper and removes its socket. */
  close(): Promise<void>
}

/** What the helper's process runs (`ts/unshare-helper.ts`). */
const HELPER_MAIN = path.join(__dirname, 'unshare-helper.js')

/**
 * Starts a cstor server for a rootless store inside `podman unshare`: its socket is in a private
 * 0700 directory; it opens the store's files there and passes the fds back, so no content is
 * copied. A `writable` helper also runs writes there, where files get subordinate IDs.
 */
export async function startUnshareHelper(options: UnshareHelperOptions = {}): Promise<UnshareHelper> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-unshare-'))
  const socket = path.join(dir, 'store.sock')
  const stderrFile = path.join(dir, 'stderr')
  const { podman = 'podman', timeout = 20_000, writable = false, ...store } = options
  const request = JSON.stringify({ socket, store, writable })
  const errors = fs.openSync(stderrFile, 'w')
  // A process group of its own: podman unshare does not pass signals on to its child, so the
  // helper is stopped by signalling the whole group. Its stdin is a pipe from us: when this
  // process ends, the helper sees end of file and stops.
  const child = spawn(podman, ['unshare', process.execPath, HELPER_MAIN, request], {
    stdio: ['pipe', 'pipe', errors],
    detached: true,
  })
  fs.closeSync(errors)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = () => {
    child.stdin?.end()
    try {
      if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, 'SIGTERM')
    } catch {
      // Already gone.
    }
  }
  const cleanUp = async () => {
    // Waiting for the helper to end is work Node must stay for.
    child.ref()
    stop()
    await exited
    fs.rmSync(dir, { recursive: true, force: true })
  }
  let ready: { listening?: string; error?: { code: string; message: string } } | undefined
  try {
    ready = await firstLine(child.stdout!, timeout)
  } catch (err) {
    const stderr = fs.existsSync(stderrFile) ? fs.readFileSync(stderrFile, 'utf8').trim() : ''
    await cleanUp()
    throw new SystemError('EIO', `podman unshare did not start the cstor helper: ${stderr || (err as Error).message}`, { cause: err })
  }
  if (!ready?.listening) {
    await cleanUp()
    throw fromNative(new Error(`[${ready?.error?.code ?? 'EIO'}] ${ready?.error?.message ?? 'the cstor helper did not start'}`))
  }
  // Nothing of the helper keeps Node running: it is a servant of the calls, which do.
  child.unref()
  for (const stream of [child.stdin, child.stdout] as unknown as { unref?: () => void }[]) stream?.unref?.()
  let closing: Promise<void> | undefined
  return {
    client: new RpcClient(socket),
    close: () => (closing ??= cleanUp()),
  }
}

/** The helper's first line of output, parsed: `{ listening }` or `{ error }`. */
async function firstLine(stdout: Readable, timeout: number) {
  const lines = readline.createInterface({ input: stdout })
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      new Promise<{ listening?: string; error?: { code: string; message: string } }>((resolve, reject) => {
        lines.once('line', (line) => {
          try {
            resolve(JSON.parse(line))
          } catch {
            reject(new Error(`unexpected output: ${line}`))
          }
        })
        lines.once('close', () => reject(new Error('it exited')))
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${timeout} ms`)), timeout)
      }),
    ])
  } finally {
    clearTimeout(timer)
    lines.close()
  }
}

/**
 * Whether a store opened with `unshare` (default `'auto'`) runs its operations through a
 * helper: `'auto'` means a rootless store — not running as root, and the store root is ours —
 * whose layer files belong to subordinate IDs the user cannot read.
 */
export function wantsUnshare(mode: boolean | 'auto', root: string): boolean {
  if (mode !== 'auto') return mode
  const uid = process.getuid?.()
  if (uid === undefined || uid === 0) return false
  try {
    return fs.statSync(root).uid === uid
  } catch {
    // Not there yet (a pull creates it): the rootless default location is the user's own.
    return path.resolve(root).startsWith(os.homedir() + path.sep)
  }
}
