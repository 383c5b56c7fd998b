#!/usr/bin/env bash
# One database of 100,000 relations: TABLES tables (default 25,000), each
# with a primary key and a text column, so a heap, a TOAST table, its index
# and the key's index; a few of them hold rows and have been vacuumed. Each
# check that reads every relation runs with -v against it, beside the peers'
# equivalents: wall time, CPU, peak RSS, and the server time of its
# statements (log_min_duration_statement = 0, summed over the run). The
# targets: under 1 s of server time and 64 MB of client RSS.
#
# Creating the tables takes about a minute and 1.7 GB: the cluster is kept
# (bench/cache.sh).
#   bench/relations.sh [TABLES] [RUNS]      (default 25000 tables, 5 runs;
#                                            PEER_RUNS=1 for the peers)
set -euo pipefail
cd "$(dirname "$0")/.."
tables=${1:-25000}
runs=${2:-5}
cached=relations-$tables
. bench/cache.sh

if ! built; then
  init_cached
  start
  psql_d postgres -c "CREATE ROLE monitor LOGIN IN ROLE pg_monitor" -c "GRANT pg_read_all_data TO monitor" -c "CREATE DATABASE many"
  # \gexec must follow the query in the same psql input.
  printf '%s\n' "SELECT format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', g) FROM generate_series(1, $tables) g" '\gexec' |
    psql_d many >/dev/null
  # A few tables with rows, sizes and statistics, so that there is something to find.
  psql_d many -c "INSERT INTO t1 SELECT g, repeat('x', 200) FROM generate_series(1, 200000) g" \
    -c "INSERT INTO t2 SELECT g, md5(g::text) FROM generate_series(1, 100000) g" \
    -c "INSERT INTO t3 SELECT g, repeat(md5(g::text), 100) FROM generate_series(1, 2000) g" \
    -c "VACUUM ANALYZE t1, t2, t3" -c "DELETE FROM t2 WHERE id % 3 = 0"
  mark_built
  stop
fi
start log_min_duration_statement=0

relations=$(psql_d many -At -c "SELECT count(*) FROM pg_class WHERE relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)")
export PGHOST=$sock PGPORT=$port PGUSER=monitor PGDATABASE=many
# Server milliseconds of the statements logged since byte offset $1.
server_ms() { tail -c +"$(($1 + 1))" "$log" | grep -o 'duration: [0-9.]* ms' | awk '{s += $2} END {printf "%.1f", s}'; }

mkdir -p bench/results
report=bench/results/relations.md
{
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), one database of $tables tables ($relations relations outside the catalogs), $runs runs, fresh session each"
  echo
  echo "| check | tool | wall ms (median) | server ms (median) | CPU ms | peak RSS MB | exit codes |"
  echo "|---|---|---|---|---|---|---|"
} | tee "$report"
row() {
  local what=$1 tool=$2
  shift 2
  local walls=() servers=() cpus=() rss=() codes=() at
  for _ in $(seq "$runs"); do
    at=$(stat -c %s "$log")
    read -r wall cpu kb code < <("$bin/pgvigil-bench-run" "$@")
    sleep 0.3 # the log's last lines
    walls+=("$wall") cpus+=("$cpu") rss+=("$kb") codes+=("$code") servers+=("$(server_ms "$at")")
  done
  awk -v what="$what" -v tool="$tool" -v wall="$(printf '%s\n' "${walls[@]}" | median)" \
    -v server="$(printf '%s\n' "${servers[@]}" | median)" \
    -v cpu="$(printf '%s\n' "${cpus[@]}" | median)" -v kb="$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)" \
    -v codes="$(printf '%s\n' "${codes[@]}" | sort -u | paste -sd, -)" 'BEGIN {
    printf "| %s | %s | %.1f | %.1f | %.1f | %.1f | %s |\n", what, tool, wall / 1e3, server, cpu / 1e3, kb / 1024, codes
  }' | tee -a "$report"
}
# -t 60: the time it takes, where the default -t 10 would cut it short.
row vacuum pgvigil "$bin/check_pg_vacuum" -t 60 -v
row bloat pgvigil "$bin/check_pg_bloat" -t 60 -v
row indexes pgvigil "$bin/check_pg_indexes" -t 60 -v
row relation_size pgvigil "$bin/check_pg_relation_size" -t 60 -v
row relation_size "pgvigil --estimate" "$bin/check_pg_relation_size" -t 60 -v --estimate
row db_size pgvigil "$bin/check_pg_db_size" -t 60 -v -w 100GB -c 200GB
row sequences pgvigil "$bin/check_pg_sequences" -t 60 -v
row wraparound pgvigil "$bin/check_pg_wraparound" -t 60 -v

# The peers, against the same database (check_pgactivity visits every
# database but postgres).
pga=/usr/lib/nagios/plugins/check_pgactivity
mkdir -m 777 "$sock/pga"
peer() { runs=${PEER_RUNS:-1} row "$@"; }
cp_=(check_postgres --host="$sock" --port="$port" --dbuser=monitor --dbname=many)
pa_=("$pga" -h "$sock" -p "$port" -U monitor --status-file "$sock/pga/status")
peer vacuum "check_postgres last_vacuum" "${cp_[@]}" --action=last_vacuum -w 1d -c 7d
peer vacuum "check_pgactivity last_vacuum" "${pa_[@]}" -s last_vacuum -w 1d -c 7d
peer bloat "check_postgres bloat" "${cp_[@]}" --action=bloat -w 1G -c 10G
peer bloat "check_pgactivity table_bloat" "${pa_[@]}" -s table_bloat -w 50% -c 80%
peer bloat "check_pgactivity btree_bloat" "${pa_[@]}" -s btree_bloat -w 50% -c 80%
peer indexes "check_pgactivity invalid_indexes" "${pa_[@]}" -s invalid_indexes
peer relation_size "check_postgres relation_size" "${cp_[@]}" --action=relation_size -w 10G -c 20G
peer db_size "check_postgres database_size" "${cp_[@]}" --action=database_size -w 100G -c 200G
echo
echo "Targets: under 1,000 ms of server time and 64 MB of peak RSS for every pgvigil row."
echo "Report: $report"
