#!/usr/bin/env bash
# The 30-second tour: builds the sample stores with podman/skopeo, then reads them with cstor.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
bash __test__/fixtures/build-stores.sh

root="$PWD/.fixtures/main/root"
cstor() { echo "\$ cstor $*" >&2; node dist/cli/main.js --root "$root" "$@"; echo >&2; }

cstor image list
cstor image layers localhost/app:1
cstor image inspect busybox --json | head -n 25
cstor layer inspect "$(node dist/cli/main.js --root "$root" image list --json | node -e '
  const images = JSON.parse(require("fs").readFileSync(0, "utf8"))
  process.stdout.write(images.find((i) => i.names.includes("localhost/app:1")).topLayer)')"
link="$(ls "$root/overlay/l" | head -n 1)"
cstor resolve-link "$link"
