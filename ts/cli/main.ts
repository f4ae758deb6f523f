#!/usr/bin/env node
/**
 * The `cstor` command. It parses global options, opens the store through the public API — the CLI
 * has no private path into the binding — and hands the rest to one module per verb group.
 */
import { parseArgs } from 'node:util'
import { CstorError, Storage } from '../index.js'
import { copyCommand } from './copy.js'
import { imageCommand } from './image.js'
import { layerCommand, resolveLinkCommand } from './layer.js'
import { loginCommand, logoutCommand } from './login.js'
import { serveCommand } from './serve.js'
import { tarDiffCommand } from './tardiff.js'
import { verifyCommand } from './verify.js'
import { importCommand, pullCommand, rmiCommand, tagCommand, untagCommand } from './write.js'
import { commandHelp } from './help.js'
import { HELP, UsageError, type Flags } from './usage.js'

const ADDITIONAL_STORE_OPTION = 'additionalimagestore='

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      root: { type: 'string' },
      runroot: { type: 'string' },
      'storage-opt': { type: 'string', multiple: true },
      json: { type: 'boolean', default: false },
      output: { type: 'string', short: 'o' },
      'no-verify': { type: 'boolean', default: false },
      'no-reflinks': { type: 'boolean', default: false },
      'no-owners': { type: 'boolean', default: false },
      'no-xattrs': { type: 'boolean', default: false },
      whiteouts: { type: 'string' },
      pretty: { type: 'boolean', default: false },
      digests: { type: 'boolean', default: false },
      dumpfile: { type: 'boolean', default: false },
      algorithm: { type: 'string' },
      hardlink: { type: 'boolean', default: false },
      compress: { type: 'string' },
      socket: { type: 'string' },
      writable: { type: 'boolean', default: false },
      'socket-group': { type: 'string' },
      registry: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      htpasswd: { type: 'string' },
      platform: { type: 'string' },
      image: { type: 'string' },
      quick: { type: 'boolean', default: false },
      quiet: { type: 'boolean', short: 'q', default: false },
      'tls-verify': { type: 'string' },
      'registries-conf': { type: 'string' },
      authfile: { type: 'string' },
      'cert-dir': { type: 'string' },
      'signature-policy': { type: 'string' },
      username: { type: 'string', short: 'u' },
      password: { type: 'string', short: 'p' },
      'password-stdin': { type: 'boolean', default: false },
      long: { type: 'boolean', short: 'l', default: false },
      recursive: { type: 'boolean', short: 'R', default: false },
      name: { type: 'string' },
      type: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help || positionals.length === 0) {
    process.stdout.write((values.help && commandHelp(positionals)) || HELP)
    return values.help ? 0 : 2
  }
  const additionalImageStores = (values['storage-opt'] ?? []).map((opt) => {
    if (!opt.startsWith(ADDITIONAL_STORE_OPTION)) throw new UsageError(`unsupported --storage-opt ${JSON.stringify(opt)}`)
    return opt.slice(ADDITIONAL_STORE_OPTION.length)
  })
  const [group, ...rest] = positionals
  const flags: Flags = {
    json: values.json,
    quiet: values.quiet,
    output: values.output,
    verify: !values['no-verify'],
    reflinks: !values['no-reflinks'],
    owners: !values['no-owners'],
    xattrs: !values['no-xattrs'],
    whiteouts: values.whiteouts,
    pretty: values.pretty,
    digests: values.digests,
    dumpfile: values.dumpfile,
    algorithm: values.algorithm,
    hardlink: values.hardlink,
    compress: values.compress,
    socket: values.socket,
    writable: values.writable,
    socketGroup: values['socket-group'],
    registry: values.registry,
    tlsCert: values['tls-cert'],
    tlsKey: values['tls-key'],
    htpasswd: values.htpasswd,
    platform: values.platform,
    image: values.image,
    quick: values.quick,
    // Unset, registries.conf decides (its insecure registries are not verified).
    tlsVerify: values['tls-verify'] === undefined ? undefined : values['tls-verify'] !== 'false',
    registriesConf: values['registries-conf'],
    authFile: values.authfile,
    certDir: values['cert-dir'],
    signaturePolicy: values['signature-policy'],
    username: values.username,
    password: values.password,
    passwordStdin: values['password-stdin'],
    long: values.long,
    recursive: values.recursive,
    name: values.name,
    type: values.type,
  }
  if (group === 'tar-diff') return tarDiffCommand(rest, flags)
  const commands: Record<string, (storage: Storage, args: string[], flags: Flags) => Promise<void | number>> = {
    image: imageCommand,
    images: (storage, args, flags) => imageCommand(storage, ['list', ...args], flags),
    layer: layerCommand,
    copy: copyCommand,
    'resolve-link': resolveLinkCommand,
    serve: serveCommand,
    verify: verifyCommand,
    pull: pullCommand,
    import: importCommand,
    tag: tagCommand,
    untag: untagCommand,
    rmi: rmiCommand,
    login: loginCommand,
    logout: logoutCommand,
  }
  const command = commands[group]
  if (!command) throw new UsageError(`unknown command ${JSON.stringify(group)}`)
  const storage = await Storage.discover({
    // The verbs that bring images in, and login and logout, start a store where there is
    // none, as podman's do.
    create: ['pull', 'import', 'login', 'logout'].includes(group),
    ...(values.root !== undefined && { root: values.root }),
    ...(values.runroot !== undefined && { runroot: values.runroot }),
    ...(additionalImageStores.length > 0 && { additionalImageStores }),
  })
  return (await command(storage, rest, flags)) ?? 0
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`cstor: ${(err as Error).message}\nRun 'cstor --help' for usage.\n`)
      process.exitCode = 2
    } else if (err instanceof CstorError) {
      process.stderr.write(`cstor: ${err.message} (${err.code})\n`)
      process.exitCode = 1
    } else {
      process.stderr.write(`cstor: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
      process.exitCode = 1
    }
  },
)
