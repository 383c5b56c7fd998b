#!/usr/bin/env bash
# The whole suite for MINUTES under load, run by a real Icinga2 with the
# packaged CheckCommands and example services, through routine operations
# (which must page nobody) and injected faults (each caught by its service,
# in time). Writes bench/results/soak.md. Not part of the test command.
#
#   scripts/soak.sh [MINUTES]     (default 30: at least that long, the
#                                 schedule itself takes about 40 min)
#   SOAK_ONLY=REGEX scripts/soak.sh 1   only the operations and faults named
#
# Real parts: a primary with a streaming standby and PgBouncer
# (scripts/cluster.sh), pgbench at a fixed rate on the primary and read-only
# on the standby for the whole run, Icinga2 as the server user in a sandbox.
# The example services are used as shipped but for the time scaling and the
# shorter duration thresholds bench/soak.py lists in the results.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
scripts/setup.sh
[ -x /usr/bin/time ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
cargo build --release --workspace --bins -q
repo=$PWD

. scripts/cluster.sh
# A server as in production (fsync on, which the throwaway clusters leave
# off), what the example's settings service expects, room for prepared
# transactions, and data checksums.
# The log as a packaged server keeps it (logging_collector), for
# postgres-log and the routine log rotation.
extra_conf="fsync = on
max_prepared_transactions = 10
log_lock_waits = on
log_checkpoints = on
log_min_duration_statement = 1s
max_connections = 100
logging_collector = on
log_directory = 'log'"
initdb_args="--data-checksums"
# A tablespace on a small filesystem of its own, for the filling fault; the
# standby keeps its copy elsewhere (both on one host would share the files).
tablespace=$base/tablespace
before_standby() {
  mkdir -p "$tablespace"
  mount -t tmpfs -o size=32m tmpfs "$tablespace"
  chown "$pg_user" "$tablespace"
  psql_p -q -c "CREATE TABLESPACE soak_ts LOCATION '$tablespace'" >/dev/null
}
standby_basebackup_args="-T $tablespace=$base/standby-tablespace"
icinga_pid=
stop_soak() {
  [ -n "$icinga_pid" ] && kill "$icinga_pid" 2>/dev/null || true
  pkill -f "pgbench.* $base" 2>/dev/null || true
  wait 2>/dev/null || true
  # The servers first, then the tablespace's filesystem, then the rest.
  for d in standby primary; do
    run_pg "$pgbin/pg_ctl" stop -m immediate -D "$base/$d" >/dev/null 2>&1 || true
  done
  umount "$tablespace" 2>/dev/null || true
  cleanup_cluster
}
trap stop_soak EXIT
start_cluster
start_pgbouncer
pgbench=$pgbin/pgbench
[ -x "$pgbench" ] || pgbench=$(command -v pgbench)

# Every plugin as a link to the one binary, behind a wrapper that records
# each run's wall time, CPU and peak RSS (the daemon sees only the result).
plugins=$base/plugins
real=$base/real
mkdir -p "$plugins" "$real"
"$repo/target/release/pgvigil" --install-links "$real" >/dev/null
for link in "$real"/check_pg_* "$real"/handle_pg_*; do
  name=$(basename "$link")
  cat >"$plugins/$name" <<WRAP
#!/bin/bash
# start, end (microseconds), user and system CPU (bash's times, to the
# millisecond; time's own are in hundredths), peak RSS, exit code
start=\$EPOCHREALTIME
/usr/bin/time -o $base/time.\$\$ -f "%M\t%x" $link "\$@"
rc=\$?
end=\$EPOCHREALTIME
# times, not in a subshell (that would count the subshell's children): the
# second line is the children's user and system time, as 0m0.003s.
times >$base/cpu.\$\$
read -r user sys < <(tail -1 $base/cpu.\$\$ | sed 's/[0-9]*m//g; s/s//g')
printf '%s\t%s\t%s\t%s\t%s\t%s\n' $name "\$start" "\$end" "\$user" "\$sys" "\$(tail -1 $base/time.\$\$)" >>$base/runs.log
rm -f $base/time.\$\$ $base/cpu.\$\$
exit \$rc
WRAP
  chmod 755 "$plugins/$name"
done
: >"$base/runs.log"
chmod 666 "$base/runs.log"

# A role that must give a password over TCP and has none: the failed
# logins of the log fault.
sed -i '1i host all soak_app 127.0.0.1/32 scram-sha-256' "$base/primary/pg_hba.conf"
psql_p -q -c "CREATE ROLE soak_app LOGIN" -c "SELECT pg_reload_conf()" >/dev/null
dumps=$base/dumps
mkdir -p "$dumps"
chmod 755 "$dumps"
psql_p -q -c "CREATE DATABASE app" >/dev/null
# What postgres-bloat's comment in the example asks of the monitoring role.
psql_p -q -c "GRANT pg_read_all_data TO monitor" >/dev/null
run_pg "$pgbench" -i -q -s 10 -h "$base" -p "$port" -U postgres app >/dev/null 2>&1
# Last night's dumps, for postgres-dumps.
for db in postgres app; do
  run_pg "$pgbin/pg_dump" -h "$base" -p "$port" -U postgres "$db" | gzip >"$dumps/$db-$(date +%Y%m%d)000000.sql.gz"
done

# Icinga2 in a sandbox, as the server user.
ic=$base/icinga2
for d in lib log cache spool run state perfdata; do mkdir -p "$ic/$d"; done
target/release/pgvigil --icinga2-commands >"$ic/pgvigil.conf"
python3 bench/soak.py config \
  --example packaging/icinga2/pgvigil-example.conf \
  --port "$port" --standby-port "$standby_port" --bouncer-port "$bouncer_port" \
  --plugins "$plugins" --sandbox "$ic" --socket-dir "$base" --dump-dir "$dumps" >"$ic/icinga2.conf"
chown -R "$pg_user" "$ic" "$plugins"
run_pg icinga2 daemon -C -c "$ic/icinga2.conf" \
  -DDataDir="$ic/lib" -DLogDir="$ic/log" -DCacheDir="$ic/cache" -DSpoolDir="$ic/spool" \
  -DInitRunDir="$ic/run" -DRunAsUser="$pg_user" -DRunAsGroup="$(id -gn "$pg_user")" >"$ic/validate.log" 2>&1 ||
  { cat "$ic/validate.log" >&2; exit 1; }
runuser -u "$pg_user" -- env HOME="$ic" PGVIGIL_STATE_DIR="$ic/state" \
  icinga2 daemon -c "$ic/icinga2.conf" \
  -DDataDir="$ic/lib" -DLogDir="$ic/log" -DCacheDir="$ic/cache" -DSpoolDir="$ic/spool" \
  -DInitRunDir="$ic/run" -DRunAsUser="$pg_user" -DRunAsGroup="$(id -gn "$pg_user")" \
  >"$ic/daemon.log" 2>&1 &
icinga_pid=$!

services=$(sed -n 's/.*Instantiated \([0-9]*\) Services\..*/\1/p' "$ic/validate.log")
python3 bench/soak.py run --services "$services" \
  --minutes "$minutes" --base "$base" --pgbin "$pgbin" --pg-user "$pg_user" \
  --port "$port" --standby-port "$standby_port" --bouncer-port "$bouncer_port" \
  --perfdata "$ic/perfdata" --runs "$base/runs.log" \
  --dump-dir "$dumps" --tablespace "$tablespace" \
  --icinga2-version "$(icinga2 --version | head -1)" \
  --out bench/results/soak.md
