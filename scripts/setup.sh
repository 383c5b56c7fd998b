#!/usr/bin/env bash
# Installs what building and testing pgvigil needs on a Debian machine:
# PostgreSQL server binaries (unless PGVIGIL_PG_BINDIR names some), the
# openssl tool the TLS tests make certificates with; the monitoring daemons the
# packaging tests run (Icinga2, Nagios 4) and the Debian packaging tools
# (dpkg-shlibdeps, lintian) and RPM tools (rpmbuild, rpmlint); the validators of the JSON and OpenMetrics
# output (python3-jsonschema, promtool from prometheus); pgBackRest and
# PgBouncer, which the backup and pool checks are tested against; Patroni and
# etcd, for the HA check; Icinga Director, for the basket. Safe to run again.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "setup: need root (or sudo) to run: $*" >&2; exit 1
  fi
}

missing=()
have_server() {
  [ -n "${PGVIGIL_PG_BINDIR:-}" ] && [ -x "$PGVIGIL_PG_BINDIR/initdb" ] && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
have_server || missing+=(postgresql)
command -v pg_basebackup >/dev/null || ls /usr/lib/postgresql/*/bin/pg_basebackup >/dev/null 2>&1 || missing+=(postgresql-client)
command -v df >/dev/null || missing+=(coreutils)
command -v openssl >/dev/null || missing+=(openssl)
command -v icinga2 >/dev/null || missing+=(icinga2-bin icinga2-common)
command -v nagios4 >/dev/null || missing+=(nagios4-core)
command -v dpkg-shlibdeps >/dev/null || missing+=(dpkg-dev)
command -v lintian >/dev/null || missing+=(lintian)
# The RPM for RHEL-family hosts: rpmbuild and rpmlint.
command -v rpmbuild >/dev/null || missing+=(rpm)
command -v rpmlint >/dev/null || missing+=(rpmlint)
command -v man >/dev/null || missing+=(man-db)
# The validators of --format: promtool (OpenMetrics) and a JSON Schema validator.
command -v promtool >/dev/null || missing+=(prometheus)
/usr/bin/python3 -c 'import jsonschema' 2>/dev/null || missing+=(python3-jsonschema)
# The components check_pg_backup and check_pg_pgbouncer are tested against.
command -v pgbackrest >/dev/null || missing+=(pgbackrest)
command -v pgbouncer >/dev/null || missing+=(pgbouncer)
# check_pg_patroni is tested against a real Patroni cluster with etcd.
command -v patroni >/dev/null || missing+=(patroni)
command -v curl >/dev/null || missing+=(curl)
command -v etcd >/dev/null || missing+=(etcd-server)
# The Director basket is tested in a real Icinga Director (PHP, PostgreSQL).
command -v icingacli >/dev/null || missing+=(icingacli)
[ -d /usr/share/icingaweb2/modules/director ] || missing+=(icingaweb2-module-director)
[ -n "$(ls /usr/lib/php/*/pdo_pgsql.so 2>/dev/null)" ] || missing+=(php-pgsql)

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  # The tests start their own clusters: no need for Debian's main cluster.
  as_root mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "setup: cargo (Rust toolchain) is required" >&2; exit 1; }
