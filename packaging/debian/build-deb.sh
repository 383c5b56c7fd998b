#!/usr/bin/env bash
# Builds target/debian/pgvigil_<version>_<arch>.deb from a release build:
#   /usr/lib/nagios/plugins/pgvigil                          the one binary
#   /usr/lib/nagios/plugins/check_pg_*, handle_pg_*          links to it
#   /usr/share/icinga2/include/plugins-contrib.d/pgvigil.conf Icinga2 CheckCommands
#   /etc/nagios-plugins/config/pgvigil.cfg                    Nagios commands (conffile)
#   /usr/share/man/man1/check_pg_*.1.gz                       man pages, from the clap definitions
#   /usr/share/doc/pgvigil/examples/                          host and service examples
#   /usr/share/pgvigil/pgvigil-result.schema.json             the schema of --format json
#   /usr/share/pgvigil/pgvigil-director-basket.json           the Icinga Director basket
# Needs dpkg-dev (dpkg-shlibdeps); scripts/setup.sh installs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=packaging/debian

arch=$(dpkg --print-architecture)

. packaging/release-binaries.sh
# Every check and handler, as the registry names them.
plugins=$("$bin/pgvigil" --links)

out=target/debian
root=$out/pgvigil_${version}_$arch
rm -rf "$root"
install -d "$root/DEBIAN" "$root/usr/lib/nagios/plugins" "$root/usr/share/man/man1" \
  "$root/usr/share/icinga2/include/plugins-contrib.d" "$root/etc/nagios-plugins/config" \
  "$root/usr/share/doc/pgvigil/examples" "$root/usr/share/pgvigil"

install -m 0755 "$bin/pgvigil" "$root/usr/lib/nagios/plugins/pgvigil"
# Relative links beside the binary, made by the binary from its registry.
"$root/usr/lib/nagios/plugins/pgvigil" --install-links "$root/usr/lib/nagios/plugins" >/dev/null
# Shell completions, one file per program where bash-completion and zsh look.
"$root/usr/lib/nagios/plugins/pgvigil" --completions bash "$root/usr/share/bash-completion/completions" >/dev/null
"$root/usr/lib/nagios/plugins/pgvigil" --completions zsh "$root/usr/share/zsh/vendor-completions" >/dev/null
chmod 0644 "$root"/usr/share/bash-completion/completions/* "$root"/usr/share/zsh/vendor-completions/*
# The daemons' commands and the examples, rendered by the binary.
install_daemon_files "$root/usr/share/icinga2/include/plugins-contrib.d/pgvigil.conf" \
  "$root/etc/nagios-plugins/config/pgvigil.cfg" "$root/usr/share/doc/pgvigil/examples"
install -m 0644 packaging/schema/pgvigil-result.schema.json "$root/usr/share/pgvigil/"
"$bin/pgvigil" --director-basket >"$root/usr/share/pgvigil/pgvigil-director-basket.json"
chmod 0644 "$root/usr/share/pgvigil/pgvigil-director-basket.json"
install -m 0644 "$here/copyright" "$root/usr/share/doc/pgvigil/copyright"
sed "s/@VERSION@/$version/" "$here/changelog" | gzip -9n >"$root/usr/share/doc/pgvigil/changelog.gz"

"$bin/pgvigil-man" "$out/man"
for p in $plugins; do
  [ -f "$out/man/$p.1" ] || { echo "build-deb: no man page for $p" >&2; exit 1; }
  gzip -9n <"$out/man/$p.1" >"$root/usr/share/man/man1/$p.1.gz"
done
chmod 0644 "$root"/usr/share/man/man1/*.gz "$root/usr/share/doc/pgvigil/changelog.gz"

# Library dependencies as Debian computes them; dpkg-shlibdeps wants a
# debian/control to read, so give it a minimal one in a scratch dir.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/debian"
printf 'Source: pgvigil\n\nPackage: pgvigil\nArchitecture: any\n' >"$scratch/debian/control"
binary=$PWD/$root/usr/lib/nagios/plugins/pgvigil
depends=$(cd "$scratch" && dpkg-shlibdeps -O "$binary" | sed -n 's/^shlibs:Depends=//p')

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
  -e "s/@DEPENDS@/$depends/" "$here/control.in" >"$root/DEBIAN/control"
echo /etc/nagios-plugins/config/pgvigil.cfg >"$root/DEBIAN/conffiles"
# The rate checks' state directory belongs to the monitoring user (Debian's
# Nagios and Icinga2 both run as nagios); without one the plugins fall back
# to the user's ~/.local/state/pgvigil.
cat >"$root/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
	install -d -m 0750 /var/lib/pgvigil
	if getent passwd nagios >/dev/null; then
		chown nagios:nagios /var/lib/pgvigil
	fi
fi
SH
cat >"$root/DEBIAN/postrm" <<'SH'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
	rm -rf /var/lib/pgvigil
fi
SH
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
  sort -z | xargs -0 md5sum >DEBIAN/md5sums)
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

deb=$out/pgvigil_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
