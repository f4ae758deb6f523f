#!/usr/bin/env bash
# A short run of every fuzz target (docs/fuzzing.md), part of `npm test`: FUZZ_SECONDS (default
# 30) per target from a corpus seeded by the fixture stores, so a change that makes the tar-split
# decoder or the splitfdstream reader panic, hang (10 s per input) or allocate without bound
# (2 GiB) fails the tests. Needs nightly Rust and cargo-fuzz (scripts/bootstrap.sh installs
# them); without them it fails under CI=true and is skipped, loudly, elsewhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -f "$HOME/.cargo/env" ]] && source "$HOME/.cargo/env"

seconds="${FUZZ_SECONDS:-30}"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  if [[ "${CI:-}" == true ]]; then
    echo "fuzz-smoke: nightly Rust or cargo-fuzz is missing (run scripts/bootstrap.sh)" >&2
    exit 1
  fi
  echo "fuzz-smoke: SKIPPED: nightly Rust or cargo-fuzz is missing (run scripts/bootstrap.sh)" >&2
  exit 0
fi

node fuzz/seed-corpus.mjs
cd fuzz
for target in tarsplit splitfdstream erofs; do
  log="target/smoke-$target.log"
  mkdir -p target
  # Debug assertions make integer overflow a crash; inputs are capped at 4 KiB for speed (the
  # fixture seeds are longer; their first 4 KiB still hold every kind of line).
  if ! cargo +nightly fuzz run --debug-assertions "$target" -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz-smoke: $target failed; the input is in fuzz/artifacts/$target/ (see docs/fuzzing.md)" >&2
    exit 1
  fi
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  echo "fuzz-smoke: $target: $runs inputs in ${seconds} s, no crash"
done
