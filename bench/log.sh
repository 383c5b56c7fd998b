#!/usr/bin/env bash
# check_pg_log beside pgBadger and `grep -c ERROR` (the speed of reading) on
# the same log, in stderr, csvlog and jsonlog. The log is what a real server
# wrote under pgbench and a stream of errors (log_min_duration_statement = 0,
# log_connections, ...), repeated to SIZE. pgBadger (-j 1) reads a 100 MB
# slice, as a whole gigabyte takes it minutes; throughputs compare.
#   bench/log.sh [SIZE_MB] [RUNS]      (default 1024 MB, 5 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-1024}
runs=${2:-5}
scripts/setup.sh
command -v pgbadger >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbadger >/dev/null
}
cargo build --release --workspace --bins -q
target/release/pgvigil --install-links target/release >/dev/null
bin=$PWD/target/release
. scripts/cluster.sh
prefix='%m [%p] %q%u@%d '
extra_conf="logging_collector = on
log_destination = 'stderr,csvlog,jsonlog'
log_directory = 'log'
log_filename = 'sample.log'
log_line_prefix = '$prefix'
log_min_duration_statement = 0
log_connections = on
log_disconnections = on
log_temp_files = 0
log_checkpoints = on"
start_cluster
pgbench=$pgbin/pgbench
run_pg "$pgbench" -i -q -h "$base" -p "$port" -U postgres postgres >/dev/null 2>&1
run_pg "$pgbench" -h "$base" -p "$port" -U postgres -c 2 -t 3000 -n postgres >/dev/null 2>&1
for _ in $(seq 2000); do echo "SELECT 1/0;"; done | psql_p >/dev/null 2>&1 || true
run_pg "$pgbench" -h "$base" -p "$port" -U postgres -c 4 -C -t 200 -n postgres >/dev/null 2>&1
sleep 2

work=$base/bench
mkdir -p "$work"
declare -A ext=([stderr]=log [csvlog]=csv [jsonlog]=json)
for f in stderr csvlog jsonlog; do
  e=${ext[$f]}
  sample=$base/primary/log/sample.$e
  out=$work/big.$e
  : >"$out"
  while [ "$(stat -c %s "$out")" -lt $((size_mb * 1048576)) ]; do cat "$sample" >>"$out"; done
done
export PGHOST=$base PGPORT=$port PGUSER=monitor PGDATABASE=postgres
measure() { "$bin/pgvigil-bench-run" "$@"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

mkdir -p bench/results
report=bench/results/log.md
{
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), $runs runs, log of $size_mb MB (sample of $(du -k "$base/primary/log/sample.log" | cut -f1) kB written by the server, repeated)"
  echo
  echo "| format | size MB | check_pg_log s (median) | MB/s | peak RSS MB | grep -c ERROR s | pgBadger MB/s (100 MB slice) | vs pgBadger | vs grep | incremental 1 MB ms |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
} | tee "$report"
for f in stderr csvlog jsonlog; do
  e=${ext[$f]}
  big=$work/big.$e
  mb=$(( $(stat -c %s "$big") / 1048576 ))
  walls=() rss=()
  for _ in $(seq "$runs"); do
    rm -rf "$work/state"
    read -r wall _ kb _ < <(PGVIGIL_STATE_DIR=$work/state measure "$bin/check_pg_log" --log "$big" --log-format "$f" --prefix "$prefix" --from-start)
    walls+=("$wall") rss+=("$kb")
  done
  ours=$(printf '%s\n' "${walls[@]}" | median)
  peak=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
  greps=()
  for _ in $(seq "$runs"); do
    # grep stops at the first match when its output is /dev/null: give it a file.
    read -r wall _ _ _ < <(measure sh -c 'exec grep -c ERROR "$1" >"$2"' sh "$big" "$work/grep.out")
    greps+=("$wall")
  done
  grep_us=$(printf '%s\n' "${greps[@]}" | median)
  head -c $((100 * 1048576)) "$big" >"$work/slice.$e"
  read -r badger_us _ _ badger_exit < <(measure pgbadger -j 1 -f "$f" --prefix "$prefix" -o "$work/report-$f.html" "$work/slice.$e")
  [ "$badger_exit" = 0 ] || echo "pgBadger exited $badger_exit on $f" >&2
  # Incremental: a run that saves its marks at the end, 1 MB more, a run.
  rm -rf "$work/state"
  PGVIGIL_STATE_DIR=$work/state "$bin/check_pg_log" --log "$big" --log-format "$f" --prefix "$prefix" >/dev/null || true
  head -c 1048576 "$base/primary/log/sample.$e" >>"$big"
  read -r inc_us _ _ _ < <(PGVIGIL_STATE_DIR=$work/state measure "$bin/check_pg_log" --log "$big" --log-format "$f" --prefix "$prefix")
  awk -v f="$f" -v mb="$mb" -v ours="$ours" -v peak="$peak" -v grep_us="$grep_us" -v badger="$badger_us" -v inc="$inc_us" 'BEGIN {
    ours_s = ours / 1e6; tput = mb / ours_s; badger_tput = 100 / (badger / 1e6)
    printf "| %s | %d | %.2f | %.0f | %.1f | %.2f | %.1f | %.0f× | %.1f× | %.1f |\n",
      f, mb, ours_s, tput, peak / 1024, grep_us / 1e6, badger_tput, tput / badger_tput, ours / grep_us, inc / 1000
  }' | tee -a "$report"
done
echo
echo "Targets: ≥ 50× pgBadger's throughput, within 3× of grep -c, peak RSS < 32 MB, incremental 1 MB < 20 ms."
echo "Report: $report"
