// @ts-check
// Lists the images of a store: short ID, size in bytes, names.
//
//   node examples/list-images.mjs [ROOT]
//
// ROOT is the store's graph root (podman's --root); without it, $CSTOR_ROOT, else the store
// podman itself would use (storage.conf).
import { Storage } from 'cstor'

const root = process.argv[2] ?? process.env.CSTOR_ROOT
const storage = root ? await Storage.open({ root }) : await Storage.discover()

for await (const image of storage.images()) {
  console.log(`${image.id.slice(0, 12)}  ${String(image.size).padStart(10)}  ${image.names.join(' ') || '<none>'}`)
}
storage.close()
