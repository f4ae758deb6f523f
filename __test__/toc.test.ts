/**
 * Tables of contents: a layer's TOC equals what Python's tarfile parses from the exported tar,
 * entry by entry; an image's TOC equals the tree `podman image mount` shows. On the stores podman
 * 4.3 and podman 5.8 wrote.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CorruptError, InvalidArgumentError, Storage, type Layer, type TocEntry } from '../ts/index'
import { cliOn, copyStore, podmanFixtures } from './helpers'

let dir: string
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-toc-'))
})
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`
/**
 * The exported tar of `layer` as Python's tarfile parses it, in the TOC's shape (an independent
 * reader: node-tar refuses some entries podman writes).
 */
const PARSE = `
import base64, hashlib, json, sys, tarfile
types = {tarfile.REGTYPE: 'reg', tarfile.AREGTYPE: 'reg', tarfile.DIRTYPE: 'dir', tarfile.SYMTYPE: 'symlink',
         tarfile.LNKTYPE: 'hardlink', tarfile.CHRTYPE: 'char', tarfile.BLKTYPE: 'block', tarfile.FIFOTYPE: 'fifo'}
clean = lambda n: '/'.join(p for p in n.split('/') if p not in ('', '.'))
out = []
with tarfile.open(sys.argv[1]) as t:
    for m in t:
        if not clean(m.name):
            continue
        e = {'name': clean(m.name), 'type': types[m.type], 'mode': m.mode & 0o7777, 'uid': m.uid, 'gid': m.gid, 'mtime': int(m.mtime)}
        if m.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
            e['digest'] = 'sha256:' + hashlib.sha256(t.extractfile(m).read()).hexdigest()
            if m.size: e['size'] = m.size
        if m.type == tarfile.SYMTYPE: e['linkName'] = m.linkname
        if m.type == tarfile.LNKTYPE: e['linkName'] = clean(m.linkname)
        if m.uname: e['userName'] = m.uname
        if m.gname: e['groupName'] = m.gname
        if m.type in (tarfile.CHRTYPE, tarfile.BLKTYPE): e.update(devMajor=m.devmajor, devMinor=m.devminor)
        x = {k[len('SCHILY.xattr.'):]: base64.b64encode(v.encode('utf-8', 'surrogateescape')).decode() for k, v in m.pax_headers.items() if k.startswith('SCHILY.xattr.')}
        if x: e['xattrs'] = x
        out.append(e)
print(json.dumps(out))
`

async function parsedByPython(layer: Layer): Promise<Partial<TocEntry>[]> {
  const file = path.join(dir, `${layer.id}.tar`)
  await layer.exportToFile(file)
  const parsed = JSON.parse(execFileSync('python3', ['-c', PARSE, file], { maxBuffer: 1 << 28 }).toString()) as (Partial<TocEntry> & { mtime: number })[]
  return parsed.map(({ mtime, ...e }) => ({ ...e, modtime: new Date(mtime * 1000).toISOString().replace('.000Z', 'Z') }))
}

