#!/usr/bin/env bash
# The suite's main job, end to end: builds the plugins, starts a throwaway
# PostgreSQL primary with a streaming standby and WAL archiving, runs every
# plugin against it as a pg_monitor-only role, prints each output and exit
# code, ends with check_pg_health (several checks over one connection), and
# removes everything again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --workspace --bins -q
# One binary; every plugin is a link to it, as the package installs them.
target/release/pgvigil --install-links target/release >/dev/null
bin=$PWD/target/release

. scripts/cluster.sh
. scripts/patroni.sh
# Logical decoding, for the subscription shown below.
extra_conf="wal_level = logical"
echo "== starting a throwaway primary (port $port) and standby (port $standby_port) in $base"
start_cluster

# State between runs (rates, restarts, roles) stays in the throwaway directory.
export PGHOST=$base PGUSER=monitor PGDATABASE=postgres PGVIGIL_STATE_DIR=$base/state
plugin() {
  local port_=$1; shift
  echo
  echo "\$ $*"
  set +e
  PGPORT=$port_ "$bin/$@"
  echo "(exit code $?)"
  set -e
}
# The example the registry gives a check (the one its --help, man page and the
# README show), run against the throwaway cluster, with any extra arguments.
example() {
  local port_=$1 name=$2; shift 2
  eval "plugin \"\$port_\" $("$bin/pgvigil" --example "$name") \"\$@\""
}
# What some checks need first: a subscription, work between two runs of the
# rate checks, a dump, PgBouncer and a Patroni cluster.
# Logical replication: database shop subscribes to the primary's table demo
# (the slot is made first: a subscription to its own cluster cannot make it).
psql_p -c "CREATE DATABASE shop" -c "CREATE PUBLICATION demo_pub FOR TABLE demo WITH (publish = 'insert')" \
  -c "SELECT pg_create_logical_replication_slot('demo_sub', 'pgoutput')" >/dev/null
psql_p -d shop -c "CREATE TABLE demo (i int)" \
  -c "CREATE SUBSCRIPTION demo_sub CONNECTION 'host=$base port=$port user=postgres dbname=postgres' PUBLICATION demo_pub WITH (create_slot = false, slot_name = 'demo_sub')" >/dev/null
# The rate checks compare two runs: a baseline, some work, then the interval.
for c in check_pg_hit_ratio check_pg_deadlocks check_pg_commit_ratio check_pg_temp_files check_pg_checksums check_pg_checkpoints; do
  PGPORT=$port "$bin/$c" >/dev/null || true
done
psql_p -c "SET work_mem = '64kB'" -c "SELECT count(*) FROM (SELECT * FROM demo ORDER BY i DESC) s" -c "CHECKPOINT" >/dev/null
# A daily pg_dump, for the check of its freshness.
mkdir -p "$base/dumps"
"$pgbin/pg_dump" -h "$base" -p "$port" -U postgres -d postgres -f "$base/dumps/postgres-$(date +%F).sql"
# PgBouncer in front of the primary, read through its admin console.
start_pgbouncer
"$pgbin/psql" -X -q -h "$base/pgbouncer" -p "$bouncer_port" -U postgres -d postgres -c "SELECT 1" >/dev/null
# A Patroni cluster of two nodes beside it (etcd on loopback).
start_patroni 2
sleep 1

# Every program `pgvigil --list` names, in its order, runs the example the
# registry gives it; the few that need more are in this table. A new check
# needs no line here.
for name in $("$bin/pgvigil" --list | awk '{print $1}'); do
  case $name in
    check_pg_subscriptions) example "$port" "$name" -d shop -v ;;
    check_pg_role) plugin "$port" "$name" --expect primary --node "$base:$standby_port" ;;
    check_pg_hit_ratio) example "$port" "$name" --min-reads 10 ;;
    # The primary's log from the start (as root it may; an unprivileged user
    # would need log_file_mode = 0640 and the server's group).
    check_pg_log) example "$port" "$name" --log "$base/primary.log" --from-start ;;
    check_pg_backup) plugin "$port" "$name" --dump-dir "$base/dumps" --pattern '*.sql' -w 25h -c 49h ;;
    check_pg_pgbouncer) plugin "$bouncer_port" "$name" -H "$base/pgbouncer" -w 5,10s -c 20,1min ;;
    # Read through node1's REST API; then in maintenance mode, as someone
    # may forget it.
    check_pg_patroni)
      plugin "$port" "$name" --api "$patroni_api" --expect leader
      HOME=$patroni_dir run_pg patronictl -c "$patroni_dir/node1.yml" pause --wait >/dev/null
      plugin "$port" "$name" --api "$patroni_api" --expect leader ;;
    # Shown at the end, with the runbook link.
    check_pg_health) ;;
    # The event handler, as run by hand: a dry run that names the idle
    # sessions it would terminate (none on this quiet cluster; superusers'
    # sessions, such as PgBouncer's here, it never touches).
    *) example "$port" "$name" ;;
  esac
  # What a standby says of the same.
  case $name in
    check_pg_replication_lag) plugin "$standby_port" "$name" -w 16MB,30s -c 1GB,5min ;;
    check_pg_wraparound | check_pg_conflicts | check_pg_wal) plugin "$standby_port" "$name" ;;
  esac
done
echo
echo "== a failure looks like this (server stopped):"
run_pg "$pgbin/pg_ctl" stop -m fast -D "$base/standby" >/dev/null
plugin "$standby_port" check_pg_connections
echo
echo "== the same output as JSON and OpenMetrics (the exit code does not change):"
plugin "$port" check_pg_locks --format json
plugin "$port" check_pg_locks --format openmetrics
echo
echo "== a whole health check as one run over one connection, with a runbook link:"
plugin "$port" check_pg_health --runbook-url 'https://wiki.example.com/postgres/{check}/{state}'
plugin "$port" check_pg_health --check 'connections -w 0' --check 'long_running -w 5min -c 30min' --check 'archiver -w 10,10min -c 50,1h' --check 'replication_lag --min-standbys 1 -w 16MB,30s -c 1GB,5min' --runbook-url 'https://wiki.example.com/postgres/{check}/{state}'
