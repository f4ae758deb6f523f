/** The `cstor` CLI: verbs, --json, exit codes (0 ok, 1 typed error, 2 usage), discovery flags. */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { cli, cliOn, extra, main, podmanJson } from './helpers'

describe('cstor CLI', () => {
  it('prints a podman-like image table with one row per name', () => {
    const result = cliOn(main, ['image', 'list'])
    expect(result.status, result.stderr).toBe(0)
    const lines = result.stdout.trim().split('\n')
    expect(lines[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/)
    expect(lines.some((l) => /^localhost\/app\s+v1\.0\s+[0-9a-f]{12}\s/.test(l))).toBe(true)
    expect(lines.some((l) => /^<none>\s+<none>\s+[0-9a-f]{12}\s/.test(l))).toBe(true)
  })

  it('inspects layers and resolves links with --json', () => {
    const image = JSON.parse(cliOn(main, ['image', 'inspect', 'app', '--json']).stdout)
    const top = image.image.topLayer
    const layer = JSON.parse(cliOn(main, ['layer', 'inspect', top.slice(0, 12), '--json']).stdout)
    expect(layer.id).toBe(top)
    expect(layer.parents).toEqual(image.layers.slice(1).map((l: { id: string }) => l.id))
    expect(layer.lower).toEqual(layer.parents)
    const link = fs.readFileSync(path.join(main.root, 'overlay', top, 'link'), 'utf8')
    expect(cliOn(main, ['resolve-link', link]).stdout.trim()).toBe(top)
    const layers = JSON.parse(cliOn(main, ['layer', 'list', '--json']).stdout)
    expect(layers.length).toBeGreaterThan(55)
    expect(cliOn(main, ['layer', 'list']).stdout.split('\n')[0]).toMatch(/^ID\s+PARENT\s+SIZE/)
    expect(cliOn(main, ['image', 'layers', 'app']).stdout.split('\n')).toHaveLength(3 + 2)
  })

  it('exits 1 with a one-line message and code on typed errors', () => {
    for (const args of [['image', 'inspect', 'nonexistent'], ['layer', 'inspect', 'f'.repeat(64)], ['resolve-link', 'NOPE']]) {
      const result = cliOn(main, args)
      expect(result.status, args.join(' ')).toBe(1)
      expect(result.stderr.trim().split('\n')).toHaveLength(1)
      expect(result.stderr).toMatch(/^cstor: .*\((ENOIMAGE|ENOLAYER)\)$/m)
      expect(result.stdout).toBe('')
    }
    const missing = cli(['--root', '/nonexistent', 'image', 'list'])
    expect(missing.status).toBe(1)
    expect(missing.stderr).toContain('ENOSTORE')
  })

  it('exits 2 on usage errors and 0 on --help', () => {
    for (const args of [['bogus'], ['image'], ['image', 'inspect'], ['image', 'list', 'extra-arg'], ['--no-such-flag', 'image', 'list'], []]) {
      expect(cliOn(main, args).status, JSON.stringify(args)).toBe(2)
    }
    const help = cli(['--help'])
    expect(help.status).toBe(0)
    expect(help.stdout).toContain('Usage: cstor')
  })

  it('finds the store through storage.conf and CONTAINERS_STORAGE_ROOT, as podman does', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-conf-'))
    const conf = path.join(dir, 'storage.conf')
    fs.writeFileSync(
      conf,
      `[storage]\ndriver = "overlay"\ngraphroot = "${main.root}"\nrunroot = "${main.runroot}"\n[storage.options]\nadditionalimagestores = ["${extra.root}"]\n`,
    )
    const viaConf = JSON.parse(cli(['image', 'list', '--json'], { CONTAINERS_STORAGE_CONF: conf }).stdout)
    const podmanExtra = podmanJson<{ Id: string }[]>(extra, ['images', '--all', '--format', 'json'])
    expect(viaConf.map((i: { id: string }) => i.id)).toEqual(expect.arrayContaining(podmanExtra.map((i) => i.Id)))
    const viaRoot = cli(['image', 'list', '--json'], { CONTAINERS_STORAGE_CONF: conf, CONTAINERS_STORAGE_ROOT: extra.root })
    expect(JSON.parse(viaRoot.stdout).every((i: { store: string }) => i.store === extra.root)).toBe(true)
    fs.writeFileSync(conf, '[storage]\ndriver = "vfs"\n')
    const vfs = cli(['--root', main.root, 'image', 'list'], { CONTAINERS_STORAGE_CONF: conf })
    expect(vfs.status).toBe(1)
    expect(vfs.stderr).toContain('EUNSUPPORTED')
    fs.writeFileSync(conf, '[storage\n')
    expect(cli(['image', 'list'], { CONTAINERS_STORAGE_CONF: conf }).stderr).toContain('ECONFIG')
    fs.rmSync(dir, { recursive: true })
  })
})
