#!/usr/bin/env node
// Files-in-place benchmark (whole processes, side by side in one run, median of N runs each):
// - cat: `cstor image cat IMAGE etc/os-release var/lib/dpkg/status` on the ~1.5 GB benchmark image
//   vs `podman image mount` + cat + `podman image unmount` vs `podman save | tar -xO` (the
//   layer tar taken out of the archive and read by a second tar; os-release is a symlink, so the
//   tar side reads its target, usr/lib/os-release, as a tool would have to);
// - diff: `cstor image diff BUILD IMAGE` vs `podman image diff BUILD IMAGE`, BUILD a `podman build`
//   on top of the image (COPY of a few files: the image has no shell for RUN);
// - analyze: `cstor image analyze IMAGE` vs `podman save -o` + `dive --ci --source docker-archive`
//   (dive built by __test__/fixtures/build-dive.sh);
// - in process: the same two files read through the API, the first time (the index built) and
//   again (the index reused), without Node's start-up;
// - index: peak RSS of `cstor image find` (the whole index built) on a 150k-entry image podman
//   imports from a generated tree of empty files.
//
//   node benches/files.mjs [--runs 3]
// Needs root (podman image mount) and `npm run build` first. Writes bench-results/files.md.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { benchStore, cli, inProcess, measure, out, q, repo, shell } from './lib.mjs'

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } })
const runs = Number(values.runs)
const { root, runroot, image, env, podman } = benchStore('/usr/bin,/usr/lib/x86_64-linux-gnu,/usr/lib/os-release,/etc/os-release,/var/lib/dpkg/status')
const pod = `podman --root ${q(root)} --runroot ${q(runroot)}`
const cstor = `node ${q(cli)} --root ${q(root)} --runroot ${q(runroot)}`
const dive = execFileSync('bash', [path.join(repo, '__test__', 'fixtures', 'build-dive.sh')], { encoding: 'utf8' }).trim()
const work = path.join(out, 'files')
fs.mkdirSync(work, { recursive: true })

// A build on top of the image.
const build = 'localhost/bench-build:1'
if (!podman('images', '--format', '{{.Repository}}:{{.Tag}}').split('\n').includes(build)) {
  const context = path.join(work, 'context')
  fs.mkdirSync(path.join(context, 'files'), { recursive: true })
  for (let i = 0; i < 100; i++) fs.writeFileSync(path.join(context, 'files', `f${i}`), `file ${i}\n`.repeat(100))
  fs.writeFileSync(path.join(context, 'Containerfile'), `FROM ${image}\nCOPY files /usr/lib/added\nCOPY files/f1 /usr/bin/ls\n`)
  podman('build', '--quiet', '--isolation', 'chroot', '-t', build, context)
}

// A 150k-entry image: 1500 directories of 99 empty files.
const many = 'localhost/bench-entries:150k'
if (!podman('images', '--format', '{{.Repository}}:{{.Tag}}').split('\n').includes(many)) {
  const tree = path.join(work, 'entries')
  for (let d = 0; d < 1500; d++) {
    const dir = path.join(tree, `d${d}`)
    fs.mkdirSync(dir, { recursive: true })
    for (let f = 0; f < 99; f++) fs.writeFileSync(path.join(dir, `file-${f}`), '')
  }
  execFileSync('sh', ['-c', `tar -C ${q(tree)} -c . | ${pod} import --quiet - ${many}`], { env, stdio: ['ignore', 'ignore', 'inherit'] })
  fs.rmSync(tree, { recursive: true, force: true })
}

const archive = path.join(work, 'save.tar')
const sections = [
  [
    'cat etc/os-release var/lib/dpkg/status',
    'podman save | tar -xO',
    [
      ['cstor image cat', () => shell(`${cstor} image cat ${image} etc/os-release var/lib/dpkg/status > /dev/null`, env)],
      ['podman image mount + cat + unmount', () => shell(`m=$(${pod} image mount ${image}) && cat "$m/etc/os-release" "$m/var/lib/dpkg/status" > /dev/null; s=$?; ${pod} image unmount ${image} > /dev/null; exit $s`, env)],
      ['podman save | tar -xO', () => shell(`${pod} save ${image} | tar -xO --wildcards '*.tar' | tar -xO usr/lib/os-release var/lib/dpkg/status > /dev/null`, env)],
    ],
  ],
  [
    'diff of a build and its base',
    'podman image diff',
    [
      ['cstor image diff', () => shell(`${cstor} image diff ${build} ${image} > /dev/null`, env)],
      ['podman image diff', () => shell(`${pod} image diff ${build} ${image} > /dev/null`, env)],
    ],
  ],
  [
    'analyze (dive --ci figures)',
    'podman save + dive --ci',
    [
      ['cstor image analyze', () => shell(`${cstor} image analyze ${image} > /dev/null`, env)],
      ['podman save + dive --ci', () => shell(`rm -f ${q(archive)} && ${pod} save -q -o ${q(archive)} ${image} && ${q(dive)} --ci --source docker-archive ${q(archive)} > /dev/null; rm -f ${q(archive)}`, env)],
    ],
  ],
  [
    `index of a 150k-entry image (${many})`,
    'cstor image find',
    [
      ['cstor image find', () => shell(`${cstor} image find ${many} --name nothing-matches > /dev/null`, env)],
      // The same process without an index: what the index adds is the difference.
      ['cstor image list (no index)', () => shell(`${cstor} image list > /dev/null`, env)],
    ],
  ],
]

// In process: the first read builds the index (once per process), later ones reuse it.
const { Storage } = await import(path.join(repo, 'dist', 'index.js'))
const storage = await Storage.open({ root, runroot })
const readBoth = async () => {
  const fs = (await storage.image(image)).fs
  await fs.readFile('etc/os-release')
  await fs.readFile('var/lib/dpkg/status')
}
sections.push([
  'cat, in process (API)',
  'image.fs.readFile ×2, first (index built)',
  [
    ['image.fs.readFile ×2, first (index built)', async () => ({ ...(await inProcess(readBoth)), cpu: 0 })],
    ['image.fs.readFile ×2, again (index reused)', async () => ({ ...(await inProcess(readBoth)), cpu: 0 })],
  ],
])

const lines = [`Image ${image} (${podman('image', 'inspect', '--format', '{{.Size}}', image).trim()} bytes), ${runs} runs each (median), whole processes, ${new Date().toISOString()}`, '']
lines.push('| task | case | seconds | CPU seconds | vs reference | peak RSS MB |', '| --- | --- | ---: | ---: | ---: | ---: |')
for (const [task, reference, cases] of sections) {
  const results = await measure(cases, task.includes('in process') ? 1 : runs)
  const base = results.find((r) => r.name === reference).seconds
  for (const r of results) lines.push(`| ${task} | ${r.name} | ${r.seconds.toFixed(3)} | ${r.cpu.toFixed(2)} | ${(base / r.seconds).toFixed(1)}× | ${r.rss.toFixed(0)} |`)
}
storage.close()
lines.push('', 'In process, CPU seconds are not measured (0.00); peak RSS is the bench process\'s.')
const table = lines.join('\n')
fs.writeFileSync(path.join(out, 'files.md'), table + '\n')
console.log(table)
