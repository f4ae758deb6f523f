/** Paths of the fixture stores and runners for podman and the cstor CLI over them. */
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { assembleSplitFdStream, type SplitFdStream } from '../ts/index'
import { inPodman5, podman5Json } from './podman5'

export const repo = path.resolve(__dirname, '..')
export const fixtures = process.env.CSTOR_FIXTURES ?? path.join(repo, '.fixtures')
export const storageConf = path.join(fixtures, 'storage.conf')

export interface FixtureStore {
  root: string
  runroot: string
}

export function fixtureStore(name: 'main' | 'extra' | 'podman5' | 'podman5-composefs'): FixtureStore {
  return { root: path.join(fixtures, name, 'root'), runroot: path.join(fixtures, name, 'run') }
}

export const main = fixtureStore('main')
export const extra = fixtureStore('extra')
/** The store podman 5.8 wrote (build-podman5-stores.sh): the same images as `main`, and `localhost/chunked:1`. */
export const podman5Store = fixtureStore('podman5')
/** `localhost/chunked:1` pulled by podman 5.8 with `use_composefs`. */
export const composefsStore = fixtureStore('podman5-composefs')

/** Runs (Debian's) podman on a store and parses its JSON output. */
export function podmanJson<T = unknown>(store: FixtureStore, args: string[]): T {
  const out = execFileSync('podman', [...podmanArgs(store), ...args], {
    env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf },
    maxBuffer: 1 << 28,
  })
  return JSON.parse(out.toString()) as T
}

export interface CliResult {
  status: number | null
  stdout: string
  stderr: string
}

/** Runs the built CLI (`dist/cli/main.js`), as `npx cstor` would. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const result = spawnSync(process.execPath, [path.join(repo, 'dist', 'cli', 'main.js'), ...args], {
    env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf, ...env },
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

export function cliOn(store: FixtureStore, args: string[]): CliResult {
  return cli(['--root', store.root, '--runroot', store.runroot, ...args])
}

/**
 * A private copy of a fixture store (cp -a keeps symlinks, devices and xattrs), for tests that
 * damage it on purpose. Removed by the returned function.
 */
export function copyStore(store: FixtureStore): FixtureStore & { cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-store-'))
  execFileSync('cp', ['-a', store.root, path.join(dir, 'root')])
  // podman's own database (4: libpod/bolt_state.db, 5: db.sql) records the root it was made
  // for; a copy gets a fresh one.
  fs.rmSync(path.join(dir, 'root', 'libpod'), { recursive: true, force: true })
  fs.rmSync(path.join(dir, 'root', 'db.sql'), { force: true })
  fs.mkdirSync(path.join(dir, 'run'))
  return { root: path.join(dir, 'root'), runroot: path.join(dir, 'run'), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

/** The bytes a splitfdstream stands for, assembled by cstor into a file in `dir`; closes its fds. */
export async function assembledAndClosed(s: SplitFdStream, dir: string): Promise<Buffer> {
  const file = path.join(dir, 'assembled.tar')
  const fd = fs.openSync(file, 'w')
  try {
    await assembleSplitFdStream(s.stream, s.content, fd)
  } finally {
    fs.closeSync(fd)
    for (const open of [s.stream, ...s.content]) fs.closeSync(open)
  }
  return fs.readFileSync(file)
}

/** The metadata files of a store, and plain JSON reading and writing for damaging copies. */
/** How many fds this process has open. */
export const openFds = () => fs.readdirSync('/proc/self/fd').length

/**
 * The open fd count once it is back at `baseline`, or after `ms`: fds are closed late by design
 * in places (Node's own handles; a cancelled call's producer thread drops the fd it had ready).
 */
export async function settledFds(baseline: number, ms = 2000): Promise<number> {
  for (let waited = 0; waited < ms && openFds() !== baseline; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50))
  return openFds()
}

export const layersJson = (root: string) => path.join(root, 'overlay-layers', 'layers.json')
export const imagesJson = (root: string) => path.join(root, 'overlay-images', 'images.json')
export const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'))
export const writeJson = (file: string, value: unknown) => fs.writeFileSync(file, JSON.stringify(value))

/** A fixture store and the podman that wrote it, for tests that run on the stores of both. */
export interface PodmanFixture {
  /** `podman 4.3` or `podman 5.8`, for test names. */
  name: string
  store: FixtureStore
  /** The same podman, on this store: its JSON output parsed. */
  podmanJson<T = unknown>(args: string[]): T
  /** The store also holds `localhost/chunked:1`, pulled partially (zstd:chunked, 3 layers with a `toc-digest`). */
  chunked: boolean
  /**
   * Copies the merged view `podman image mount` shows of `ref` to `dest` (which must not exist)
   * with `cp -a`: podman 5's mount lives only in the namespace its userland runs in.
   */
  mergedCopy(ref: string, dest: string): void
}

/** The `sh -c` script of a merged copy: mount, `cp -a`, unmount; `$@` is the podman command line. */
const MERGED_COPY = 'ref=$1 dest=$2; shift 2; m=$("$@" image mount "$ref") && cp -a "$m" "$dest"; s=$?; "$@" image unmount "$ref" >/dev/null; exit $s'

function podmanArgs(store: FixtureStore): string[] {
  return ['--root', path.resolve(store.root), '--runroot', path.resolve(store.runroot), '--storage-driver', 'overlay']
}

/** Copies the merged view podman 5.8's `image mount` shows of `ref` in `store` to `dest` (see {@link PodmanFixture.mergedCopy}). */
export function podman5MergedCopy(store: FixtureStore, ref: string, dest: string): void {
  const result = inPodman5([store.root, store.runroot, path.dirname(dest)], ['sh', '-c', MERGED_COPY, 'sh', ref, dest, 'podman', ...podmanArgs(store)])
  if (result.status !== 0) throw new Error(`podman 5 image mount ${ref}: ${result.stderr}`)
}

/** The stores podman 4.3 (Debian bookworm, on this machine) and podman 5.8 (Debian sid, in a chroot) wrote. */
export const podmanFixtures: PodmanFixture[] = [
  {
    name: 'podman 4.3',
    store: main,
    podmanJson: (args) => podmanJson(main, args),
    chunked: false,
    mergedCopy: (ref, dest) => {
      execFileSync('sh', ['-c', MERGED_COPY, 'sh', ref, dest, 'podman', ...podmanArgs(main)], { env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf } })
    },
  },
  {
    name: 'podman 5.8',
    store: podman5Store,
    podmanJson: (args) => podman5Json(podman5Store, args),
    chunked: true,
    mergedCopy: (ref, dest) => podman5MergedCopy(podman5Store, ref, dest),
  },
]

/**
 * An unprivileged user of this machine (created when missing; needs root), in `groups` (each
 * created when missing). Returns a runner of shell scripts as that user.
 */
export function unprivilegedUser(name: string, groups: string[] = []): (script: string) => string {
  if (process.getuid?.() !== 0) throw new Error(`creating the user ${name} needs root: run the tests as root`)
  const known = (...args: string[]) => spawnSync(args[0], args.slice(1), { stdio: 'ignore' }).status === 0
  if (!known('id', name)) execFileSync('useradd', ['--create-home', name])
  for (const group of groups) {
    if (!known('getent', 'group', group)) execFileSync('groupadd', [group])
    execFileSync('usermod', ['--append', '--groups', group, name])
  }
  return (script) => execFileSync('su', ['-', name, '-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 })
}
