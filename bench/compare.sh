#!/usr/bin/env bash
# pgvigil beside the peers (check_postgres, check_pgactivity, and check_pgsql,
# which only connects and runs one query: the floor). For each check, every
# tool runs alternately RUNS times, all through the same Unix socket: median
# and spread of wall time, CPU (user+sys, children included) and peak RSS, and
# then, with log_connections and log_statement=all on, the connections and
# statements each run costs the server. Twice: on an empty cluster, then with
# 10,000 tables and 500 idle sessions. Prints Markdown; keeps the figures in
# bench/results/compare.json and the whole report in compare.md, a
# BENCH_CHECKS run replacing those checks' rows alone; git keeps the history. Then, without
# BENCH_CHECKS, the two scales one throwaway cluster cannot hold, each built
# once and cached (bench/databases.sh: 1,000 databases; bench/relations.sh:
# one database of 100,000 relations), BENCH_SCALE_RUNS runs each (default 3).
#   bench/compare.sh [RUNS]      (default 30 runs per tool and check)
#   BENCH_CHECKS=bloat,db_size bench/compare.sh 15   (only these checks)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
scripts/setup.sh
need=()
command -v check_postgres >/dev/null || need+=(check-postgres)
[ -x /usr/lib/nagios/plugins/check_pgactivity ] || need+=(check-pgactivity)
[ -x /usr/lib/nagios/plugins/check_pgsql ] || need+=(monitoring-plugins-standard)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --workspace --bins -q
# Every plugin as a link to the one binary, as the package installs them.
target/release/pgvigil --install-links target/release >/dev/null
. scripts/cluster.sh
# Room for the 500 idle sessions of the scale scenario.
extra_conf="max_connections = 600"
start_cluster
# A second database with data, so that the checks that visit every database
# (and the peers' that skip "postgres") have one to look into; the monitoring
# role may read its statistics, so that bloat is estimated, not refused.
psql_p -c "CREATE DATABASE app" -c "GRANT pg_read_all_data TO monitor" >/dev/null
run_pg "$pgbin/pgbench" -i -q -s 5 -h "$base" -p "$port" -U postgres app >/dev/null 2>&1
# A daily dump of app, for the backup checks; PgBouncer in front of
# the primary, with an application session so that its pool exists.
mkdir -p "$base/dumps"
"$pgbin/pg_dump" -h "$base" -p "$port" -U postgres -d app -f "$base/dumps/app-$(date +%F).sql"
start_pgbouncer
"$pgbin/psql" -X -q -h "$base/pgbouncer" -p "$bouncer_port" -U postgres -d postgres -c "SELECT 1" >/dev/null
# A two-node Patroni cluster, and dalibo's check_patroni (PyPI) in a venv of
# the throwaway directory, for the patroni row.
patroni_args=()
if [ -z "${BENCH_CHECKS:-}" ] || [[ ",$BENCH_CHECKS," == *,patroni,* ]]; then
  . scripts/patroni.sh
  start_patroni 2
  python3 -m venv "$base/venv" && "$base/venv/bin/pip" install -q check_patroni
  patroni_args=(--patroni-api "$patroni_api" --check-patroni "$base/venv/bin/check_patroni")
fi

psql_c() { echo "$pgbin/psql -X -q -h $base -U postgres -d postgres -p $1"; }
logging() {
  local p cmd=true
  for p in "$port" "$standby_port"; do
    cmd="$cmd && $(psql_c "$p") -c \"ALTER SYSTEM SET log_connections = $1\" -c \"ALTER SYSTEM SET log_statement = '$2'\" -c \"ALTER SYSTEM SET log_duration = $1\" -c 'SELECT pg_reload_conf()' >/dev/null"
  done
  echo "$cmd"
}
# \gexec must follow the query in the same psql input.
# In app, which every tool reads (check_pgactivity skips postgres).
make_tables="printf '%s\n' \"SELECT format('CREATE TABLE bench_t%s (id int PRIMARY KEY, v text)', g) FROM generate_series(1, 10000) g\" '\\gexec' | $(psql_c "$port") -d app >/dev/null"

# check_pgactivity's status file is left for it to create: a status file
# that exists without its .lock makes every stateful service (last_vacuum,
# last_analyze, database_size, the ratios) die after its first three
# statements, exit 2, and look fast.
mkdir -p bench/results
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), $runs runs per tool and check"
python3 bench/measure.py --server-version "$("$pgbin/postgres" --version | awk '{print $3}')" --base "$base" --port "$port" --standby-port "$standby_port" --bouncer-port "$bouncer_port" \
  --bin "$PWD/target/release" --status-file "$base/pgactivity.status" --runs "$runs" \
  --json bench/results/compare.json --markdown bench/results/compare.md --make-tables "$make_tables" \
  --logging-on "$(logging on all)" --logging-off "$(logging off none)" ${BENCH_CHECKS:+--checks "$BENCH_CHECKS"} \
  "${patroni_args[@]}"

if [ -z "${BENCH_CHECKS:-}" ]; then
  cleanup_cluster
  trap - EXIT
  bench/databases.sh 1000 "${BENCH_SCALE_RUNS:-3}"
  bench/relations.sh 25000 "${BENCH_SCALE_RUNS:-3}"
fi
