#!/usr/bin/env bash
# Builds the release binary cstor.<platform>.node for this machine's target, or with --all for
# every target in package.json `napi.targets`, linked against glibc $GLIBC_FLOOR's symbol
# versions (scripts/toolchain.sh says how). The binary this machine tests is the one it ships.
#
# This machine's target builds with `napi build` in ./target, which also writes the generated
# loader index.js and typings index.d.ts. The other targets need neither, so they build with
# `cargo zigbuild` alone (through `napi build` they would recompile on the second build after a
# cold one too: napi forces a build with a NAPI_FORCE_BUILD_<crate> timestamp while its
# type-definition cache is empty, and the variable's absence the next time makes cargo rebuild the
# crate). Their binaries are cached in ${XDG_CACHE_HOME:-$HOME/.cache}/cstor/cross-bin/ under a
# stamp of every input (the crates' files, Cargo.toml, Cargo.lock, these scripts, rustc's
# version), so a fresh clone (CI) of unchanged sources builds no second target; cargo's own
# target dir beside it keeps the dependencies when the sources did change.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The oldest glibc the binaries load on: RHEL 8's (Debian 11 and Ubuntu 20.04 have 2.31).
GLIBC_FLOOR=2.28

toolchain_bin="$(bash scripts/toolchain.sh)"
export PATH="$toolchain_bin:$PATH"

host="$(rustc -vV | sed -n 's/^host: //p')"
npx napi build --platform --release --cross-compile --target "$host.$GLIBC_FLOOR" \
  --manifest-path crates/cstor-napi/Cargo.toml --package-json-path package.json \
  --output-dir . --js index.js --dts index.d.ts
[[ "${1:-}" == --all ]] || exit 0

cache="${XDG_CACHE_HOME:-$HOME/.cache}/cstor"
inputs="$( (
  find crates Cargo.toml Cargo.lock scripts/build-native.sh scripts/toolchain.sh -type f -print0 |
    sort -z | xargs -0 sha256sum
  rustc -vV
  echo "$GLIBC_FLOOR $toolchain_bin"
) | sha256sum | cut -c1-16)"
mkdir -p "$cache/cross-bin"
for target in $(node -p 'require("./package.json").napi.targets.join(" ")'); do
  [[ "$target" != "$host" ]] || continue
  platform="$(node -p 'require("@napi-rs/cli").parseTriple(process.argv[1]).platformArchABI' "$target")"
  cached="$cache/cross-bin/cstor.$platform.$inputs.node"
  if [[ ! -f "$cached" ]]; then
    cargo zigbuild --release --lib --manifest-path crates/cstor-napi/Cargo.toml \
      --target "$target.$GLIBC_FLOOR" --target-dir "$cache/cross-target"
    rm -f "$cache/cross-bin/cstor.$platform."*.node
    cp "$cache/cross-target/$target/release/libcstor_napi.so" "$cached.tmp"
    mv "$cached.tmp" "$cached"
  fi
  cp "$cached" "cstor.$platform.node.tmp"
  mv "cstor.$platform.node.tmp" "cstor.$platform.node"
done
