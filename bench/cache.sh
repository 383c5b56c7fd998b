# Sourced by bench/databases.sh and bench/relations.sh: the peers installed,
# pgvigil built, and a cluster built once into $PGVIGIL_BENCH_CACHE (default
# /var/tmp/pgvigil-bench) and reused, since building it takes minutes; delete
# it to rebuild. Checks never write, so runs leave it as found.
# Set `cached` (the cluster's name) before sourcing. Sets bin, pgbin, data,
# log, sock and port; `built` tells whether the cluster is complete,
# `init_cached` makes a new one and `mark_built` marks it so; `start
# [POSTGRES OPTION...]`, `stop`, `run_pg`, `psql_d DB` and `median`.
scripts/setup.sh
need=()
command -v check_postgres >/dev/null || need+=(check-postgres)
[ -x /usr/lib/nagios/plugins/check_pgactivity ] || need+=(check-pgactivity)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --workspace --bins -q
target/release/pgvigil --install-links target/release >/dev/null
bin=$PWD/target/release

pgbin=${PGVIGIL_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
major=$("$pgbin/postgres" --version | awk '{print $3}' | cut -d. -f1)
cache=${PGVIGIL_BENCH_CACHE:-/var/tmp/pgvigil-bench}
data=$cache/$cached-pg$major
log=$cache/$cached-pg$major.log
run_pg() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
  # PostgreSQL refuses to run as root.
  pg_user=$(id -u postgres >/dev/null 2>&1 && echo postgres || echo nobody)
  run_pg() { runuser -u "$pg_user" -- "$@"; }
fi
sock=$(mktemp -d /tmp/pgvigil-bench.XXXXXX)
chmod 777 "$sock"
port=$((20000 + RANDOM % 20000))
start() {
  local opts="-p $port -k $sock -c listen_addresses=''" o
  for o in "$@"; do opts="$opts -c $o"; done
  run_pg "$pgbin/pg_ctl" start -w -D "$data" -l "$log" -o "$opts" >/dev/null
}
stop() { run_pg "$pgbin/pg_ctl" stop -m fast -D "$data" >/dev/null 2>&1 || true; }
trap 'stop; rm -rf "$sock"' EXIT
psql_d() {
  local db=$1
  shift
  run_pg "$pgbin/psql" -X -q -h "$sock" -p "$port" -U postgres -d "$db" "$@"
}
built() { [ -f "$data/pgvigil-bench-complete" ]; }
init_cached() {
  echo "Building $data (once; it is kept for the next run)" >&2
  mkdir -p "$cache"
  rm -rf "$data"
  [ "$(id -u)" -eq 0 ] && chown "$pg_user" "$cache"
  run_pg "$pgbin/initdb" -N -A trust -U postgres -D "$data" >/dev/null
  echo "fsync = off" | run_pg tee -a "$data/postgresql.conf" >/dev/null
}
mark_built() { run_pg touch "$data/pgvigil-bench-complete"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
