/**
 * `tarDiff` / `cstor tar-diff`: archives written by GNU tar and by tar-split, compared entry by
 * entry — the same layer from two writers is "same", each kind of change is reported by name.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CorruptError, Storage, SystemError, tarDiff } from '../ts/index'
import { cli, main } from './helpers'

let dir: string
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-tardiff-'))
})
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

/** A tree under `dir/name` made by `build`, archived by GNU tar with fixed times and owners. */
function gnuTar(name: string, build: (root: string) => void, format = 'gnu'): string {
  const root = path.join(dir, name)
  fs.mkdirSync(root)
  build(root)
  const file = path.join(dir, `${name}.tar`)
  execFileSync('tar', ['-C', root, `--format=${format}`, '--mtime=@1700000000', '--owner=0', '--group=0', '--numeric-owner', '-cf', file, '.'])
  return file
}

function base(root: string): void {
  fs.mkdirSync(path.join(root, 'etc'))
  fs.writeFileSync(path.join(root, 'etc', 'hosts'), '127.0.0.1 localhost\n')
  fs.writeFileSync(path.join(root, 'gone'), '')
  fs.symlinkSync('etc/hosts', path.join(root, 'link'))
  fs.writeFileSync(path.join(root, 'script'), '#!/bin/sh\n', { mode: 0o644 })
}

describe('tar-diff', () => {
  it('finds a layer export and tar-split asm of it the same, also through gzip', async () => {
    const storage = await Storage.open(main)
    const layer = (await (await storage.image('quay.io/cstor/formats:1')).layers())[0]
    const ours = path.join(dir, 'ours.tar')
    await layer.exportToFile(ours)
    const theirs = path.join(dir, 'theirs.tar.gz')
    execFileSync('sh', [
      '-c',
      `tar-split asm --input ${main.root}/overlay-layers/${layer.id}.tar-split.gz --path ${main.root}/overlay/${layer.id}/diff --output - | gzip > ${theirs}`,
    ])
    const result = await tarDiff(ours, theirs)
    expect(result.differences).toEqual([])
    expect(result.firstEntries).toBeGreaterThan(5)
    expect(result.secondEntries).toBe(result.firstEntries)
    const run = cli(['tar-diff', ours, theirs])
    expect(run.status, run.stderr).toBe(0)
    expect(run.stdout).toBe('')
  })

  it('reports missing and extra names, header fields, link targets and content', async () => {
    const a = gnuTar('a', base)
    const b = gnuTar('b', (root) => {
      base(root)
      fs.rmSync(path.join(root, 'gone'))
      fs.writeFileSync(path.join(root, 'new'), 'x')
      fs.writeFileSync(path.join(root, 'etc', 'hosts'), '::1 localhost\n')
      fs.chmodSync(path.join(root, 'script'), 0o755)
      fs.rmSync(path.join(root, 'link'))
      fs.symlinkSync('/etc/passwd', path.join(root, 'link'))
    })
    const { differences } = await tarDiff(a, b)
    expect(differences).toEqual(
      expect.arrayContaining([
        { kind: 'missing', name: 'gone' },
        { kind: 'extra', name: 'new' },
        { kind: 'field', name: 'script', field: 'mode', first: '644', second: '755' },
        { kind: 'field', name: 'link', field: 'linkname', first: 'etc/hosts', second: '/etc/passwd' },
        expect.objectContaining({ kind: 'field', name: 'etc/hosts', field: 'content' }),
        expect.objectContaining({ kind: 'field', name: 'etc/hosts', field: 'size' }),
      ]),
    )
    const run = cli(['tar-diff', a, b])
    expect(run.status).toBe(1)
    expect(run.stdout).toContain('- gone\n')
    expect(run.stdout).toContain('+ new\n')
    expect(run.stdout).toContain('~ script: mode 644 → 755\n')
    const json = cli(['tar-diff', '--json', a, b])
    expect(json.status).toBe(1)
    expect(JSON.parse(json.stdout).differences).toEqual(differences)
  })

  it('compares xattrs carried in PAX records', async () => {
    const plain = gnuTar('plain', base, 'posix')
    const tagged = path.join(dir, 'tagged.tar')
    const root = path.join(dir, 'plain')
    execFileSync('setfattr', ['-n', 'user.origin', '-v', 'cstor', path.join(root, 'script')])
    execFileSync('tar', ['-C', root, '--format=posix', '--xattrs', '--mtime=@1700000000', '--owner=0', '--group=0', '--numeric-owner', '-cf', tagged, '.'])
    const { differences } = await tarDiff(plain, tagged)
    expect(differences).toContainEqual({ kind: 'field', name: 'script', field: 'pax:SCHILY.xattr.user.origin', first: null, second: 'cstor' })
  })

  it('gives typed errors and exit 2 for a missing or damaged archive', async () => {
    const a = gnuTar('e', base)
    await expect(tarDiff(a, path.join(dir, 'absent.tar'))).rejects.toBeInstanceOf(SystemError)
    const truncated = path.join(dir, 'truncated.tar.gz')
    fs.writeFileSync(truncated, execFileSync('gzip', ['-c', a]).subarray(0, 200))
    await expect(tarDiff(a, truncated)).rejects.toBeInstanceOf(CorruptError)
    const run = cli(['tar-diff', a, truncated])
    expect(run.status).toBe(2)
    expect(run.stderr).toMatch(/ECORRUPT/)
    expect(cli(['tar-diff', a]).status).toBe(2)
  })
})
