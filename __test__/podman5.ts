/** podman 5 and skopeo from the Debian sid userland (scripts/podman5), run on stores of this machine. */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { repo, type FixtureStore } from './helpers'

export interface Podman5Result {
  status: number | null
  stdout: string
  stderr: string
}

const wrapper = path.join(repo, 'scripts', 'podman5')

/** Runs `command` in the podman 5 userland with `binds` (paths of this machine) visible at the same paths. */
export function inPodman5(binds: string[], command: string[], env: NodeJS.ProcessEnv = {}): Podman5Result {
  const result = spawnSync(wrapper, [...binds.flatMap((b) => ['--bind', b]), ...command], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  })
  if (result.error) throw result.error
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

/** podman 5 on a store (overlay driver, its root and runroot bound in); `conf` is a storage.conf to use. */
export function podman5(store: FixtureStore, args: string[], conf?: string): Podman5Result {
  fs.mkdirSync(store.runroot, { recursive: true })
  const binds = [store.root, store.runroot, ...(conf ? [conf] : [])]
  // Without `conf`, the userland's own storage.conf: never one of this machine's paths it cannot see.
  const env = { CONTAINERS_STORAGE_CONF: conf }
  return inPodman5(binds, ['podman', '--root', store.root, '--runroot', store.runroot, '--storage-driver', 'overlay', ...args], env)
}
