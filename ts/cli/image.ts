/** `cstor image …`: list, inspect, layers, toc, extract, composefs, and the files: cat, ls, find, diff, analyze. */
import type { Image, Storage } from '../index.js'
import { runExtraction } from './extract.js'
import { analyze, cat, diff, find, ls } from './files.js'
import { humanAge, humanSize, printJson, printTable, shortId } from './output.js'
import { UsageError, type Flags } from './usage.js'

/** Splits a stored name into podman's REPOSITORY and TAG columns. */
function repositoryAndTag(name: string): [string, string] {
  const at = name.indexOf('@')
  if (at >= 0) return [name.slice(0, at), '<none>']
  const colon = name.lastIndexOf(':')
  return colon > name.lastIndexOf('/') ? [name.slice(0, colon), name.slice(colon + 1)] : [name, 'latest']
}

async function list(storage: Storage, json: boolean): Promise<void> {
  const images = await storage.listImages()
  if (json) return printJson(images)
  const rows = images.flatMap((image: Image) => {
    const names = image.names.length > 0 ? image.names.map(repositoryAndTag) : [['<none>', '<none>']]
    return names.map(([repository, tag]) => [
      repository,
      tag,
      shortId(image.id),
      humanAge(image.created),
      humanSize(image.size),
    ])
  })
  printTable(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], rows)
}

async function inspect(storage: Storage, reference: string): Promise<void> {
  const details = await (await storage.image(reference)).inspect()
  // Inspect output is JSON for people too, as podman's is.
  printJson(details)
}

async function layers(storage: Storage, reference: string, json: boolean): Promise<void> {
  const layerList = await (await storage.image(reference)).layers()
  if (json) return printJson(layerList)
  printTable(
    ['ID', 'DIFF DIGEST', 'SIZE', 'CREATED'],
    layerList.map((l) => [shortId(l.id), l.diffDigest ?? '-', humanSize(l.diffSize), humanAge(l.created)]),
  )
}

export async function imageCommand(storage: Storage, args: string[], flags: Flags): Promise<void> {
  const { json } = flags
  const [verb, ...rest] = args
  const reference = (): string => {
    if (rest.length !== 1) throw new UsageError(`cstor image ${verb} takes one image reference`)
    return rest[0]
  }
  switch (verb) {
    case 'ls':
      // `image ls` alone lists images, as podman's does; with an image, its files.
      if (rest.length > 2) throw new UsageError('cstor image ls takes an image reference and at most one path')
      if (rest.length > 0) return ls((await storage.image(rest[0])).fs, rest[1] ?? '/', flags)
      return list(storage, json)
    case 'list':
      if (rest.length > 0) throw new UsageError('cstor image list takes no arguments')
      return list(storage, json)
    case 'cat':
      if (rest.length < 2) throw new UsageError('cstor image cat takes an image reference and at least one path')
      return cat(storage, rest[0], rest.slice(1))
    case 'find':
      return find((await storage.image(reference())).fs, flags)
    case 'analyze':
      return analyze(storage, reference(), flags)
    case 'diff':
      if (rest.length < 1 || rest.length > 2) throw new UsageError('cstor image diff takes one or two image references')
      return diff(storage, rest[0], rest[1], flags)
    case 'inspect':
      return inspect(storage, reference())
    case 'layers':
      return layers(storage, reference(), json)
    case 'toc': {
      const whiteouts = flags.whiteouts as 'apply' | 'list' | undefined
      return printJson(await (await storage.image(reference())).toc({ digests: flags.digests, whiteouts }), { pretty: flags.pretty })
    }
    case 'extract': {
      if (rest.length !== 2) throw new UsageError('cstor image extract takes an image reference and a directory')
      const image = await storage.image(rest[0])
      return runExtraction(image.names[0] ?? image.id, rest[1], flags, (options) => image.extract(rest[1], options))
    }
    case 'composefs': {
      if (!flags.output) throw new UsageError('cstor image composefs needs -o FILE')
      const algorithm = flags.algorithm as 'sha256' | 'sha512' | undefined
      const info = await (await storage.image(reference())).composefs(flags.output, { dumpfile: flags.dumpfile, algorithm })
      if (json) return printJson(info)
      process.stdout.write(`${info.id}\n`)
      return
    }
    default:
      throw new UsageError(verb ? `unknown image command ${JSON.stringify(verb)}` : 'cstor image needs a command')
  }
}
