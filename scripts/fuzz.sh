#!/usr/bin/env bash
# Fuzzes every parser of the core with cargo-fuzz (libFuzzer, nightly).
#   scripts/fuzz.sh [SECONDS]      each target for SECONDS (default 60)
#   FUZZ_RUNS=10000000 scripts/fuzz.sh   each target for that many executions
#   FUZZ_TARGETS=range,pgpass scripts/fuzz.sh 10   only those targets
# Inputs that crash land in crates/pgvigil/fuzz/artifacts/<target>/; the
# corpus grows in crates/pgvigil/fuzz/corpus/<target>/ (not committed) and
# starts from the seeds in crates/pgvigil/fuzz/seeds/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../crates/pgvigil"
seconds=${1:-60}

toolchain=+nightly
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  # No nightly here: the stable compiler takes the same -Z flags when told to.
  toolchain=
  export RUSTC_BOOTSTRAP=1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi
cargo $toolchain fuzz build -O -a -s none

targets=${FUZZ_TARGETS:-$(cargo $toolchain fuzz list | tr '\n' ,)}
limit=(-max_total_time="$seconds")
[ -n "${FUZZ_RUNS:-}" ] && limit=(-runs="$FUZZ_RUNS")
summary=""
for target in ${targets//,/ }; do
  mkdir -p "fuzz/corpus/$target"
  log=$(mktemp)
  # Log lines come in blocks; every other parser sees short texts.
  max_len=256
  case $target in log_stderr | log_csv | log_json) max_len=4096 ;; esac
  if ! cargo $toolchain fuzz run -O -a -s none "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
      "${limit[@]}" -max_len=$max_len -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
      >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz: $target FAILED (the input is under crates/pgvigil/fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
  summary+=$(printf '%-14s %12s executions in %5s s, no crash\n' "$target" "$runs" "${secs:-?}")$'\n'
  rm -f "$log"
done
printf '%s' "$summary"
