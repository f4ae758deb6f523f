// @ts-check
// Serves a store over JSON-RPC on a Unix socket and queries it as another process would: images,
// layers, and one layer as a splitfdstream (its tar as a memfd plus the files' own fds).
//
//   node examples/serve.mjs [ROOT]
//
// ROOT as in list-images.mjs. The socket lives in a temporary directory and is removed at the end.
import { closeSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RpcClient, Storage } from 'cstor'

const root = process.argv[2] ?? process.env.CSTOR_ROOT
const storage = root ? await Storage.open({ root }) : await Storage.discover()

const dir = mkdtempSync(join(tmpdir(), 'cstor-serve-'))
const server = await storage.serve(join(dir, 'cstor.sock'))
try {
  const client = new RpcClient(server.path)
  const images = await client.listImages()
  const layers = await client.listLayers()
  console.log(`${server.path}: ${images.length} images, ${layers.length} layers`)

  const image = images.find((i) => i.topLayer !== null)
  if (image?.topLayer) {
    const { stream, content } = await client.getLayerSplitFdStream(image.topLayer)
    console.log(`layer ${image.topLayer} of ${image.names[0] ?? image.id}: a stream and ${content.length} content fds`)
    for (const fd of [stream, ...content]) closeSync(fd)
  }
} finally {
  server.close()
  storage.close()
  rmSync(dir, { recursive: true, force: true })
}
