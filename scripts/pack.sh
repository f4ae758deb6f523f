#!/usr/bin/env bash
# Packs the two npm packages a release publishes, offline, into OUT (default ./pack):
#   cstor-linux-x64-gnu-<version>.tgz  npm/linux-x64-gnu/ with the built binary, which its
#                                      package.json names as `main` (os/cpu/libc say where it runs)
#   cstor-<version>.tgz                what `npm pack` of the repository holds (package.json
#                                      `files`), its package.json given the optionalDependencies
#                                      entry that `napi pre-publish` adds at release time — so the
#                                      loader (index.js) finds the binary in the platform package
# The repository is not changed: both are packed from staged copies. Needs `npm run build` first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out="$(realpath -m "${1:-pack}")"
platform=linux-x64-gnu
binary="cstor.$platform.node"
for built in "$binary" dist/index.js dist/cli/main.js; do
  if [[ ! -f "$built" ]]; then
    echo "pack: $built is missing: run 'npm run build' first" >&2
    exit 1
  fi
done

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out"

cp -r "npm/$platform" "$stage/platform"
cp "$binary" "$stage/platform/"

npm pack --offline --silent --pack-destination "$stage" . >/dev/null
tar -xzf "$stage"/cstor-*.tgz -C "$stage"
node -e '
  const fs = require("fs")
  const [file, name, version] = process.argv.slice(1)
  const pkg = JSON.parse(fs.readFileSync(file, "utf8"))
  pkg.optionalDependencies = { ...pkg.optionalDependencies, [name]: version }
  fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n")
' "$stage/package/package.json" "cstor-$platform" "$(node -p 'require("./package.json").version')"

npm pack --offline --silent --pack-destination "$out" "$stage/platform" "$stage/package"
