/** `cstor serve --socket PATH [--socket-group GROUP]`: lend the store over JSON-RPC until interrupted. */
import type { Storage } from '../index.js'
import { UsageError, type Flags } from './usage.js'

export async function serveCommand(storage: Storage, args: string[], flags: Flags): Promise<void> {
  if (args.length > 0 || !flags.socket) throw new UsageError('cstor serve takes --socket PATH')
  if (flags.socketGroup !== undefined && !flags.socket) throw new UsageError('--socket-group goes with --socket')
  const server = await storage.serve(flags.socket, { group: flags.socketGroup })
  process.stderr.write(`cstor: serving ${storage.root} on ${server.path} (Ctrl-C to stop)\n`)
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve())
    process.once('SIGTERM', () => resolve())
  })
  server.close()
  storage.close()
}
