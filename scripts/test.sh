#!/usr/bin/env bash
# Everything `npm test` checks, in order of cost: format, lints, types, Rust tests, then the
# vitest suite against fixture stores built by real podman/skopeo. Any missing tool fails the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/bootstrap.sh

step() { printf '\n== %s\n' "$*" >&2; }

step "generated binding is up to date"
if ! git diff --quiet -- index.js index.d.ts 2>/dev/null; then
  echo "index.js / index.d.ts changed when rebuilt: commit the regenerated files" >&2
  git --no-pager diff --stat -- index.js index.d.ts >&2
  exit 1
fi

step "cargo fmt"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
step "tsc --noEmit"
npx tsc -p tsconfig.check.json
step "oxlint"
npm run -s lint
step "import circles (scripts/check-imports.mjs)"
node scripts/check-imports.mjs

step "fixture stores"
bash __test__/fixtures/build-stores.sh

# Built here, not in a test's hook: a first build takes minutes (cfsctl ~10 on 2 cores), cached after.
step "reference tools: dive, cfsctl"
bash __test__/fixtures/build-dive.sh >/dev/null
bash __test__/fixtures/build-cfsctl.sh >/dev/null

step "release binaries of every napi target"
bash scripts/build-native.sh --all

step "cargo test"
cargo test --workspace --quiet

step "fuzz smoke"
bash scripts/fuzz-smoke.sh

step "vitest"
npx vitest run
