/**
 * The CLI's manners: `cstor <command> --help` for every command `cstor --help` lists (usage,
 * examples, exit codes), group help, `--quiet`, and escape sequences only for a progress bar on a
 * terminal (run under `script`, which gives the command a pseudo-terminal).
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cli, cliOn, copyStore, main, repo, storageConf } from './helpers'

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-cli-'))
afterAll(() => fs.rmSync(work, { recursive: true, force: true }))

/** The commands the overview lists: `image list`, `copy`, `tar-diff`, … */
function listedCommands(): string[] {
  const help = cli(['--help']).stdout
  const section = help.slice(help.indexOf('Commands:\n'), help.indexOf('\n\n', help.indexOf('Commands:\n')))
  return [...section.matchAll(/^ {2}([a-z-]+(?: [a-z]+)?)(?= |$)/gm)].map((m) => m[1])
}

/** Runs the CLI on a pseudo-terminal; returns what the terminal showed (stdout and stderr). */
function onTerminal(args: string[]): string {
  const command = [process.execPath, path.join(repo, 'dist', 'cli', 'main.js'), ...args].map((a) => `'${a}'`).join(' ')
  const result = spawnSync('script', ['-qec', command, '/dev/null'], { env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf }, encoding: 'utf8' })
  expect(result.status, result.stdout).toBe(0)
  return result.stdout
}

describe('cstor CLI help', () => {
  it('has --help for every command: usage, an example, exit codes', () => {
    const commands = listedCommands()
    expect(commands).toEqual(expect.arrayContaining(['image list', 'image extract', 'layer export', 'copy', 'serve', 'verify', 'resolve-link', 'tar-diff']))
    for (const command of commands) {
      const result = cli([...command.split(' '), '--help'])
      expect(result.status, command).toBe(0)
      expect(result.stdout, command).toMatch(new RegExp(`^Usage: cstor \\[global options\\] ${command}\\b`))
      expect(result.stdout, command).toMatch(/\nExamples:\n {2}cstor /)
      expect(result.stdout, command).toMatch(/\nExit codes: 0 /)
    }
    expect(cli(['verify', '--help']).stdout).toContain('Exit codes: 0 clean (warnings and info allowed), 1 an error was found')
    expect(cli(['--help']).stdout).toMatch(/verify: 0 clean \(warnings allowed\), 1 damage/)
  })

  it('lists a group’s commands, and falls back to the overview for unknown ones', () => {
    const image = cli(['image', '--help'])
    expect(image.status).toBe(0)
    const listed = listedCommands().filter((c) => c.startsWith('image '))
    for (const command of listed) expect(image.stdout).toContain(`  cstor ${command}`)
    expect(cli(['images', '--help']).stdout).toMatch(/^Usage: cstor \[global options\] image list/)
    expect(cli(['bogus', '--help']).stdout).toMatch(/^Usage: cstor \[--root DIR\]/)
  })
})

describe('cstor CLI output', () => {
  it('draws a progress bar on a terminal only, and none with --quiet', () => {
    const args = ['--root', main.root, '--runroot', main.runroot, 'image', 'extract', 'localhost/chain:55']
    const shown = onTerminal([...args, path.join(work, 'bar')])
    expect(shown).toMatch(/\r\[[# ]{30}\] +\d+% {2}layer \d+\/55/)
    const quiet = onTerminal(['--quiet', ...args, path.join(work, 'quiet')])
    expect(quiet).toMatch(/^Extracted localhost\/chain:55 into /)
    expect(quiet).not.toContain('\x1b')
    expect(onTerminal(['-q', '--root', main.root, 'verify'])).toMatch(/^Checked \d+ images/)
  })

  it('writes no escape sequences when not on a terminal', () => {
    const copy = copyStore(main)
    try {
      const images = JSON.parse(cliOn(copy, ['image', 'list', '--json']).stdout)
      fs.rmSync(path.join(copy.root, 'overlay-images', images[0].id, 'manifest'))
      const outputs = [cliOn(copy, ['image', 'list']), cliOn(copy, ['verify']), cliOn(copy, ['image', 'extract', 'localhost/app:1', path.join(work, 'piped')])]
      expect(outputs.map((r) => r.status)).toEqual([0, 1, 0])
      for (const { stdout, stderr } of outputs) expect(stdout + stderr).not.toContain('\x1b')
    } finally {
      copy.cleanup()
    }
  })
})
