#!/usr/bin/env bash
# Builds target/tarball/pgvigil-<version>-x86_64-linux.tar.gz for any glibc
# Linux: the binary, install.sh (makes the links in a chosen plugin
# directory), man pages, bash and zsh completions, the Icinga2 conf, the
# Nagios cfg, the examples, the JSON schema and the README. The binary is
# PGVIGIL_RELEASE_DIR's (scripts/portable.sh: glibc 2.17), else a native
# release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
. packaging/release-binaries.sh
out=$PWD/target/tarball
name=pgvigil-$version-x86_64-linux
dir=$out/$name
rm -rf "$out"
install -d "$dir/man/man1" "$dir/icinga2" "$dir/nagios" "$dir/examples"
install -m 0755 "$bin/pgvigil" "$dir/pgvigil"
install -m 0755 packaging/tarball/install.sh "$dir/install.sh"
"$bin/pgvigil-man" "$out/man" >/dev/null
for p in $("$bin/pgvigil" --links); do
  gzip -9n <"$out/man/$p.1" >"$dir/man/man1/$p.1.gz"
done
"$bin/pgvigil" --completions bash "$dir/completions/bash" >/dev/null
"$bin/pgvigil" --completions zsh "$dir/completions/zsh" >/dev/null
# The daemons' commands and the examples, rendered by the binary.
install_daemon_files "$dir/icinga2/pgvigil.conf" \
  "$dir/nagios/pgvigil.cfg" "$dir/examples"
install -m 0644 packaging/schema/pgvigil-result.schema.json README.md "$dir/"
"$bin/pgvigil" --director-basket >"$dir/icinga2/pgvigil-director-basket.json"
install -m 0644 packaging/debian/copyright "$dir/COPYRIGHT"
chmod -R u+rwX,go+rX,go-w "$dir"
tar -C "$out" --owner=0 --group=0 --numeric-owner --sort=name -czf "$out/$name.tar.gz" "$name"
rm -rf "$dir" "$out/man"
echo "$out/$name.tar.gz"
