#!/usr/bin/env bash
# Builds (or reuses) a Debian sid userland with podman 5 and skopeo, for tests and benchmarks that
# compare cstor with the podman users run today (sid has 5.8, what current Fedora ships), while the
# machine itself keeps Debian's podman 4.3. Prints the userland's directory on stdout.
# scripts/podman5 runs a command in it on stores outside it. Runs as root.
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/cstor/podman5/{root,stamp}. The stamp covers this script
# (suite, packages, options), so the userland is rebuilt only when they change; sid moves on, a
# cached userland does not. The build goes to root.new and is renamed into place, under a lock, so
# concurrent callers wait for one build and never see half a userland.
set -euo pipefail

suite=sid
# podman, skopeo: the tools under test. composefs: mkcomposefs, which podman needs for
# use_composefs (the fixture build tries it).
packages=podman,skopeo,composefs

cache="${XDG_CACHE_HOME:-$HOME/.cache}/cstor/podman5"
stamp_value="$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"

built() { [[ -f "$cache/stamp" && "$(cat "$cache/stamp")" == "$stamp_value" && -x "$cache/root/usr/bin/podman" ]]; }

if built; then
  echo "$cache/root"
  exit 0
fi

if ! command -v mmdebstrap >/dev/null; then
  echo "podman5-userland: 'mmdebstrap' is missing (run scripts/bootstrap.sh)" >&2
  exit 1
fi

# The Debian mirror this machine's apt uses (deb822 .sources or one-line .list), so the build works
# where only that mirror is reachable.
mirror() {
  local uri
  uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p' |
    tr ' ' '\n' | grep -E '/debian/?$' | head -n1 || true)"
  if [[ -z "$uri" ]]; then
    uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' |
      grep -E '/debian/?$' | head -n1 || true)"
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
if built; then # another caller built it while this one waited
  echo "$cache/root"
  exit 0
fi

rm -rf "$cache/root.new" "$cache/stamp"
# sid's Release file is often past its Valid-Until date on snapshot mirrors.
mmdebstrap --quiet --variant=minbase --include="$packages" \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  "$suite" "$cache/root.new" "$(mirror)" >&2
rm -rf "$cache/root"
mv "$cache/root.new" "$cache/root"
echo "$stamp_value" >"$cache/stamp"
echo "$cache/root"
