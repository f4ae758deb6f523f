#!/usr/bin/env node
/**
 * Seeds the fuzz corpora (fuzz/corpus/<target>/, git-ignored) from the fixture stores that real
 * podman and skopeo built, so the fuzzer starts from the shapes Go's tar-split and cstor's own
 * splitfdstream writer produce rather than from nothing:
 *
 *   tarsplit       every overlay-layers/<id>.tar-split.gz, as text (form byte 0: the target
 *                  gzips it) and as the gzip file itself (form byte 1)
 *   splitfdstream  the splitfdstream of every layer up to 64 KiB, small bodies inline
 *   erofs          every composefs-data/composefs.blob podman 5.8 wrote (composefs store)
 *
 * Usage: node fuzz/seed-corpus.mjs [FIXTURES] (default .fixtures; needs `npm run build`).
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { gunzipSync } from 'node:zlib'

const repo = path.resolve(import.meta.dirname, '..')
const fixtures = path.resolve(process.argv[2] ?? path.join(repo, '.fixtures'))
const corpus = path.join(repo, 'fuzz', 'corpus')
const { Storage } = await import(path.join(repo, 'dist', 'index.js'))

/** Seeds larger than this slow every fuzz iteration down and add no new shapes. */
const MAX_SEED_BYTES = 64 << 10

function seed(target, bytes) {
  if (bytes.length > MAX_SEED_BYTES) return 0
  const dir = path.join(corpus, target)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, createHash('sha1').update(bytes).digest('hex')), bytes)
  return 1
}

const counts = { tarsplit: 0, splitfdstream: 0, erofs: 0 }
for (const store of ['main', 'extra']) {
  const layersDir = path.join(fixtures, store, 'root', 'overlay-layers')
  for (const name of fs.readdirSync(layersDir).filter((n) => n.endsWith('.tar-split.gz'))) {
    const gz = fs.readFileSync(path.join(layersDir, name))
    counts.tarsplit += seed('tarsplit', Buffer.concat([Buffer.from([0]), gunzipSync(gz)]))
    counts.tarsplit += seed('tarsplit', Buffer.concat([Buffer.from([1]), gz]))
  }
}

const storage = await Storage.open({ root: path.join(fixtures, 'main', 'root'), unshare: false })
for (const layer of await storage.listLayers()) {
  if ((layer.diffSize ?? Infinity) > MAX_SEED_BYTES) continue
  const { stream, content } = await layer.splitFdStream({ inlineThreshold: 256 })
  try {
    counts.splitfdstream += seed('splitfdstream', fs.readFileSync(stream))
  } finally {
    for (const fd of [stream, ...content]) fs.closeSync(fd)
  }
}
storage.close()

const composefsLayers = path.join(fixtures, 'podman5-composefs', 'root', 'overlay')
for (const id of fs.existsSync(composefsLayers) ? fs.readdirSync(composefsLayers) : []) {
  const blob = path.join(composefsLayers, id, 'composefs-data', 'composefs.blob')
  if (fs.existsSync(blob)) counts.erofs += seed('erofs', fs.readFileSync(blob))
}
console.log(`fuzz seeds: ${counts.tarsplit} tarsplit, ${counts.splitfdstream} splitfdstream, ${counts.erofs} erofs (in ${path.relative(repo, corpus)}/)`)
