/**
 * `cstor copy <ref> <destination>`: an image from the store to a registry (`docker://`), an
 * archive (`docker-archive:`, `oci-archive:`), an OCI layout (`oci:`) or a composefs repository
 * (`composefs:`).
 */
import type { CopyOptions, Storage } from '../index.js'
import { humanSize, printJson } from './output.js'
import { clearProgress, progressOption } from './progress.js'
import { registryOptions, UsageError, type Flags } from './usage.js'

const COMPRESSIONS = ['gzip', 'zstd', 'none'] as const

export async function copyCommand(storage: Storage, args: string[], flags: Flags): Promise<void> {
  if (args.length !== 2) throw new UsageError('cstor copy takes an image reference and a destination (docker://REF, docker-archive:FILE[:NAME], oci-archive:FILE[:NAME], oci:DIR[:NAME], composefs:REPO[:NAME])')
  const compression = flags.compress ?? 'gzip'
  if (!(COMPRESSIONS as readonly string[]).includes(compression)) throw new UsageError(`--compress must be one of ${COMPRESSIONS.join(', ')}`)
  const [reference, destination] = args
  const image = await storage.image(reference)
  const options: CopyOptions = {
    compression: compression as CopyOptions['compression'],
    ...registryOptions(flags),
    ...(flags.platform !== undefined && { platform: flags.platform }),
    ...(flags.algorithm !== undefined && { algorithm: flags.algorithm as CopyOptions['algorithm'] }),
    ...(flags.hardlink && { hardlink: true }),
    ...progressOption(flags),
  }
  const started = process.hrtime.bigint()
  const result = await image.copyTo(destination, options)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  clearProgress()
  if (flags.json) return printJson({ destination, seconds, ...result })
  if (result.composefsId !== undefined) {
    process.stdout.write(
      `Copied ${image.names[0] ?? image.id} to ${destination} in ${seconds.toFixed(2)} s: composefs ID ${result.composefsId}, ` +
        `manifest ${result.manifestDigest}, ${result.layers} layers, ${humanSize(result.bytesWritten)} of new objects\n`,
    )
    return
  }
  process.stdout.write(
    `Copied ${image.names[0] ?? image.id} to ${destination} in ${seconds.toFixed(2)} s: manifest ${result.manifestDigest}, ` +
      `${result.layers} layers, ${humanSize(result.bytesWritten)} written, ${result.blobsReused} blobs already there\n`,
  )
}
