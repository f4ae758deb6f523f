/** `cstor layer …` and `cstor resolve-link`. */
import type { Layer, Storage } from '../index.js'
import { humanAge, humanSize, printJson, printTable, shortId } from './output.js'
import { UsageError } from './usage.js'

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

export async function layerCommand(storage: Storage, args: string[], json: boolean): Promise<void> {
  const [verb, ...rest] = args
  switch (verb) {
    case 'list':
    case 'ls':
      if (rest.length > 0) throw new UsageError('cstor layer list takes no arguments')
      return list(storage, json)
    case 'inspect':
      if (rest.length !== 1) throw new UsageError('cstor layer inspect takes one layer ID')
      return inspect(storage, rest[0])
    default:
      throw new UsageError(verb ? `unknown layer command ${JSON.stringify(verb)}` : 'cstor layer needs a command')
  }
}

export async function resolveLinkCommand(storage: Storage, args: string[], json: boolean): Promise<void> {
  if (args.length !== 1) throw new UsageError('cstor resolve-link takes one link ID')
  const layer = await storage.resolveLink(args[0])
  if (json) return printJson(layer)
  process.stdout.write(layer.id + '\n')
}
