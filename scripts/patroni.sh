# Sourced after scripts/cluster.sh by demo.sh and bench/compare.sh: a
# throwaway Patroni cluster (one etcd on loopback, NODES Patroni nodes, each
# with its own data directory under $base/patroni) beside the plain primary
# and standby. Uses $pgbin, which needs pg_basebackup (Debian's server does).
# Sets patroni_api (node1's REST API); stopped by cleanup_cluster.
patroni_dir=$base/patroni
patroni_api=http://127.0.0.1:$((port + 10))
start_patroni() {
  local nodes=${1:-2} i etcd_port=$((port + 20))
  mkdir -p "$patroni_dir"
  [ "$(id -u)" -eq 0 ] && chown "$pg_user" "$patroni_dir"
  run_pg etcd --name e1 --data-dir "$patroni_dir/etcd" --enable-v2 \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
    --initial-cluster "e1=http://127.0.0.1:$((etcd_port + 1))" >"$patroni_dir/etcd.log" 2>&1 &
  echo $! >"$patroni_dir/etcd.pid"
  for i in $(seq "$nodes"); do
    cat >"$patroni_dir/node$i.yml" <<YAML
scope: demo
name: node$i
restapi: {listen: 127.0.0.1:$((port + 9 + i)), connect_address: 127.0.0.1:$((port + 9 + i))}
etcd: {host: 127.0.0.1:$etcd_port}
bootstrap:
  dcs: {ttl: 20, loop_wait: 2, retry_timeout: 5, postgresql: {use_pg_rewind: false}}
  initdb: [{encoding: UTF8}]
postgresql:
  listen: 127.0.0.1:$((port + 29 + i))
  connect_address: 127.0.0.1:$((port + 29 + i))
  data_dir: $patroni_dir/data$i
  bin_dir: $pgbin
  pgpass: $patroni_dir/pgpass$i
  authentication: {replication: {username: postgres}, superuser: {username: postgres}}
  parameters: {unix_socket_directories: '$patroni_dir', fsync: 'off'}
  pg_hba: [local all all trust, host all all 127.0.0.1/32 trust, host replication all 127.0.0.1/32 trust]
YAML
  done
  [ "$(id -u)" -eq 0 ] && chown -R "$pg_user" "$patroni_dir"
  # node1 bootstraps and leads; the others then join as replicas.
  for i in $(seq "$nodes"); do
    HOME=$patroni_dir run_pg patroni "$patroni_dir/node$i.yml" >"$patroni_dir/node$i.log" 2>&1 &
    echo $! >"$patroni_dir/node$i.pid"
    if [ "$i" = 1 ]; then
      for _ in $(seq 120); do
        curl -sf "$patroni_api/leader" >/dev/null 2>&1 && break
        sleep 0.5
      done
    fi
  done
  # Every replica streaming (lag known), or give up after a minute.
  for _ in $(seq 120); do
    [ "$(curl -s "$patroni_api/cluster" | grep -o '"lag": [0-9]' | wc -l)" -ge $((nodes - 1)) ] && return 0
    sleep 0.5
  done
  echo "patroni: the replicas did not join (see $patroni_dir/*.log)" >&2
  return 1
}
cleanup_patroni() {
  local f
  [ -d "$patroni_dir" ] || return 0
  # Patroni stops its own server on TERM; then the DCS.
  for f in "$patroni_dir"/node*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  for _ in $(seq 100); do pgrep -f "patroni $patroni_dir" >/dev/null || break; sleep 0.2; done
  pkill -9 -f "patroni $patroni_dir" 2>/dev/null || true
  for f in "$patroni_dir"/data*; do
    [ -f "$f/postmaster.pid" ] && run_pg "$pgbin/pg_ctl" stop -m immediate -D "$f" >/dev/null 2>&1
  done
  [ -f "$patroni_dir/etcd.pid" ] && kill "$(cat "$patroni_dir/etcd.pid")" 2>/dev/null
  pkill -f "etcd --name e1 --data-dir $patroni_dir" 2>/dev/null || true
  return 0
}