describe.each(podmanFixtures)('on the store $name wrote', ({ store, mergedCopy }) => {
  let storage: Storage
  let here: string
  beforeAll(async () => {
    storage = await Storage.open(store)
    here = fs.mkdtempSync(path.join(dir, 'store-'))
  })

  describe('layer TOC', () => {
    it('every fixture layer: equals Python tarfile parsing the exported tar', async () => {
      for (const layer of await storage.listLayers()) {
        const toc = await layer.toc({ digests: true })
        expect(toc.version).toBe(1)
        // A hardlink's size and digest are its target's in the TOC; tarfile gives them none.
        const ours = toc.entries.map(({ size, digest, ...e }) => (e.type === 'hardlink' ? e : { ...e, ...(size && { size }), ...(digest && { digest }) }))
        const theirs = await parsedByPython(layer)
        expect(ours.map((e) => JSON.stringify(e, Object.keys(e).sort())), layer.id).toEqual(theirs.map((e) => JSON.stringify(e, Object.keys(e).sort())))
      }
    })

    it('carries PAX xattrs, whiteout markers and, without digests, never reads diff/', async () => {
      const formats = await (await storage.image('quay.io/cstor/formats:1')).layers()
      const entries = (await Promise.all(formats.map((l) => l.toc()))).flatMap((t) => t.entries)
      expect(entries.find((e) => e.name === 'pax/hardlink.txt')?.xattrs).toEqual({ 'user.cstor.test': Buffer.from('xattr-value').toString('base64') })
      expect(entries.some((e) => e.name.endsWith('.wh.empty'))).toBe(true)
      expect(entries.every((e) => e.digest === undefined)).toBe(true)
    })

    it('a header naming a path outside the layer is ECORRUPT', async () => {
      const copied = copyStore(store)
      try {
        const copy = await Storage.open(copied)
        const [top] = await (await copy.image('localhost/app:1')).layers()
        const split = path.join(copied.root, 'overlay-layers', `${top.id}.tar-split.gz`)
        const lines = execFileSync('gzip', ['-dc', split]).toString().trimEnd().split('\n')
        // Rename the first directory header's entry: `app/` → `../../`.
        const edited = lines.map((line) => {
          const e = JSON.parse(line)
          if (e.type !== 2) return line
          const payload = Buffer.from(e.payload, 'base64')
          const at = payload.indexOf('app/')
          if (at !== 0) return line
          payload.write('../x', 0, 'latin1')
          // The header checksum must stay right for the tar to parse; recompute it.
          payload.fill(' ', 148, 156)
          let sum = 0
          for (let i = 0; i < 512; i++) sum += payload[i]
          payload.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
          return JSON.stringify({ ...e, payload: payload.toString('base64') })
        })
        expect(edited).not.toEqual(lines)
        fs.writeFileSync(split, execFileSync('gzip', ['-c'], { input: edited.join('\n') + '\n' }))
        await expect(top.toc()).rejects.toBeInstanceOf(CorruptError)
        await expect(top.toc()).rejects.toThrow(/leaves the layer/)
      } finally {
        copied.cleanup()
      }
    })
  })

  describe('image TOC', () => {
    // Not localhost/chunked:1: podman's partial pulls leave directory and symlink mtimes and fifos
    // unrestored (verify's layer-metadata-unrestored), so its mount differs from its headers.
    for (const ref of ['localhost/app:1', 'localhost/sibling:latest', 'quay.io/cstor/formats:1', 'localhost/chain:55']) {
      it(`${ref}: equals the tree podman image mount shows`, async () => {
        const toc = await (await storage.image(ref)).toc({ digests: true })
        const merged = path.join(here, ref.replace(/[/:]/g, '_'))
        mergedCopy(ref, merged)
        const seen: string[] = []
        for (const entry of toc.entries) {
          const file = path.join(merged, entry.name)
          const st = fs.lstatSync(file)
          seen.push(entry.name)
          expect(st.mode & 0o7777, entry.name).toBe(entry.mode)
          expect([st.uid, st.gid], entry.name).toEqual([entry.uid, entry.gid])
          expect(Math.floor(st.mtimeMs / 1000), entry.name).toBe(Date.parse(entry.modtime) / 1000)
          if (entry.type === 'reg' || entry.type === 'hardlink') {
            expect(st.isFile(), entry.name).toBe(true)
            expect(entry.digest, entry.name).toBe(sha256(fs.readFileSync(file)))
            expect(st.size, entry.name).toBe(entry.size ?? 0)
          }
          if (entry.type === 'hardlink') expect(fs.lstatSync(path.join(merged, entry.linkName!)).ino).toBe(st.ino)
          if (entry.type === 'dir') expect(st.isDirectory(), entry.name).toBe(true)
          if (entry.type === 'symlink') expect(fs.readlinkSync(file), entry.name).toBe(entry.linkName)
          if (entry.type === 'fifo') expect(st.isFIFO(), entry.name).toBe(true)
        }
        const all = execFileSync('find', [merged, '-mindepth', '1', '-printf', '%P\n']).toString().trim().split('\n')
        expect(seen.sort()).toEqual(all.sort())
      })
    }

    it("whiteouts: 'list' adds the deleted paths and marks opaque directories", async () => {
      const image = await storage.image('localhost/app:1')
      const { entries } = await image.toc({ whiteouts: 'list' })
      const deleted = entries.filter((e) => e.type === 'whiteout').map((e) => e.name)
      expect(deleted.sort()).toEqual(['etc/motd', 'usr/share/doc', 'var/lib/data/file2'])
      expect(entries.filter((e) => e.opaque).map((e) => e.name)).toEqual(['app/conf'])
      await expect(image.toc({ whiteouts: 'nope' as 'list' })).rejects.toBeInstanceOf(InvalidArgumentError)
    })

    it('CLI: image toc and layer toc print the TOC as JSON, --pretty indented', async () => {
      const compact = cliOn(store, ['image', 'toc', 'localhost/app:1', '--digests'])
      expect(compact.status, compact.stderr).toBe(0)
      expect(compact.stdout.trim().split('\n')).toHaveLength(1)
      const toc = JSON.parse(compact.stdout)
      expect(toc).toEqual(await (await storage.image('localhost/app:1')).toc({ digests: true }))
      const pretty = cliOn(store, ['image', 'toc', 'localhost/app:1', '--pretty'])
      expect(pretty.stdout).toContain('\n  "entries": [\n')
      const layer = (await (await storage.image('localhost/app:1')).layers())[0]
      const layerToc = cliOn(store, ['layer', 'toc', layer.id.slice(0, 12)])
      expect(JSON.parse(layerToc.stdout)).toEqual(await layer.toc())
      expect(cliOn(store, ['image', 'toc']).status).toBe(2)
    })
  })
})
