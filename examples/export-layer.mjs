// @ts-check
// Writes a layer's tar to a file — rebuilt bit for bit from the store, every file's CRC checked —
// and shows that it hashes to the layer's diff digest.
//
//   node examples/export-layer.mjs LAYER FILE [ROOT]
//
// LAYER is a layer ID or unique prefix (`cstor layer list`); ROOT as in list-images.mjs.
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { Storage } from 'cstor'

const [reference, file, root = process.env.CSTOR_ROOT] = process.argv.slice(2)
if (!reference || !file) {
  console.error('usage: node examples/export-layer.mjs LAYER FILE [ROOT]')
  process.exit(2)
}
const storage = root ? await Storage.open({ root }) : await Storage.discover()

const layer = await storage.layer(reference)
const { bytes, files } = await layer.exportToFile(file)

const hash = createHash('sha256')
for await (const chunk of createReadStream(file)) hash.update(chunk)
const digest = `sha256:${hash.digest('hex')}`

console.log(`wrote ${bytes} bytes (${files} file bodies) of layer ${layer.id} to ${file}`)
console.log(`${digest} ${digest === layer.diffDigest ? '=' : '!='} diff digest ${layer.diffDigest}`)
storage.close()
