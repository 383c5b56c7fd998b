#!/usr/bin/env bash
# The release artifacts, from one portable binary (glibc 2.17, see
# scripts/portable.sh), into target/dist with their SHA-256 sums:
#   pgvigil_<version>_amd64.deb           Debian, Ubuntu
#   pgvigil-<version>-1.x86_64.rpm        RHEL, Rocky, Alma, Fedora
#   pgvigil-<version>-x86_64-linux.tar.gz any glibc Linux (install.sh inside)
#   SHA256SUMS
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
PGVIGIL_RELEASE_DIR=$(scripts/portable.sh)
export PGVIGIL_RELEASE_DIR
deb=$(packaging/debian/build-deb.sh)
rpm=$(packaging/rpm/build-rpm.sh)
tarball=$(packaging/tarball/build-tarball.sh)
dist=target/dist
rm -rf "$dist"
mkdir -p "$dist"
cp "$deb" "$rpm" "$tarball" "$dist/"
(cd "$dist" && sha256sum -- * >SHA256SUMS)
cat "$dist/SHA256SUMS"
