#!/usr/bin/env bash
# Median wall time of each pgvigil plugin beside the peers' equivalent check
# (check_postgres, check_pgactivity, check_pgsql), on one throwaway cluster,
# measured with hyperfine in one run. Prints a Markdown table. Peers that
# need superuser for a check (check_postgres disk_space and archive_ready,
# check_pgactivity archiver) run as postgres; ours run as a pg_monitor role.
#   bench/compare.sh [RUNS]      (default 30 runs per command)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
scripts/setup.sh
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v check_postgres >/dev/null || need+=(check-postgres)
[ -x /usr/lib/nagios/plugins/check_pgactivity ] || need+=(check-pgactivity)
[ -x /usr/lib/nagios/plugins/check_pgsql ] || need+=(monitoring-plugins-standard)
command -v jq >/dev/null || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --workspace --bins -q
bin=$PWD/target/release
. scripts/cluster.sh
start_cluster

pa=/usr/lib/nagios/plugins/check_pgactivity
pg_st=$base/pgactivity.status
touch "$pg_st"
ours="-H $base -p $port -U monitor -d postgres"
cp_conn="--host=$base --port=$port --dbname=postgres"
pa_conn="-h $base -p $port -d postgres --status-file $pg_st"
export PGUSER=monitor
# check: ours | check_postgres | check_pgactivity (empty when it has none)
checks=(
  "connections|$bin/check_pg_connections $ours -w 80% -c 90%|check_postgres $cp_conn --action=backends -w 80% -c 90%|$pa $pa_conn -s backends -w 80% -c 90%"
  "replication_lag|$bin/check_pg_replication_lag $ours -w 16MB -c 1GB|check_postgres --host=$base,$base --port=$port,$standby_port --dbname=postgres --action=hot_standby_delay -w 16777216 -c 1073741824|$pa $pa_conn -s streaming_delta -w 16MB -c 1GB"
  "disk|$bin/check_pg_disk $ours -w 80% -c 90%|PGUSER=postgres check_postgres $cp_conn --action=disk_space -w 80% -c 90%|"
  "locks|$bin/check_pg_locks $ours -w 5 -c 20|check_postgres $cp_conn --action=locks -w 5 -c 20|$pa $pa_conn -s locks -w 5 -c 20"
  "archiver|$bin/check_pg_archiver $ours -w 10 -c 50|PGUSER=postgres check_postgres $cp_conn --action=archive_ready -w 10 -c 50|PGUSER=postgres $pa $pa_conn -s archiver -w 10 -c 50"
  "query|$bin/check_pg_query $ours --query 'SELECT 1' -w 10 -c 20|check_postgres $cp_conn --action=custom_query --query='SELECT 1 AS result' --valtype=integer -w 10 -c 20|$pa $pa_conn -s custom_query --query 'SELECT 1' --type integer -w 10 -c 20"
)
tmp=$base/bench
mkdir -p "$tmp"
median_ms() { jq -r ".results[$1].median * 1000 | . * 10 | round / 10" "$2"; }
echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), $runs runs each"
echo
echo "| check | pgvigil (ms) | check_postgres (ms) | check_pgactivity (ms) | check_pgsql (ms) |"
echo "|---|---|---|---|---|"
floor="/usr/lib/nagios/plugins/check_pgsql -H 127.0.0.1 -P $port -d postgres -l monitor"
for line in "${checks[@]}"; do
  IFS='|' read -r name mine cp pa_cmd <<<"$line"
  cmds=("$mine" "$cp")
  [ -n "$pa_cmd" ] && cmds+=("$pa_cmd")
  [ "$name" = query ] && cmds+=("$floor -q 'SELECT 1' -w 10 -c 20") || cmds+=("$floor")
  # Through a shell (hyperfine subtracts its cost) so that env prefixes and quotes work.
  hyperfine -i -w 3 -r "$runs" --export-json "$tmp/$name.json" "${cmds[@]}" >/dev/null 2>&1
  ours_ms=$(median_ms 0 "$tmp/$name.json")
  cp_ms=$(median_ms 1 "$tmp/$name.json")
  if [ -n "$pa_cmd" ]; then pa_ms=$(median_ms 2 "$tmp/$name.json"); sql_i=3; else pa_ms="n/a"; sql_i=2; fi
  sql_ms=$(median_ms $sql_i "$tmp/$name.json")
  echo "| $name | $ours_ms | $cp_ms | $pa_ms | $sql_ms |"
done
