#!/usr/bin/env bash
# --all-databases at scale: a cluster of COUNT databases (each with a table,
# two indexes on it and a sequence), visited one at a time (--jobs 1) and a
# few at once (--jobs 3, the default: at most 4 sessions with the check's
# own), beside check_pgactivity's services that visit every database. The monitoring role runs with CONNECTION
# LIMIT 4, so a run that held more sessions at once would find databases
# unreachable (exit 1): the exit codes column shows it.
#
# Creating the databases takes minutes and about 8 MB of disk each: the
# cluster is kept (bench/cache.sh).
#   bench/databases.sh [COUNT] [RUNS]      (default 1000 databases, 5 runs;
#                                           PEER_RUNS=1 for check_pgactivity,
#                                           0 to leave the peers out;
#                                           BENCH_CHECKS="vacuum indexes" for some checks)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000}
runs=${2:-5}
cached=databases-$count
. bench/cache.sh
psql_p() { psql_d postgres "$@"; }

if ! built; then
  init_cached
  start max_connections=100
  psql_p -c "CREATE ROLE monitor LOGIN CONNECTION LIMIT 4 IN ROLE pg_monitor"
  # The objects every database gets, in template1 so each copy has them.
  psql_d template1 -c \
    "CREATE SEQUENCE ids; CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g;
     CREATE INDEX t_a ON t (id); CREATE INDEX t_b ON t (id)" -c "VACUUM ANALYZE t"
  seq -f "CREATE DATABASE tenant%04g;" 1 "$count" | psql_p
  mark_built
else
  start max_connections=100
fi
# Statistics readable (pg_stats for pgvigil's estimate; pg_statistic, which
# check_pgactivity's bloat services read directly, else "permission denied").
psql_p -c "GRANT pg_read_all_data TO monitor" >/dev/null

export PGHOST=$sock PGPORT=$port PGUSER=monitor PGDATABASE=postgres
measure() { "$bin/pgvigil-bench-run" "$@"; }
databases=$(psql_p -At -c "SELECT count(*) FROM pg_database WHERE datallowconn AND NOT datistemplate")

mkdir -p bench/results
report=bench/results/databases${BENCH_CHECKS:+-${BENCH_CHECKS// /-}}.md
{
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), $databases databases, $runs runs; the role's CONNECTION LIMIT is 4"
  echo
  echo "| what | tool | wall s (median) | CPU s | peak RSS MB | exit codes |"
  echo "|---|---|---|---|---|---|"
} | tee "$report"
row() {
  local what=$1 tool=$2
  shift 2
  local walls=() cpus=() rss=() codes=()
  for _ in $(seq "$runs"); do
    read -r wall cpu kb code < <(measure "$@")
    walls+=("$wall") cpus+=("$cpu") rss+=("$kb") codes+=("$code")
  done
  awk -v what="$what" -v tool="$tool" -v wall="$(printf '%s\n' "${walls[@]}" | median)" \
    -v cpu="$(printf '%s\n' "${cpus[@]}" | median)" -v kb="$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)" \
    -v codes="$(printf '%s\n' "${codes[@]}" | sort -u | paste -sd, -)" 'BEGIN {
    printf "| %s | %s | %.2f | %.2f | %.1f | %s |\n", what, tool, wall / 1e6, cpu / 1e6, kb / 1024, codes
  }' | tee -a "$report"
}
# The floor: a session to every database and SELECT 1 in each, nothing else.
psql_p -At -c "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1" >"$sock/names"
for jobs in 1 3; do
  walls=() fails=()
  for _ in $(seq "$runs"); do
    read -r wall failed < <("$bin/pgvigil-bench-sessions" "$jobs" <"$sock/names")
    walls+=("$wall") fails+=("$failed")
  done
  awk -v jobs="$jobs" -v wall="$(printf '%s\n' "${walls[@]}" | median)" \
    -v fails="$(printf '%s\n' "${fails[@]}" | sort -u | paste -sd, -)" 'BEGIN {
    printf "| sessions alone (SELECT 1) | %s at a time | %.2f | | | %s failed |\n", jobs, wall / 1e6, fails
  }' | tee -a "$report"
done
for check in ${BENCH_CHECKS:-vacuum bloat indexes sequences relation_size version}; do
  extra=()
  [ "$check" = bloat ] && extra=(--min-size 0)
  for jobs in 1 3; do
    # -t 60: the time it takes, where the default -t 10 would cut it short.
    row "$check" "pgvigil --jobs $jobs" "$bin/check_pg_$check" -t 60 --all-databases --jobs "$jobs" "${extra[@]}"
  done
done
# wraparound reads pg_database once: no visit.
row wraparound pgvigil "$bin/check_pg_wraparound"
# check_pgactivity's services that visit every database (check_postgres
# looks into the databases named with --dbname only).
pga=/usr/lib/nagios/plugins/check_pgactivity
mkdir -m 777 "$sock/pga"
# A run of check_pgactivity takes over a minute here: PEER_RUNS of them.
pga_row() {
  [ "${PEER_RUNS:-1}" -eq 0 ] && return 0
  local what=$1 service=$2
  shift 2
  runs=${PEER_RUNS:-1} row "$what" "check_pgactivity $service" "$pga" -s "$service" -h "$sock" -p "$port" \
    -U monitor --status-file "$sock/pga/status" "$@"
}
pga_row vacuum last_vacuum -w 1d -c 7d
pga_row bloat table_bloat -w 50% -c 80%
pga_row bloat btree_bloat -w 50% -c 80%
pga_row indexes invalid_indexes
pga_row sequences sequences_exhausted -w 75% -c 90%
echo
echo "Target: 1,000 databases in ≤ 2 s wall with at most 4 sessions at once."
echo "Report: $report"
