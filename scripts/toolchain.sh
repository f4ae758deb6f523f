#!/usr/bin/env bash
# Sets up the toolchain that builds cstor's release binaries against an old glibc, and prints the
# directory to put first on PATH. `napi build --cross-compile` runs `cargo zigbuild`, whose linker
# is `zig cc`: zig carries stubs of every glibc version, so a `--target <triple>.2.28` build links
# against glibc 2.28's symbol versions whatever glibc the build machine has (RHEL 8 has 2.28).
#
# napi-rs's other way, `--use-napi-cross`, was tried and left: @napi-rs/cross-toolchain 1.0.5
# downloads `@napi-rs/cross-toolchain-<host>-target-<arch>@1.0.5`, and the registry has no such
# version of the x86_64 and aarch64 toolchains (1.0.0 and 1.0.3), so the build fails.
#
# Cached under ${XDG_CACHE_HOME:-$HOME/.cache}/cstor/toolchain/<versions>/ (built in a temp dir,
# renamed when complete, so an interrupted run leaves nothing half-made):
#   zig/             the `ziglang` wheel from PyPI (the zig binary and its libc headers/stubs)
#   bin/zig          -> ../zig/ziglang/zig
#   bin/cargo-zigbuild  from crates.io (`cargo install --locked`)
# Also adds the Rust standard library of every `napi.targets` triple with rustup.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

zig_version=0.14.1
zigbuild_version=0.24.1

[[ -f "$HOME/.cargo/env" ]] && source "$HOME/.cargo/env"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/cstor/toolchain"
dir="$cache/zig-$zig_version+zigbuild-$zigbuild_version"

if [[ ! -x "$dir/bin/cargo-zigbuild" ]]; then
  echo "toolchain: installing zig $zig_version (PyPI) and cargo-zigbuild $zigbuild_version (crates.io) into $dir" >&2
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/.new.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$tmp/zig" \
    "ziglang==$zig_version" 2> >(grep -v "Running pip as the 'root' user" >&2)
  cargo install --quiet --locked --root "$tmp" --version "$zigbuild_version" cargo-zigbuild
  ln -s ../zig/ziglang/zig "$tmp/bin/zig"
  rm -f "$tmp/.crates.toml" "$tmp/.crates2.json"
  if ! mv -T "$tmp" "$dir" 2>/dev/null; then
    [[ -x "$dir/bin/cargo-zigbuild" ]] || { echo "toolchain: could not create $dir" >&2; exit 1; }
  fi
fi

installed="$(rustup target list --installed)"
for target in $(node -p 'require("./package.json").napi.targets.join(" ")'); do
  grep -qx "$target" <<<"$installed" || rustup target add "$target" >&2
done

echo "$dir/bin"
