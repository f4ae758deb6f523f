#!/usr/bin/env bash
# Installs what cstor's demo and tests need on a Debian machine (as root), then builds the package.
# Idempotent: installs only what is missing, rebuilds only what changed.
#
#   Debian packages: podman, skopeo, buildah, tar-split, busybox-static (fixture stores),
#                    attr (xattrs in fixtures), python3 (lock interop test), xfsprogs and
#                    e2fsprogs (reflink test on a loop-mounted XFS: mkfs.xfs, filefrag),
#                    docker-registry (a local registry for the docker:// proxy, pull and push
#                    tests and the zstd:chunked podman 5 fixture), apache2-utils (htpasswd for
#                    the registry-auth tests), openssl (the test token issuer's and the registry
#                    server's certificates), curl (the registry server's TLS test),
#                    mmdebstrap (the podman 5 userland: scripts/podman5-userland.sh, and the
#                    platform tests' Debian userlands),
#                    qemu-user-static, binutils (objdump) and gcc (the platform tests: arm64
#                    under qemu-user, glibc symbol versions), python3-pip if python3 has no pip
#                    (zig comes from PyPI), nodejs/npm if absent, pkg-config and libssl-dev
#                    (cfsctl, composefs-rs's CLI, which the composefs tests build from crates.io:
#                    __test__/fixtures/build-cfsctl.sh)
#   Rust:            cargo >= 1.88 must be on PATH (rustup); Debian's cargo is too old for napi-rs 3;
#                    the release build's toolchain (zig, cargo-zigbuild, the std of every napi
#                    target) comes with the first `npm run build` (scripts/toolchain.sh, cached);
#                    the nightly toolchain and cargo-fuzz for the fuzz smoke run (installed when
#                    missing; under CI=true a failed install fails, elsewhere it only warns)
#   Go:              go >= 1.24 must be on PATH: the registry test builds the OCI distribution-spec
#                    conformance suite through the Go module proxy (__test__/fixtures/build-conformance.sh),
#                    and the files test builds dive the same way (__test__/fixtures/build-dive.sh)
#   npm packages:    npm ci
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
for pair in podman:podman skopeo:skopeo buildah:buildah tar-split:tar-split busybox:busybox-static \
  setfattr:attr python3:python3 mkfs.xfs:xfsprogs filefrag:e2fsprogs docker-registry:docker-registry \
  htpasswd:apache2-utils openssl:openssl curl:curl mmdebstrap:mmdebstrap \
  qemu-aarch64-static:qemu-user-static objdump:binutils cc:gcc node:nodejs npm:npm \
  pkg-config:pkg-config; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
if [[ ${#need[@]} -gt 0 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: missing ${need[*]}; run as root or install them: apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "bootstrap: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

[[ -f "$HOME/.cargo/env" ]] && source "$HOME/.cargo/env"
if ! command -v cargo >/dev/null; then
  echo "bootstrap: cargo not found: install Rust >= 1.88 with rustup (https://rustup.rs)" >&2
  exit 1
fi

if ! command -v go >/dev/null; then
  echo "bootstrap: go not found: install Go >= 1.24 (it builds the OCI conformance suite)" >&2
  exit 1
fi

# Fuzzing (scripts/fuzz-smoke.sh) needs nightly for its sanitizer flags and cargo-fuzz.
fuzz_tools() {
  if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal || return 1
  fi
  if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked || return 1
  fi
}
if ! fuzz_tools; then
  if [[ "${CI:-}" == true ]]; then
    echo "bootstrap: could not install nightly Rust and cargo-fuzz" >&2
    exit 1
  fi
  echo "bootstrap: could not install nightly Rust and cargo-fuzz; the fuzz smoke run will be skipped" >&2
fi

if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
