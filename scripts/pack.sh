#!/usr/bin/env bash
# Packs the npm packages a release publishes, offline, into OUT (default ./pack):
#   cstor-<platform>-<version>.tgz  one per npm/<platform>/ (a target of package.json
#                                   `napi.targets`), with its binary cstor.<platform>.node, which
#                                   its package.json names as `main` (os/cpu/libc say where it runs)
#   cstor-<version>.tgz             what `npm pack` of the repository holds (package.json `files`),
#                                   its package.json given the optionalDependencies entries that
#                                   `napi pre-publish` adds at release time, one per platform
#                                   package — so the loader (index.js) finds the binary there
# Builds the binaries of every target first (scripts/build-native.sh --all; cargo rebuilds only
# what changed). The repository is not changed: everything is packed from staged copies.
# Needs `npm run build` first (for dist/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out="$(realpath -m "${1:-pack}")"
for built in dist/index.js dist/cli/main.js; do
  if [[ ! -f "$built" ]]; then
    echo "pack: $built is missing: run 'npm run build' first" >&2
    exit 1
  fi
done
bash scripts/build-native.sh --all >&2

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out"
version="$(node -p 'require("./package.json").version')"

platforms=()
for dir in npm/*/; do
  platform="$(basename "$dir")"
  cp -r "$dir" "$stage/$platform"
  cp "$(node -p 'require(process.argv[1]).main' "$PWD/$dir/package.json")" "$stage/$platform/"
  platforms+=("$platform")
done

npm pack --offline --silent --pack-destination "$stage" . >/dev/null
tar -xzf "$stage/cstor-$version.tgz" -C "$stage"
node -e '
  const fs = require("fs")
  const [file, version, ...platforms] = process.argv.slice(1)
  const pkg = JSON.parse(fs.readFileSync(file, "utf8"))
  pkg.optionalDependencies = { ...pkg.optionalDependencies }
  for (const platform of platforms) pkg.optionalDependencies[`cstor-${platform}`] = version
  fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n")
' "$stage/package/package.json" "$version" "${platforms[@]}"

npm pack --offline --silent --pack-destination "$out" "${platforms[@]/#/$stage/}" "$stage/package"
