# Sourced by demo.sh and bench/compare.sh: a throwaway primary (archiving)
# with a streaming standby, removed on exit. Sets base, port, standby_port, pgbin;
# start_pgbouncer puts PgBouncer in front of the primary on bouncer_port.
pgbin=${PGVIGIL_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
base=$(mktemp -d /tmp/pgvigil-cluster.XXXXXX)
chmod 755 "$base"
run_pg() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
  # PostgreSQL refuses to run as root.
  pg_user=$(id -u postgres >/dev/null 2>&1 && echo postgres || echo nobody)
  chown "$pg_user" "$base"
  run_pg() { runuser -u "$pg_user" -- "$@"; }
fi
port=$((20000 + RANDOM % 20000))
standby_port=$((port + 1))
bouncer_port=$((port + 2))
cleanup_cluster() {
  # scripts/patroni.sh, when sourced, has processes of its own to stop.
  if declare -F cleanup_patroni >/dev/null; then cleanup_patroni; fi
  [ -f "$base/pgbouncer/pgbouncer.pid" ] && kill "$(cat "$base/pgbouncer/pgbouncer.pid")" 2>/dev/null || true
  for d in standby primary; do
    [ -d "$base/$d" ] && run_pg "$pgbin/pg_ctl" stop -m immediate -D "$base/$d" >/dev/null 2>&1 || true
  done
  rm -rf "$base"
}
trap cleanup_cluster EXIT
psql_p() { run_pg "$pgbin/psql" -X -q -h "$base" -p "$port" -U postgres -d postgres "$@"; }

start_cluster() {
  # shellcheck disable=SC2086 # initdb_args: words, e.g. --data-checksums
  run_pg "$pgbin/initdb" -N -A trust -U postgres ${initdb_args:-} -D "$base/primary" >/dev/null
  cat >>"$base/primary/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$base'
listen_addresses = '127.0.0.1'
fsync = off
archive_mode = on
archive_command = 'true'
cluster_name = 'pgvigil-primary'
${extra_conf:-}
CONF
  run_pg "$pgbin/pg_ctl" start -w -D "$base/primary" -l "$base/primary.log" >/dev/null
  psql_p -c "CREATE ROLE monitor LOGIN IN ROLE pg_monitor"
  # A sourcing script's own setup before the standby is copied (its
  # tablespaces, mapped by standby_basebackup_args).
  if declare -F before_standby >/dev/null; then before_standby; fi
  # shellcheck disable=SC2086 # standby_basebackup_args: words
  run_pg "$pgbin/pg_basebackup" -h "$base" -p "$port" -U postgres -D "$base/standby" -X stream -c fast \
    ${standby_basebackup_args:-}
  cat >>"$base/standby/postgresql.conf" <<CONF
port = $standby_port
cluster_name = 'pgvigil-standby'
primary_conninfo = 'host=$base port=$port user=postgres application_name=standby1'
CONF
  touch "$base/standby/standby.signal"
  run_pg "$pgbin/pg_ctl" start -w -D "$base/standby" -l "$base/standby.log" >/dev/null
  psql_p -c "CREATE TABLE demo AS SELECT generate_series(1, 10000) AS i" -c "SELECT pg_switch_wal()" >/dev/null
  sleep 1
}

# PgBouncer (session pooling, pool_size 2) in front of the primary, its
# console open to the monitor role as a stats_users role; socket in $base/pgbouncer.
start_pgbouncer() {
  local d=$base/pgbouncer
  mkdir -p "$d"
  cat >"$d/pgbouncer.ini" <<INI
[databases]
postgres = host=$base port=$port dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir = $d
auth_type = trust
auth_file = $d/users.txt
pool_mode = session
default_pool_size = 2
admin_users = postgres
stats_users = monitor
logfile = $d/pgbouncer.log
pidfile = $d/pgbouncer.pid
INI
  printf '"postgres" ""\n"monitor" ""\n' >"$d/users.txt"
  [ "$(id -u)" -eq 0 ] && chown -R "$pg_user" "$d"
  run_pg pgbouncer -q -d "$d/pgbouncer.ini"
  for _ in $(seq 50); do [ -S "$d/.s.PGSQL.$bouncer_port" ] && return 0; sleep 0.1; done
  echo "pgbouncer did not start" >&2; return 1
}
