#!/usr/bin/env bash
# The first run: what cstor is for, on stores podman builds here. Lists the sample store, exports
# a large layer bit for bit (its sha256 is the layer's diff digest) side by side with `tar-split
# asm`, extracts an image, copies it to an OCI layout and verifies that layout and the store.
#
# Setup, once: bootstrap, the fixture stores, and a demo store in .demo/ holding one large layer
# (podman import of this machine's /usr/lib/<arch> and /usr/share/doc). After that the demo runs in
# well under a minute.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
bash __test__/fixtures/build-stores.sh

main=.fixtures/main
demo="$PWD/.demo"
if [[ ! -f "$demo/imported" ]]; then
  echo "demo: importing a large layer into $demo with podman (once)" >&2
  rm -rf "$demo"
  { tar -C /usr -c "lib/$(uname -m)-linux-gnu" share/doc 2>/dev/null || true; } |
    podman --root "$demo/root" --runroot "$demo/run" --storage-driver overlay import --quiet - localhost/demo-usr:1 >/dev/null
  touch "$demo/imported"
fi

started=$(date +%s%N)
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
section() { printf '\n== %s\n' "$*"; }
cstor() { node dist/cli/main.js "$@"; }
show() { echo "\$ cstor $*"; cstor "$@"; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
json() { node -e "process.stdout.write(String(JSON.parse(require('fs').readFileSync(0, 'utf8'))$1))"; }

section "The sample store (podman build, skopeo copy), as podman lists it"
show --root "$main/root" --runroot "$main/run" image list

section "A layer exported bit for bit, side by side with tar-split asm"
store=(--root "$demo/root" --runroot "$demo/run")
layer="$(cstor "${store[@]}" image list --json | json '[0].topLayer')"
diff_digest="$(cstor "${store[@]}" layer inspect "$layer" | json '.diffDigest')"
size="$(cstor "${store[@]}" layer inspect "$layer" | json '.diffSize')"
echo "layer ${layer:0:12} of localhost/demo-usr:1: $((size / 1000000)) MB, diff digest $diff_digest"
asm=(tar-split asm --input "$demo/root/overlay-layers/$layer.tar-split.gz" --path "$demo/root/overlay/$layer/diff" --output -)
"${asm[@]}" >/dev/null 2>&1 # both read the layer's files from the page cache, not the first one from disk
echo "\$ cstor layer export ${layer:0:12} > cstor.tar"
t0=$(date +%s%N)
cstor "${store[@]}" layer export "$layer" >"$out/cstor.tar"
t1=$(date +%s%N)
echo "\$ tar-split asm --input $layer.tar-split.gz --path overlay/${layer:0:12}…/diff --output - > tar-split.tar"
"${asm[@]}" >"$out/tar-split.tar" 2>/dev/null
t2=$(date +%s%N)
printf '%-14s %9s  %s\n' tool seconds sha256
for tool in cstor tar-split; do
  digest="sha256:$(sha256sum "$out/$tool.tar" | cut -d' ' -f1)"
  [[ $tool == cstor ]] && took=$(seconds "$t0" "$t1") || took=$(seconds "$t1" "$t2")
  [[ "$digest" == "$diff_digest" ]] && verdict="= diff digest" || verdict="DIFFERS from the diff digest"
  printf '%-14s %9s  %s %s\n' "$tool" "$took" "${digest:0:23}…" "$verdict"
  [[ "$digest" == "$diff_digest" ]] || exit 1
done
awk -v a="$((t1 - t0))" -v b="$((t2 - t1))" 'BEGIN { printf "cstor: %.2fx the speed of tar-split asm, node start-up and a CRC-64 check of every body included (benches/export.mjs measures more)\n", b / a }'

section "An image extracted with overlay semantics (whiteouts, opaque directories)"
show --root "$main/root" --runroot "$main/run" image extract localhost/app:1 "$out/rootfs"
echo "\$ ls rootfs rootfs/app"; ls "$out/rootfs" "$out/rootfs/app"

section "Copied to an OCI layout, then verified"
show --root "$main/root" --runroot "$main/run" copy localhost/app:1 "oci:$out/layout:app" --compress zstd
blobs=0
for blob in "$out"/layout/blobs/sha256/*; do
  [[ "$(sha256sum "$blob" | cut -d' ' -f1)" == "$(basename "$blob")" ]] || { echo "blob $blob: wrong digest" >&2; exit 1; }
  blobs=$((blobs + 1))
done
echo "every blob's sha256 is its name ($blobs blobs)"
echo "\$ skopeo inspect oci:layout:app"
skopeo inspect "oci:$out/layout:app" | node -e '
  const i = JSON.parse(require("fs").readFileSync(0, "utf8"))
  console.log(`skopeo reads it: ${i.Digest}, ${i.Os}/${i.Architecture}, ${i.Layers.length} layers`)'
show --root "$main/root" --runroot "$main/run" verify --image localhost/app:1

section "Done in $(seconds "$started" "$(date +%s%N)") s"
