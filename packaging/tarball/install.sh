#!/bin/sh
# Installs pgvigil from this directory: the binary into PLUGIN_DIR with a
# check_pg_* / handle_pg_* link to it for every program, and with --man-dir,
# --completions-dir or --icinga2-dir the man pages, the bash completions and
# the Icinga2 CheckCommands too.
#   ./install.sh /usr/lib64/nagios/plugins
#   ./install.sh /usr/local/lib/nagios --man-dir /usr/local/share/man/man1
set -eu
here=$(cd "$(dirname "$0")" && pwd)
usage() {
	echo "usage: $0 PLUGIN_DIR [--man-dir DIR] [--completions-dir DIR] [--icinga2-dir DIR]" >&2
	exit 3
}
[ $# -ge 1 ] || usage
plugins=$1
shift
man= completions= icinga2=
while [ $# -gt 0 ]; do
	case $1 in
	--man-dir) [ $# -ge 2 ] || usage; man=$2; shift 2 ;;
	--completions-dir) [ $# -ge 2 ] || usage; completions=$2; shift 2 ;;
	--icinga2-dir) [ $# -ge 2 ] || usage; icinga2=$2; shift 2 ;;
	*) usage ;;
	esac
done
mkdir -p "$plugins"
install -m 0755 "$here/pgvigil" "$plugins/pgvigil"
"$plugins/pgvigil" --install-links "$plugins"
if [ -n "$man" ]; then
	mkdir -p "$man"
	install -m 0644 "$here"/man/man1/*.1.gz "$man/"
	echo "pgvigil: man pages in $man"
fi
if [ -n "$completions" ]; then
	mkdir -p "$completions"
	install -m 0644 "$here"/completions/bash/* "$completions/"
	echo "pgvigil: bash completions in $completions"
fi
if [ -n "$icinga2" ]; then
	mkdir -p "$icinga2"
	install -m 0644 "$here/icinga2/pgvigil.conf" "$icinga2/"
	echo "pgvigil: Icinga2 CheckCommands in $icinga2/pgvigil.conf"
fi
