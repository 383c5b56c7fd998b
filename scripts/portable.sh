#!/usr/bin/env bash
# The portable release build: every binary of the workspace linked against
# glibc 2.17, so that it starts on RHEL 7/8, Debian 10 and anything newer.
# cargo-zigbuild links with Zig, taken from PyPI (ziglang); no cross
# toolchain. Zig and its cache stay in $PGVIGIL_ZIG_CACHE (default
# /var/tmp/pgvigil-zig, about 450 MB), outside the repository, reused by the
# next build. Prints the directory of the binaries:
#   target/x86_64-unknown-linux-gnu/release
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${PGVIGIL_ZIG_CACHE:-/var/tmp/pgvigil-zig}
zig_version=0.17.1
zigbuild_version=0.24.1
if [ ! -x "$cache/ziglang/zig" ]; then
  mkdir -p "$cache"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --target "$cache" "ziglang==$zig_version" >&2
fi
if ! command -v cargo-zigbuild >/dev/null ||
  [ "$(cargo-zigbuild --version 2>/dev/null | awk '{print $2}')" != "$zigbuild_version" ]; then
  cargo install -q --locked --version "$zigbuild_version" cargo-zigbuild >&2
fi
export PATH=$cache/ziglang:$PATH ZIG_GLOBAL_CACHE_DIR=$cache/cache
cargo zigbuild -q --release --target x86_64-unknown-linux-gnu.2.17 --workspace --bins >&2
echo "$PWD/target/x86_64-unknown-linux-gnu/release"
