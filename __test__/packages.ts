/**
 * The npm packages as a release publishes them (`scripts/pack.sh`), and the pieces the tests that
 * install them share: reading a tarball, a PATH without a Rust toolchain, a project to install into.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { repo } from './helpers'

export const version: string = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).version

/** The platform packages a release has: one per target in package.json `napi.targets`. */
export const PLATFORMS = ['linux-x64-gnu', 'linux-arm64-gnu'] as const
export type PlatformName = (typeof PLATFORMS)[number]

export interface Packed {
  main: string
  platform: Record<PlatformName, string>
}

/** Runs `scripts/pack.sh` into `dir` (it builds the binary of every target first). */
export function packAll(dir: string): Packed {
  execFileSync('bash', [path.join(repo, 'scripts', 'pack.sh'), dir], { stdio: ['ignore', 'ignore', 'pipe'] })
  const tgz = (name: string) => path.join(dir, `${name}-${version}.tgz`)
  return {
    main: tgz('cstor'),
    platform: Object.fromEntries(PLATFORMS.map((p) => [p, tgz(`cstor-${p}`)])) as Record<PlatformName, string>,
  }
}

/** A package's package.json, read from its tarball. */
export function packageJsonOf(tgz: string): Record<string, unknown> {
  return JSON.parse(execFileSync('tar', ['-xzOf', tgz, 'package/package.json'], { encoding: 'utf8' }))
}

export const filesOf = (tgz: string) => execFileSync('tar', ['-tzf', tgz], { encoding: 'utf8' }).trim().split('\n')

/** Extracts one file of a package tarball to `to`. */
export function extractFrom(tgz: string, member: string, to: string): string {
  fs.writeFileSync(to, execFileSync('tar', ['-xzOf', tgz, `package/${member}`], { maxBuffer: 1 << 30 }))
  return to
}

/** A bin directory in `dir` with only what installing and running needs: node, npm, npx and sh. */
export function minimalPath(dir: string): string {
  const bin = path.join(dir, 'bin')
  fs.mkdirSync(bin)
  for (const tool of ['node', 'npm', 'npx', 'sh']) {
    const found = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim()
    fs.symlinkSync(found, path.join(bin, tool))
  }
  return bin
}

/** An empty npm project in `dir`. */
export function emptyProject(dir: string): string {
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'pack-probe', private: true }))
  return dir
}

/**
 * Installs tarballs offline into `project` with an empty npm cache, so nothing can come from an
 * earlier download; `npmArgs` may name another platform (`--cpu=arm64`).
 */
export function installOffline(project: string, tarballs: string[], env: NodeJS.ProcessEnv, npmArgs: string[] = []) {
  return spawnSync('npm', ['install', '--offline', '--no-audit', '--no-fund', ...npmArgs, ...tarballs], {
    cwd: project,
    env: { ...env, npm_config_cache: path.join(project, '.npm-cache'), npm_config_update_notifier: 'false' },
    encoding: 'utf8',
  })
}
