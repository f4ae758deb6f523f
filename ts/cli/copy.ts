/** `cstor copy <ref> oci:DIR[:NAME]`: an image from the store into an OCI image layout. */
import type { OciCopyOptions, Storage } from '../index.js'
import { humanSize, printJson } from './output.js'
import { clearProgress, progressOption } from './progress.js'
import { UsageError, type Flags } from './usage.js'

const COMPRESSIONS = ['none', 'gzip', 'zstd'] as const

/** `oci:DIR[:NAME]` → directory and ref name, split at the first colon as skopeo does. */
function ociDestination(destination: string): { dir: string; refName?: string } {
  if (!destination.startsWith('oci:')) throw new UsageError(`copy writes to oci:DIR[:NAME], not ${JSON.stringify(destination)}`)
  const rest = destination.slice('oci:'.length)
  const colon = rest.indexOf(':')
  const dir = colon < 0 ? rest : rest.slice(0, colon)
  if (dir === '') throw new UsageError('oci: needs a directory')
  return colon < 0 ? { dir } : { dir, refName: rest.slice(colon + 1) }
}

export async function copyCommand(storage: Storage, args: string[], flags: Flags): Promise<void> {
  if (args.length !== 2) throw new UsageError('cstor copy takes an image reference and oci:DIR[:NAME]')
  const compression = flags.compress ?? 'none'
  if (!(COMPRESSIONS as readonly string[]).includes(compression)) throw new UsageError(`--compress must be one of ${COMPRESSIONS.join(', ')}`)
  const { dir, refName } = ociDestination(args[1])
  const image = await storage.image(args[0])
  const options: OciCopyOptions = {
    compression: compression as OciCopyOptions['compression'],
    ...(refName !== undefined && { refName }),
    ...(flags.platform !== undefined && { platform: flags.platform }),
    ...progressOption(flags),
  }
  const started = process.hrtime.bigint()
  const result = await image.copyToOci(dir, options)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  clearProgress()
  if (flags.json) return printJson({ dir, refName: refName ?? null, seconds, ...result })
  process.stdout.write(
    `Copied ${image.names[0] ?? image.id} to ${args[1]} in ${seconds.toFixed(2)} s: manifest ${result.manifestDigest}, ` +
      `${result.layers} layers, ${humanSize(result.bytesWritten)} written, ${result.blobsReused} blobs already there\n`,
  )
}
