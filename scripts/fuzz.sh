#!/usr/bin/env bash
# Fuzzes every parser with cargo-fuzz (libFuzzer, nightly): the kit's
# (crates/pgvigil-kit/fuzz, built without the PostgreSQL driver), then those
# beside the driver (crates/pgvigil/fuzz).
#   scripts/fuzz.sh [SECONDS]      each target for SECONDS (default 60)
#   FUZZ_RUNS=10000000 scripts/fuzz.sh   each target for that many executions
#   FUZZ_TARGETS=range,pgpass scripts/fuzz.sh 10   only those targets
# Inputs that crash land in <crate>/fuzz/artifacts/<target>/; the corpus
# grows in <crate>/fuzz/corpus/<target>/ (not committed) and starts from the
# inputs in <crate>/fuzz/inputs/<target>/ (taken from the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
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
limit=(-max_total_time="$seconds")
[ -n "${FUZZ_RUNS:-}" ] && limit=(-runs="$FUZZ_RUNS")
summary=""
for crate in crates/pgvigil-kit crates/pgvigil; do
  pushd "$crate" >/dev/null
  available=$(cargo $toolchain fuzz list | tr '\n' ' ')
  wanted=""
  for target in $available; do
    case ",${FUZZ_TARGETS:-$target}," in *",$target,"*) wanted+="$target " ;; esac
  done
  if [ -n "$wanted" ]; then
    cargo $toolchain fuzz build -O -a -s none
  fi
  for target in $wanted; do
    mkdir -p "fuzz/corpus/$target"
    log=$(mktemp)
    # Log lines come in blocks; every other parser sees short texts.
    max_len=256
    case $target in log_stderr | log_csv | log_json) max_len=4096 ;; esac
    if ! cargo $toolchain fuzz run -O -a -s none "$target" "fuzz/corpus/$target" "fuzz/inputs/$target" -- \
        "${limit[@]}" -max_len=$max_len -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
        >"$log" 2>&1; then
      tail -n 40 "$log"
      rm -f "$log"
      echo "fuzz: $target FAILED (the input is under $crate/fuzz/artifacts/$target/)" >&2
      exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    summary+=$(printf '%-14s %12s executions in %5s s, no crash\n' "$target" "$runs" "${secs:-?}")$'\n'
    rm -f "$log"
  done
  popd >/dev/null
done
printf '%s' "$summary"
