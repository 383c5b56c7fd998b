#!/usr/bin/env bash
# Runs the integration test binaries (tests/*.rs), several at a time: most of
# their time is spent waiting on servers and on the forecast tests' schedules,
# not on the CPU, so side by side they end much sooner than one after another.
# Each binary still starts its own clusters and runs its tests in parallel.
#
#   scripts/integration.sh                     # every test
#   scripts/integration.sh --skip NAME ...     # arguments go to each binary
#
# PGVIGIL_TEST_JOBS sets how many binaries run at once (default 3). The
# output is each binary's, whole and in order, as cargo test prints it, then
# the slowest binaries; the exit status is non-zero when any test failed.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${PGVIGIL_TEST_JOBS:-3}
mapfile -t binaries < <(cargo test -p pgvigil-tests --tests --no-run 2>&1 |
  sed -n 's/^ *Executable tests\/[^ ]* (\(.*\))$/\1/p')
if [ ${#binaries[@]} -eq 0 ]; then
  echo "integration: no test binary built" >&2
  exit 1
fi
logs=$(mktemp -d "${TMPDIR:-/tmp}/pgvigil-integration.XXXXXX")
trap 'rm -rf "$logs"' EXIT

# The binaries that wait longest go first, so that none is left to run alone
# at the end; the others follow in name order.
slow='patroni director icinga2_zones icinga2 sequences db_size wraparound disk wal log faults backup'
ordered=()
for name in $slow; do
  for bin in "${binaries[@]}"; do
    [ "$(basename "$bin" | sed 's/-[0-9a-f]*$//')" = "$name" ] && ordered+=("$bin")
  done
done
for bin in "${binaries[@]}"; do
  case " ${ordered[*]} " in *" $bin "*) ;; *) ordered+=("$bin") ;; esac
done

run_one() {
  local bin=$1
  shift
  local name
  name=$(basename "$bin" | sed 's/-[0-9a-f]*$//')
  local start=$SECONDS
  local rc=0
  "$bin" "$@" >"$LOGS/$name.log" 2>&1 || rc=$?
  echo "$rc $((SECONDS - start))" >"$LOGS/$name.done"
}
export -f run_one
export LOGS=$logs

printf '%s\n' "${ordered[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {} "$@"

failed=0
for bin in "${binaries[@]}"; do
  name=$(basename "$bin" | sed 's/-[0-9a-f]*$//')
  echo "     Running tests/$name.rs ($bin)"
  cat "$logs/$name.log"
  read -r rc seconds <"$logs/$name.done"
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
done
echo "integration: slowest binaries (seconds):" \
  "$(for f in "$logs"/*.done; do echo "$(cut -d' ' -f2 "$f") $(basename "$f" .done)"; done |
    sort -rn | head -8 | awk '{printf "%s %s, ", $2, $1}' | sed 's/, $//')"
[ "$failed" -eq 0 ] || echo "integration: $failed test binaries failed" >&2
exit $((failed > 0))
