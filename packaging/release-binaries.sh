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

# What the daemons are given, as this binary renders it from its own
# options: install_daemon_files ICINGA2_CONF NAGIOS_CFG EXAMPLES_DIR. The
# examples are the repository's, each with a service for any check they
# leave out.
install_daemon_files() {
  "$bin/pgvigil" --icinga2-commands >"$1"
  "$bin/pgvigil" --nagios-commands >"$2"
  install -m 0644 packaging/icinga2/pgvigil-ha-example.conf "$3/"
  "$bin/pgvigil" --icinga2-example packaging/icinga2/pgvigil-example.conf >"$3/pgvigil-example.conf"
  "$bin/pgvigil" --nagios-example packaging/nagios/pgvigil-example.cfg >"$3/pgvigil-example.cfg"
  chmod 0644 "$1" "$2" "$3/pgvigil-example.conf" "$3/pgvigil-example.cfg"
}
