# Sourced by the package builders (debian, rpm, tarball): sets `version`
# (the workspace's, from Cargo) and `bin`, the directory of the release
# binaries: PGVIGIL_RELEASE_DIR (scripts/portable.sh's glibc 2.17 build,
# which scripts/release.sh and the tests use), else a native release build.
version=$(cargo metadata --no-deps --format-version 1 |
  sed -n 's/.*"name":"pgvigil","version":"\([^"]*\)".*/\1/p')
[ -n "$version" ] || { echo "$0: cannot read the version" >&2; exit 1; }
if [ -n "${PGVIGIL_RELEASE_DIR:-}" ]; then
  bin=$PGVIGIL_RELEASE_DIR
else
  cargo build --release --workspace --bins --quiet
  bin=target/release
fi
