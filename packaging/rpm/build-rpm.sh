#!/usr/bin/env bash
# Builds target/rpm/pgvigil-<version>-1.x86_64.rpm for RHEL-family hosts,
# from the same release binary as the .deb, in the RHEL layout:
#   /usr/lib64/nagios/plugins/pgvigil and its check_pg_*, handle_pg_* links
#   /usr/share/icinga2/include/plugins-contrib.d/pgvigil.conf (where the
#       icinga2 RPMs keep the Template Library's plugin commands)
#   /etc/nagios/conf.d/pgvigil.cfg (EPEL's nagios reads that directory)
#   /usr/share/man/man1, bash and zsh completions, /usr/share/pgvigil (schema, Director basket)
#   /var/lib/pgvigil, 0750, given to nagios (or icinga) by %post
# Needs rpmbuild (Debian's rpm package; scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."

. packaging/release-binaries.sh
out=$PWD/target/rpm
stage=$out/stage
rm -rf "$out"
plugins=$stage/usr/lib64/nagios/plugins
install -d "$plugins" "$stage/usr/share/man/man1" "$stage/usr/share/icinga2/include/plugins-contrib.d" \
  "$stage/etc/nagios/conf.d" "$stage/usr/share/doc/pgvigil/examples" "$stage/usr/share/pgvigil" \
  "$stage/var/lib/pgvigil"
install -m 0755 "$bin/pgvigil" "$plugins/pgvigil"
"$plugins/pgvigil" --install-links "$plugins" >/dev/null
"$plugins/pgvigil" --completions bash "$stage/usr/share/bash-completion/completions" >/dev/null
"$plugins/pgvigil" --completions zsh "$stage/usr/share/zsh/site-functions" >/dev/null
# The daemons' commands and the examples, rendered by the binary.
install_daemon_files "$stage/usr/share/icinga2/include/plugins-contrib.d/pgvigil.conf" \
  "$stage/etc/nagios/conf.d/pgvigil.cfg" "$stage/usr/share/doc/pgvigil/examples"
install -m 0644 README.md packaging/debian/copyright "$stage/usr/share/doc/pgvigil/"
install -m 0644 packaging/schema/pgvigil-result.schema.json "$stage/usr/share/pgvigil/"
"$bin/pgvigil" --director-basket >"$stage/usr/share/pgvigil/pgvigil-director-basket.json"
chmod 0644 "$stage/usr/share/pgvigil/pgvigil-director-basket.json"
"$bin/pgvigil-man" "$out/man" >/dev/null
for p in $("$bin/pgvigil" --links); do
  [ -f "$out/man/$p.1" ] || { echo "build-rpm: no man page for $p" >&2; exit 1; }
  gzip -9n <"$out/man/$p.1" >"$stage/usr/share/man/man1/$p.1.gz"
done
chmod 0644 "$stage"/usr/share/man/man1/*.gz "$stage"/usr/share/bash-completion/completions/* \
  "$stage"/usr/share/zsh/site-functions/*

rpmbuild -bb --quiet \
  --define "_topdir $out/build" \
  --define "_rpmdir $out" \
  --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
  --define "pgvigil_version $version" \
  --define "stage $stage" \
  --define "_libdir /usr/lib64" \
  --define "_sharedstatedir /var/lib" \
  packaging/rpm/pgvigil.spec >/dev/null
rm -rf "$out/build" "$out/man"
echo "$out/pgvigil-$version-1.x86_64.rpm"
