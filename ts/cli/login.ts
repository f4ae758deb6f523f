/**
 * `cstor login` and `cstor logout`, as podman's: credentials checked against the registry, then
 * stored where podman stores them (the auth file, mode 0600, or a credential helper), so podman,
 * skopeo and buildah use them too — and removed again.
 */
import fs from 'node:fs'
import type { Storage } from '../index.js'
import { printJson } from './output.js'
import { registryOptions, UsageError, type Flags } from './usage.js'

/** The password: `-p`, or stdin up to its end without the last newline, as podman reads it. */
function password(flags: Flags): string {
  if (flags.password !== undefined && flags.passwordStdin) throw new UsageError('-p and --password-stdin cannot both be used')
  if (flags.password !== undefined) return flags.password
  if (!flags.passwordStdin) throw new UsageError('cstor login needs a password: --password-stdin or -p PASSWORD (it does not prompt)')
  return fs.readFileSync(0, 'utf8').replace(/\n$/, '')
}

/** `cstor login HOST -u USER (--password-stdin | -p PASSWORD)` */
export async function loginCommand(storage: Storage, args: string[], flags: Flags): Promise<void> {
  if (args.length !== 1) throw new UsageError('cstor login takes one registry (HOST[:PORT], or a namespace in it)')
  if (flags.username === undefined) throw new UsageError('cstor login needs -u USER (it does not prompt)')
  const result = await storage.login(args[0], {
    username: flags.username,
    password: password(flags),
    ...registryOptions(flags),
  })
  if (flags.json) return printJson(result)
  process.stdout.write('Login Succeeded!\n')
}

/** `cstor logout HOST` */
export async function logoutCommand(storage: Storage, args: string[], flags: Flags): Promise<void> {
  if (args.length !== 1) throw new UsageError('cstor logout takes one registry (HOST[:PORT], or a namespace in it)')
  const { registriesConf, authFile } = registryOptions(flags)
  await storage.logout(args[0], { registriesConf, authFile })
  if (flags.json) return printJson({ server: args[0] })
  process.stdout.write(`Removed login credentials for ${args[0]}\n`)
}
