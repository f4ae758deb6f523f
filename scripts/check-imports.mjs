#!/usr/bin/env node
// Reads the `use crate::…` paths of the Rust crates and the relative imports of ts/, and fails
// when a module imports one that imports it back (directly or around a longer circle), or when
// the core's folders — the stages of the data flow — depend on each other both ways.
//
//   node scripts/check-imports.mjs          prints the folder arrows; exit 1 on any circle
//   node scripts/check-imports.mjs --json   the same as JSON, for __test__/layout.test.ts
import fs from 'node:fs'
import path from 'node:path'

const repo = path.resolve(import.meta.dirname, '..')

/** Every file under `dir` whose name ends with `ext`, relative to `dir`. */
function files(dir, ext) {
  return fs.readdirSync(dir, { recursive: true }).filter((f) => f.endsWith(ext)).sort()
}

/**
 * Source without comments, and without string and char literals unless `keepStrings` (TS import
 * specifiers are strings): a scanner, since a `//` inside a string or a quote inside a comment
 * would mislead any regular expression.
 */
function code(text, keepStrings = false) {
  let out = ''
  let i = 0
  while (i < text.length) {
    const rest = text.slice(i, i + 2)
    if (rest === '//') {
      while (i < text.length && text[i] !== '\n') i++
    } else if (rest === '/*') {
      const end = text.indexOf('*/', i + 2)
      i = end < 0 ? text.length : end + 2
    } else {
      const raw = keepStrings ? null : /^r(#*)"/.exec(text.slice(i, i + 10))
      const quote = text[i]
      const char = keepStrings ? null : /^'(?:\\u\{[0-9a-fA-F]+\}|\\.|[^\\'\n])'/.exec(text.slice(i, i + 12))
      if (raw) {
        const end = text.indexOf('"' + raw[1], i + raw[0].length)
        i = end < 0 ? text.length : end + 1 + raw[1].length
      } else if (char) {
        i += char[0].length
      } else if (quote === '"' || (keepStrings && (quote === "'" || quote === '`'))) {
        let j = i + 1
        while (j < text.length && text[j] !== quote) j += text[j] === '\\' ? 2 : 1
        if (keepStrings) out += text.slice(i, j + 1)
        i = j + 1
      } else {
        out += text[i++]
      }
    }
  }
  return out
}

/** The module path (`store::layers`) of a Rust source file (`store/layers.rs`). */
function rustModule(file) {
  const parts = file.replace(/\.rs$/, '').split(path.sep)
  if (parts.at(-1) === 'mod' || parts.at(-1) === 'lib') parts.pop()
  return parts.join('::')
}

/** Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`. */
function expandUse(tree) {
  const brace = tree.indexOf('{')
  if (brace < 0) return [tree.trim()]
  const prefix = tree.slice(0, brace).trim()
  const inner = tree.slice(brace + 1, tree.lastIndexOf('}'))
  const items = []
  let depth = 0
  let start = 0
  for (let i = 0; i <= inner.length; i++) {
    const c = inner[i]
    if (c === '{') depth++
    else if (c === '}') depth--
    else if ((c === ',' && depth === 0) || i === inner.length) {
      const item = inner.slice(start, i).trim()
      if (item) items.push(...expandUse(item).map((p) => (p === 'self' ? prefix.replace(/::$/, '') : prefix + p)))
      start = i + 1
    }
  }
  return items
}

/** Module → modules it names, for one crate's `src/`. */
function rustGraph(src) {
  const modules = new Map(files(src, '.rs').map((f) => [rustModule(f), f]))
  const graph = new Map()
  for (const [module, file] of modules) {
    const text = code(fs.readFileSync(path.join(src, file), 'utf8'))
    const named = []
    for (const m of text.matchAll(/\buse\s+crate::([^;]+);/g)) named.push(...expandUse(m[1].replace(/\s+/g, ' ')))
    for (const m of text.matchAll(/(?<!use\s+)\bcrate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)/g)) named.push(m[1])
    const targets = new Set()
    for (const name of named) {
      // The deepest module the path names: `store::layers::Layer` → `store::layers`.
      const parts = name.split('::').map((p) => p.replace(/\s.*$/, ''))
      while (parts.length && !modules.has(parts.join('::'))) parts.pop()
      const target = parts.join('::')
      if (target !== module && modules.has(target)) targets.add(target)
    }
    graph.set(module, targets)
  }
  return graph
}

/** Module → modules it imports, for the TypeScript under `dir`. */
function tsGraph(dir) {
  const graph = new Map()
  for (const file of files(dir, '.ts')) {
    const text = code(fs.readFileSync(path.join(dir, file), 'utf8'), true)
    const targets = new Set()
    for (const m of text.matchAll(/\b(?:import|export)\b[^;'"]*?\bfrom\s+'(\.[^']+)'/g)) {
      targets.add(path.join(path.dirname(file), m[1]).replace(/\.js$/, '.ts'))
    }
    graph.set(file, targets)
  }
  return graph
}

/** The circles of a graph: strongly connected components of more than one node (Tarjan). */
function circles(graph) {
  let index = 0
  const stack = []
  const info = new Map()
  const found = []
  const visit = (node) => {
    info.set(node, { index, low: index, onStack: true })
    index++
    stack.push(node)
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue
      if (!info.has(next)) {
        visit(next)
        info.get(node).low = Math.min(info.get(node).low, info.get(next).low)
      } else if (info.get(next).onStack) {
        info.get(node).low = Math.min(info.get(node).low, info.get(next).index)
      }
    }
    if (info.get(node).low === info.get(node).index) {
      const component = []
      let member
      do {
        member = stack.pop()
        info.get(member).onStack = false
        component.push(member)
      } while (member !== node)
      if (component.length > 1) found.push(component.sort())
    }
  }
  for (const node of graph.keys()) if (!info.has(node)) visit(node)
  return found
}

/** The graph between top-level folders (and top-level files) of the core. */
function folders(graph) {
  const top = (module) => module.split('::')[0]
  const arrows = new Map()
  for (const [module, targets] of graph) {
    if (!module) continue
    for (const target of targets) {
      if (!target || top(target) === top(module)) continue
      if (!arrows.has(top(module))) arrows.set(top(module), new Set())
      arrows.get(top(module)).add(top(target))
    }
  }
  return arrows
}

const core = rustGraph(path.join(repo, 'crates/cstor-core/src'))
const binding = rustGraph(path.join(repo, 'crates/cstor-napi/src'))
const ts = tsGraph(path.join(repo, 'ts'))
const stages = folders(core)
const report = {
  circles: {
    'cstor-core': circles(core),
    'cstor-napi': circles(binding),
    ts: circles(ts),
    'cstor-core folders': circles(stages),
  },
  arrows: Object.fromEntries([...stages].sort().map(([from, to]) => [from, [...to].sort()])),
}

if (process.argv.includes('--json')) {
  console.log(JSON.stringify(report, null, 2))
} else {
  for (const [from, to] of Object.entries(report.arrows)) console.log(`${from} → ${to.join(', ')}`)
}
const bad = Object.entries(report.circles).filter(([, list]) => list.length > 0)
for (const [where, list] of bad) for (const circle of list) console.error(`import circle in ${where}: ${circle.join(' ↔ ')}`)
process.exit(bad.length > 0 ? 1 : 0)
