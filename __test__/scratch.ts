/** Scratch directories for tests that make thousands of files or many store copies. */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/**
 * A new directory on tmpfs (`/dev/shm`) when there is one, else in the system temp dir: these
 * tests measure cstor, not the disk, and on a busy virtual disk a metadata operation was seen to
 * take a millisecond (5,000 layer directories: 8 s on ext4, 0.2 s on tmpfs).
 */
export function scratchDir(prefix: string): string {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir()
  return fs.mkdtempSync(path.join(base, prefix))
}
