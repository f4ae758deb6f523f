// @ts-check
// Extracts an image's merged filesystem — what `podman image mount` shows — into a new directory,
// with reflinks where the filesystem has them, printing progress per layer.
//
//   node examples/extract-image.mjs IMAGE DIR [ROOT]
//
// IMAGE is any reference podman takes (alpine, localhost/app:1, an ID prefix); ROOT as in
// list-images.mjs. Run as root to keep files' owners.
import { Storage } from 'cstor'

const [reference, dir, root = process.env.CSTOR_ROOT] = process.argv.slice(2)
if (!reference || !dir) {
  console.error('usage: node examples/extract-image.mjs IMAGE DIR [ROOT]')
  process.exit(2)
}
const storage = root ? await Storage.open({ root }) : await Storage.discover()

const image = await storage.image(reference)
let shown = -1
const stats = await image.extract(dir, {
  onProgress: ({ layer, layers }) => {
    if (layer !== shown) console.log(`layer ${(shown = layer) + 1}/${layers}`)
  },
})
console.log(`extracted ${image.names[0] ?? image.id} into ${dir}: ${stats.files} files, ${stats.dirs} directories, ${stats.bytes} bytes, ${stats.reflinkedFiles} files reflinked`)
storage.close()
