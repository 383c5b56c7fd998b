#!/usr/bin/env bash
# The whole test suite: unit tests of the core, then every plugin binary run
# against real throwaway PostgreSQL clusters (primary, streaming standby,
# archiving). Works as root: the clusters then run as an unprivileged user.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

cargo fmt --all -- --check
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --workspace --all-targets -- -D warnings
fi
# The integration tests run the plugin binaries, so build them first, and
# the package tests install the .deb, the RPM and the tarball, all three from
# the portable release binary (glibc 2.17): scripts/release.sh builds them.
cargo build --workspace --bins
scripts/release.sh >/dev/null
# Unit and property tests of the crates, then the integration tests, several
# binaries at a time (scripts/integration.sh).
cargo test --workspace --exclude pgvigil-tests --no-fail-fast
scripts/integration.sh
# Every fuzz target briefly, from its starting inputs (scripts/fuzz.sh runs them long).
scripts/fuzz.sh 3
# The integration tests again on every other PostgreSQL major from 12 to 18:
# the run above was on the newest installed server (Debian's 15 here).
main=$("$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/postgres" -V |
  awk '{print $3}' | cut -d. -f1)
others=()
for major in 12 13 14 15 16 17 18; do
  [ "$major" = "$main" ] || others+=("$major")
done
scripts/matrix.sh "${others[@]}"
