/** `cstor layer …` and `cstor resolve-link`. */
import type { Layer, Storage } from '../index.js'
import { runExtraction } from './extract.js'
import { layerLs } from './files.js'
import { humanAge, humanSize, printJson, printTable, shortId } from './output.js'
import { UsageError, type Flags } from './usage.js'

async function list(storage: Storage, json: boolean): Promise<void> {
  const layers = await storage.listLayers()
  if (json) return printJson(layers)
  printTable(
    ['ID', 'PARENT', 'SIZE', 'CREATED', 'NAMES'],
    layers.map((l: Layer) => [shortId(l.id), shortId(l.parent), humanSize(l.diffSize), humanAge(l.created), l.names.join(',')]),
  )
}

async function inspect(storage: Storage, reference: string): Promise<void> {
  const layer = await storage.layer(reference)
  const [chain, lower] = await Promise.all([layer.chain(), layer.lowerChain()])
  printJson({ ...layer, parents: chain.slice(1).map((l) => l.id), lower: lower.map((l) => l.id) })
}

async function exportLayer(storage: Storage, reference: string, { output, verify, json }: Flags): Promise<void> {
  if (output === undefined && process.stdout.isTTY) {
    throw new UsageError('refusing to write a tar to a terminal: redirect stdout or use -o FILE')
  }
  const layer = await storage.layer(reference)
  if (output === undefined) {
    await layer.exportToFd(process.stdout.fd, { verify })
    return
  }
  const stats = await layer.exportToFile(output, { verify })
  if (json) printJson({ id: layer.id, file: output, ...stats })
}

export async function layerCommand(storage: Storage, args: string[], flags: Flags): Promise<void> {
  const [verb, ...rest] = args
  switch (verb) {
    case 'ls':
      // `layer ls` alone lists layers; with a layer, its own entries.
      if (rest.length > 1) throw new UsageError('cstor layer ls takes at most one layer ID')
      if (rest.length === 1) return layerLs((await storage.layer(rest[0])).fs, flags)
      return list(storage, flags.json)
    case 'list':
      if (rest.length > 0) throw new UsageError('cstor layer list takes no arguments')
      return list(storage, flags.json)
    case 'inspect':
      if (rest.length !== 1) throw new UsageError('cstor layer inspect takes one layer ID')
      return inspect(storage, rest[0])
    case 'export':
      if (rest.length !== 1) throw new UsageError('cstor layer export takes one layer ID')
      return exportLayer(storage, rest[0], flags)
    case 'toc':
      if (rest.length !== 1) throw new UsageError('cstor layer toc takes one layer ID')
      return printJson(await (await storage.layer(rest[0])).toc({ digests: flags.digests }), { pretty: flags.pretty })
    case 'extract': {
      if (rest.length !== 2) throw new UsageError('cstor layer extract takes a layer ID and a directory')
      const layer = await storage.layer(rest[0])
      return runExtraction(`layer ${layer.id.slice(0, 12)}`, rest[1], flags, (options) => layer.extract(rest[1], options))
    }
    default:
      throw new UsageError(verb ? `unknown layer command ${JSON.stringify(verb)}` : 'cstor layer needs a command')
  }
}

export async function resolveLinkCommand(storage: Storage, args: string[], { json }: Flags): Promise<void> {
  if (args.length !== 1) throw new UsageError('cstor resolve-link takes one link ID')
  const layer = await storage.resolveLink(args[0])
  if (json) return printJson(layer)
  process.stdout.write(layer.id + '\n')
}
