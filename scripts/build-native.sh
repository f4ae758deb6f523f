#!/usr/bin/env bash
# Builds the release binary cstor.<platform>.node for this machine's target, or with --all for
# every target in package.json `napi.targets`, linked against glibc $GLIBC_FLOOR's symbol
# versions (scripts/toolchain.sh says how). The binary this machine tests is the one it ships.
#
# This machine's target builds with `napi build` in ./target, which also writes the generated
# loader index.js and typings index.d.ts. The other targets need neither, so they build with
# `cargo zigbuild` alone, in ${XDG_CACHE_HOME:-$HOME/.cache}/cstor/cross-target: a fresh clone (CI)
# does not recompile a second target whose sources did not change. (Through `napi build` they
# would recompile on the second build after a cold one too: napi forces a build with a
# NAPI_FORCE_BUILD_<crate> timestamp while its type-definition cache is empty, and the variable's
# absence the next time makes cargo rebuild the crate.)
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

cross="${XDG_CACHE_HOME:-$HOME/.cache}/cstor/cross-target"
for target in $(node -p 'require("./package.json").napi.targets.join(" ")'); do
  [[ "$target" != "$host" ]] || continue
  cargo zigbuild --release --lib --manifest-path crates/cstor-napi/Cargo.toml \
    --target "$target.$GLIBC_FLOOR" --target-dir "$cross"
  platform="$(node -p 'require("@napi-rs/cli").parseTriple(process.argv[1]).platformArchABI' "$target")"
  cp "$cross/$target/release/libcstor_napi.so" "cstor.$platform.node.tmp"
  mv "cstor.$platform.node.tmp" "cstor.$platform.node"
done
