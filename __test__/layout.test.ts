/**
 * The layout issue's promise: no module imports one that imports it back (Rust core, binding,
 * ts/), the core's folders depend on each other one way only, and docs/architecture.md shows
 * exactly the arrows the imports have.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { repo } from './helpers'

interface ImportReport {
  circles: Record<string, string[][]>
  arrows: Record<string, string[]>
}

const report: ImportReport = JSON.parse(
  execFileSync('node', [path.join(repo, 'scripts/check-imports.mjs'), '--json'], { encoding: 'utf8' }),
)

describe('layout', () => {
  it('has no import circles anywhere', () => {
    expect(report.circles).toEqual({ 'cstor-core': [], 'cstor-napi': [], ts: [], 'cstor-core folders': [] })
  })

  it('docs/architecture.md shows the arrows the imports have', () => {
    const doc = fs.readFileSync(path.join(repo, 'docs/architecture.md'), 'utf8')
    const block = /<!-- arrows: begin[^>]*-->\s*```\n([\s\S]*?)```\s*<!-- arrows: end -->/.exec(doc)
    expect(block, 'the arrows block of docs/architecture.md').not.toBeNull()
    const documented = Object.fromEntries(
      block![1].trim().split('\n').map((line) => {
        const [from, to] = line.split(' → ')
        return [from, to.split(', ')]
      }),
    )
    expect(documented).toEqual(report.arrows)
  })

  it('every folder of the core is in the tree the doc draws', () => {
    const doc = fs.readFileSync(path.join(repo, 'docs/architecture.md'), 'utf8')
    const src = path.join(repo, 'crates/cstor-core/src')
    for (const entry of fs.readdirSync(src, { withFileTypes: true })) {
      if (entry.name === 'lib.rs') continue
      const shown = entry.isDirectory() ? `${entry.name}/` : entry.name
      expect(doc, shown).toContain(shown)
      if (entry.isDirectory()) {
        for (const file of fs.readdirSync(path.join(src, entry.name))) {
          if (file !== 'mod.rs') expect(doc, `${entry.name}/${file}`).toContain(file.endsWith('.rs') ? file : `${file}/`)
        }
      }
    }
  })

  it('finds a circle when there is one', () => {
    // The checker itself, on a copy of the tree with one import added back.
    const copy = fs.mkdtempSync(path.join(repo, 'target', 'layout-'))
    try {
      fs.cpSync(path.join(repo, 'crates'), path.join(copy, 'crates'), { recursive: true, filter: (f) => !f.includes('/target') })
      fs.cpSync(path.join(repo, 'ts'), path.join(copy, 'ts'), { recursive: true })
      fs.mkdirSync(path.join(copy, 'scripts'))
      fs.copyFileSync(path.join(repo, 'scripts/check-imports.mjs'), path.join(copy, 'scripts/check-imports.mjs'))
      const layers = path.join(copy, 'crates/cstor-core/src/store/layers.rs')
      fs.appendFileSync(layers, '\n#[allow(unused_imports)]\nuse crate::content::export::{ExportOptions as _};\n')
      const run = () => execFileSync('node', [path.join(copy, 'scripts/check-imports.mjs')], { encoding: 'utf8', stdio: 'pipe' })
      expect(run).toThrow(/import circle in cstor-core folders: content ↔ store/)
    } finally {
      fs.rmSync(copy, { recursive: true, force: true })
    }
  })
})
