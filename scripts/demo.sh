#!/usr/bin/env bash
# The suite's main job, end to end: builds the plugins, starts a throwaway
# PostgreSQL primary with a streaming standby and WAL archiving, runs every
# plugin against it as a pg_monitor-only role, prints each output and exit
# code, and removes everything again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --workspace --bins -q
bin=$PWD/target/release

pgbin=${PGVIGIL_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
base=$(mktemp -d /tmp/pgvigil-demo.XXXXXX)
chmod 755 "$base"
run_pg() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
  # PostgreSQL refuses to run as root.
  user=$(id -u postgres >/dev/null 2>&1 && echo postgres || echo nobody)
  chown "$user" "$base"
  run_pg() { runuser -u "$user" -- "$@"; }
fi
port=$((20000 + RANDOM % 20000))
cleanup() {
  for d in standby primary; do
    [ -d "$base/$d" ] && run_pg "$pgbin/pg_ctl" stop -m immediate -D "$base/$d" >/dev/null 2>&1 || true
  done
  rm -rf "$base"
}
trap cleanup EXIT

echo "== starting a throwaway primary (port $port) and standby (port $((port + 1))) in $base"
run_pg "$pgbin/initdb" -N -A trust -U postgres -D "$base/primary" >/dev/null
cat >>"$base/primary/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$base'
listen_addresses = '127.0.0.1'
fsync = off
archive_mode = on
archive_command = 'true'
cluster_name = 'demo-primary'
CONF
run_pg "$pgbin/pg_ctl" start -w -D "$base/primary" -l "$base/primary.log" >/dev/null
psql_p() { run_pg "$pgbin/psql" -X -q -h "$base" -p "$port" -U postgres -d postgres "$@"; }
psql_p -c "CREATE ROLE monitor LOGIN IN ROLE pg_monitor"
run_pg "$pgbin/pg_basebackup" -h "$base" -p "$port" -U postgres -D "$base/standby" -X stream -c fast
cat >>"$base/standby/postgresql.conf" <<CONF
port = $((port + 1))
cluster_name = 'demo-standby'
primary_conninfo = 'host=$base port=$port user=postgres application_name=standby1'
CONF
touch "$base/standby/standby.signal"
run_pg "$pgbin/pg_ctl" start -w -D "$base/standby" -l "$base/standby.log" >/dev/null
psql_p -c "CREATE TABLE demo AS SELECT generate_series(1, 10000) AS i" -c "SELECT pg_switch_wal()" >/dev/null
sleep 1

export PGHOST=$base PGUSER=monitor PGDATABASE=postgres
plugin() {
  local port_=$1; shift
  echo
  echo "\$ $*"
  set +e
  PGPORT=$port_ "$bin/$@"
  echo "(exit code $?)"
  set -e
}
plugin "$port" check_pg_connections -w 80% -c 90%
plugin "$port" check_pg_replication_lag --min-standbys 1 -w 16MB,30s -c 1GB,5min
plugin $((port + 1)) check_pg_replication_lag -w 16MB,30s -c 1GB,5min
plugin "$port" check_pg_disk -w 80% -c 90%
plugin "$port" check_pg_locks -w 5,30s -c 20,5min
plugin "$port" check_pg_archiver -w 10,10min -c 50,1h
plugin "$port" check_pg_query --query "SELECT count(*) FROM pg_stat_activity" --label sessions -w 50 -c 80
echo
echo "== a failure looks like this (server stopped):"
run_pg "$pgbin/pg_ctl" stop -m fast -D "$base/standby" >/dev/null
plugin $((port + 1)) check_pg_connections
