/**
 * The verbs that change the store, with podman's names and meanings: `pull`, `import`, `tag`,
 * `untag`, `rmi`. Each takes the store's write locks for the moment it writes.
 */
import type { PullResult, Storage } from '../index.js'
import { printJson, shortId } from './output.js'
import { clearProgress, progressOption } from './progress.js'
import { registryOptions, UsageError, type Flags } from './usage.js'

function reportPull(result: PullResult, what: string, flags: Flags, seconds: number): void {
  clearProgress()
  if (flags.json) return printJson({ ...result, seconds })
  const reused = result.layers.length - result.layersWritten
  process.stdout.write(
    `${what}: image ${shortId(result.imageId)}${result.existed ? ' (already there)' : ''}, ` +
      `${result.layersWritten} layers written, ${reused} already in the store, in ${seconds.toFixed(2)} s\n`,
  )
}

const since = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e9

/** `cstor pull oci:DIR[:REF]|docker-archive:FILE[:REF]|docker://REF|NAME [NAME]` */
export async function pullCommand(storage: Storage, args: string[], flags: Flags): Promise<void> {
  if (args.length < 1 || args.length > 2) throw new UsageError('cstor pull takes a source (oci:DIR[:REF], docker-archive:FILE[:REF], docker://REF or an image name) and an optional name')
  const started = process.hrtime.bigint()
  const result = await storage.pull(args[0], {
    ...(args[1] !== undefined && { name: args[1] }),
    ...registryOptions(flags),
    ...(flags.signaturePolicy !== undefined && { signaturePolicy: flags.signaturePolicy }),
    ...progressOption(flags),
  })
  reportPull(result, `Pulled ${args[0]}`, flags, since(started))
}

/** `cstor import TAR [NAME]` */
export async function importCommand(storage: Storage, args: string[], flags: Flags): Promise<void> {
  if (args.length < 1 || args.length > 2) throw new UsageError('cstor import takes a tar file and an optional name')
  const started = process.hrtime.bigint()
  const result = await storage.import(args[0], {
    ...(args[1] !== undefined && { name: args[1] }),
    ...(flags.signaturePolicy !== undefined && { signaturePolicy: flags.signaturePolicy }),
  })
  reportPull(result, `Imported ${args[0]}`, flags, since(started))
}

/** `cstor tag REF NAME...` */
export async function tagCommand(storage: Storage, args: string[], flags: Flags): Promise<void> {
  if (args.length < 2) throw new UsageError('cstor tag takes an image and at least one new name')
  const image = await storage.tag(args[0], ...args.slice(1))
  if (flags.json) printJson({ id: image.id, names: image.names })
}

/** `cstor untag REF [NAME...]` */
export async function untagCommand(storage: Storage, args: string[], flags: Flags): Promise<void> {
  if (args.length < 1) throw new UsageError('cstor untag takes an image and the names to remove (all when none)')
  const image = await storage.untag(args[0], ...args.slice(1))
  if (flags.json) printJson({ id: image.id, names: image.names })
}

/** `cstor rmi REF...` */
export async function rmiCommand(storage: Storage, args: string[], flags: Flags): Promise<void> {
  if (args.length < 1) throw new UsageError('cstor rmi takes at least one image')
  const results = []
  for (const reference of args) {
    const image = await storage.image(reference)
    const layers = await storage.removeImage(reference)
    results.push({ reference, id: image.id, removedLayers: layers })
    if (!flags.json) {
      process.stdout.write(layers.length > 0 || image.names.length <= 1 ? `Deleted: ${image.id}\n` : `Untagged: ${reference}\n`)
    }
  }
  if (flags.json) printJson(results)
}
