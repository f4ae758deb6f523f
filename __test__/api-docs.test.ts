/**
 * docs/api.md stays a true reference of the public API: every export of ts/index.ts, and every
 * public member of an exported class, is named there — read from the types by the TypeScript
 * compiler, so a new export or method without documentation fails here.
 */
import fs from 'node:fs'
import path from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { repo } from './helpers'

const doc = fs.readFileSync(path.join(repo, 'docs', 'api.md'), 'utf8')
const index = path.join(repo, 'ts', 'index.ts')
const program = ts.createProgram([index], { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16, strict: true, skipLibCheck: true })
const checker = program.getTypeChecker()
const exports = checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(index)!)!)

/** Whether the doc names `name` inside backticks (`Storage.open(…)`, `storage.verify(…)`, `Toc`). */
const named = (text: string, name: string) => new RegExp('`[^`\\n]*\\b' + name + '\\b[^`\\n]*`').test(text)

/** The public members of an exported class, static and instance, as its users see them. */
function publicMembers(symbol: ts.Symbol): string[] {
  const declaration = checker.getAliasedSymbol(symbol).declarations?.find(ts.isClassDeclaration)
  if (!declaration) return []
  const hidden = (member: ts.ClassElement) =>
    !member.name ||
    ts.isPrivateIdentifier(member.name) ||
    ts.isConstructorDeclaration(member) ||
    (ts.getCombinedModifierFlags(member) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) !== 0
  return declaration.members.filter((m) => !hidden(m)).map((m) => m.name!.getText())
}

/** The section of the doc about `name`: from its `## name` heading to the next `## `. */
function section(name: string): string {
  const start = doc.indexOf(`\n## ${name}\n`)
  if (start < 0) return doc
  const end = doc.indexOf('\n## ', start + 1)
  return doc.slice(start, end < 0 ? undefined : end)
}

describe('docs/api.md', () => {
  it('finds the exports to check', () => {
    expect(exports.map((e) => e.name)).toEqual(expect.arrayContaining(['Storage', 'Image', 'Layer', 'VerifyReport', 'CstorError', 'tarDiff']))
  })

  it.each(exports.map((e) => [e.name, e] as const))('names %s and its public members', (name, symbol) => {
    expect(named(doc, name), `${name} is not in docs/api.md`).toBe(true)
    const text = section(name)
    const undocumented = publicMembers(symbol).filter((member) => !named(text, member))
    expect(undocumented, `members of ${name} not in docs/api.md`).toEqual([])
  })
})
