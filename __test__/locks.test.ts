/**
 * cstor reads under containers/storage's own fcntl locks: while another process holds
 * images.lock for writing (as podman does while it writes images.json), a listing waits for it.
 */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { Storage } from '../ts/index'
import { main } from './helpers'

/** Holds an exclusive POSIX record lock on `file` (python's lockf is fcntl F_SETLKW) until stdin closes. */
function holdWriteLock(file: string) {
  const script = 'import fcntl,sys\nf=open(sys.argv[1],"r+")\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint("locked",flush=True)\nsys.stdin.read()\n'
  const child = spawn('python3', ['-c', script, file], { stdio: ['pipe', 'pipe', 'inherit'] })
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve())
    child.once('exit', (code) => reject(new Error(`lock holder exited ${code}`)))
  })
  return { locked, release: () => child.stdin.end() }
}

describe('locks', () => {
  for (const [lockFile, read] of [
    ['overlay-images/images.lock', (s: Storage) => s.listImages()],
    ['overlay-layers/layers.lock', (s: Storage) => s.listLayers()],
  ] as const) {
    it(`waits while another process write-locks ${lockFile}`, async () => {
      const storage = await Storage.open(main)
      const holder = holdWriteLock(path.join(main.root, lockFile))
      await holder.locked
      let done = false
      const listing = read(storage).then((r) => {
        done = true
        return r
      })
      await new Promise((r) => setTimeout(r, 300))
      expect(done).toBe(false)
      holder.release()
      expect((await listing).length).toBeGreaterThan(0)
      expect(done).toBe(true)
    })
  }
})
