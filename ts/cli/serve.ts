/**
 * `cstor serve`: lend the store until interrupted — over JSON-RPC on a Unix socket (`--socket`,
 * `--writable` for the write methods too), as a read-only OCI registry (`--registry`), or both.
 */
import type { Storage } from '../index.js'
import { UsageError, type Flags } from './usage.js'

export async function serveCommand(storage: Storage, args: string[], flags: Flags): Promise<void> {
  if (args.length > 0 || (!flags.socket && flags.registry === undefined)) throw new UsageError('cstor serve takes --socket PATH and/or --registry ADDR')
  if (flags.socketGroup !== undefined && !flags.socket) throw new UsageError('--socket-group goes with --socket')
  if (flags.writable && !flags.socket) throw new UsageError('--writable goes with --socket')
  const registryOnly = { 'tls-cert': flags.tlsCert, 'tls-key': flags.tlsKey, htpasswd: flags.htpasswd }
  for (const [option, value] of Object.entries(registryOnly)) {
    if (value !== undefined && flags.registry === undefined) throw new UsageError(`--${option} goes with --registry`)
  }
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key go together')
  const closers: (() => Promise<void>)[] = []
  try {
    if (flags.socket) {
      const server = await storage.serve(flags.socket, { writable: flags.writable, group: flags.socketGroup })
      closers.push(() => server.close())
      process.stderr.write(`cstor: serving ${storage.root} over JSON-RPC on ${server.path}\n`)
    }
    if (flags.registry !== undefined) {
      const server = await storage.serveRegistry({
        address: flags.registry,
        tls: flags.tlsCert && flags.tlsKey ? { cert: flags.tlsCert, key: flags.tlsKey } : undefined,
        htpasswd: flags.htpasswd,
        verify: flags.verify,
        onRequest: flags.quiet ? undefined : (entry) => process.stdout.write(`${entry.line}\n`),
      })
      closers.push(() => server.close())
      const scheme = flags.tlsCert ? 'https' : 'http'
      process.stderr.write(`cstor: serving ${storage.root} as a registry on ${scheme}://${server.address} (pull ${server.address}/<image name>)\n`)
    }
    process.stderr.write('cstor: Ctrl-C to stop\n')
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve())
      process.once('SIGTERM', () => resolve())
    })
  } finally {
    for (const close of closers) await close()
    await storage.close()
  }
}
