/**
 * Field-by-field pictures of layer directories, for comparing what cstor writes with what podman
 * writes for the same layer: everything `snapshot` sees, with the times of writing (any mtime
 * after `since`) and the random parts (the `link` name, the link names `lower` lists) masked.
 */
import path from 'node:path'
import { snapshot, type Tree } from './tree'

/** The picture of `overlay/<id>` in the store at `root`, for writes that began at `since` (ns). */
export function layerPicture(root: string, id: string, since: bigint): Tree {
  const tree = snapshot(path.join(root, 'overlay', id))
  for (const [rel, fields] of Object.entries(tree)) {
    tree[rel] = fields.replace(/mtime=(\d+)/, (m, ns: string) => (BigInt(ns) >= since ? 'mtime=written' : m))
  }
  for (const file of ['link', 'lower']) if (tree[file]) tree[file] = tree[file].replace(/sha256=\w+/, 'sha256=random')
  return tree
}
