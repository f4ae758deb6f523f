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
  /** Let the helper write (pull, import, tag, rmi...) inside the namespace, as podman does. */
  writable?: boolean
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
 * the fds back over a private socket (in a 0700 directory), so no content is copied. A
 * `writable` helper also runs writes there, where files can be given subordinate IDs.
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
    ...(options.writable ? ['--writable'] : []),
  ]
  // A process group of its own: podman unshare does not pass signals on to its child, so the
  // helper is stopped by signalling the whole group.
  const errors = fs.openSync(path.join(dir, 'stderr'), 'w')
  const child = spawn(options.podman ?? 'podman', args, { stdio: ['ignore', 'ignore', errors], detached: true })
  fs.closeSync(errors)
  const stop = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM')
    } catch {
      // Already gone.
    }
  }
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  let failed = false
  child.on('error', () => (failed = true))
  const deadline = Date.now() + (options.timeout ?? 20_000)
  while (!fs.existsSync(socket)) {
    if (failed || child.exitCode !== null || Date.now() > deadline) {
      stop()
      const stderr = fs.readFileSync(path.join(dir, 'stderr'), 'utf8').trim()
      fs.rmSync(dir, { recursive: true, force: true })
      throw new SystemError('EIO', `podman unshare cstor serve did not start: ${stderr || 'no socket'}`)
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

/** Stores whose content is read through a helper, with the options to start it. */
const helpers = new WeakMap<object, UnshareHelperOptions>()

/**
 * Whether a store opened with `unshare` (default `'auto'`) reads its content through a helper:
 * `'auto'` means a rootless store — not running as root, and the store root is ours — whose
 * layer files belong to subordinate IDs the user cannot read.
 */
export function wantsUnshare(mode: boolean | 'auto', root: string): boolean {
  if (mode !== 'auto') return mode
  const uid = process.getuid?.()
  if (uid === undefined || uid === 0) return false
  try {
    return fs.statSync(root).uid === uid
  } catch {
    return false
  }
}

/** Routes the content reads of the store `key` through helpers. */
export function useUnshare(key: object, options: UnshareHelperOptions): void {
  helpers.set(key, options)
}

/**
 * Runs `work` with a helper for store `key`, started for it and stopped after (a helper per
 * operation: nothing is left running, and nothing keeps the process alive afterwards); `null`
 * for a store read directly.
 */
export async function withUnshareHelper<T>(
  key: object,
  work: (helper: UnshareHelper) => Promise<T>,
  { writable = false }: { writable?: boolean } = {},
): Promise<T | null> {
  const options = helpers.get(key)
  if (!options) return null
  const helper = await startUnshareHelper({ ...options, writable })
  try {
    return await work(helper)
  } finally {
    await helper.close()
  }
}

/** Whether store `key` reads its content through helpers. */
export function usesUnshare(key: object): boolean {
  return helpers.has(key)
}

/** The options helpers of store `key` start with. */
export function unshareOptions(key: object): UnshareHelperOptions | undefined {
  return helpers.get(key)
}
