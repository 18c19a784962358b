#!/usr/bin/env bash
# Ingest benchmark: posts realistic, varied reports (a new node uuid each) over keep-alive
# connections to a release build of `beacon collector`, and prints stored reports per
# second for each storage backend next to the baseline measured in the same run: the same
# server in --discard mode (parse and validate, then drop).
#
#   bash bench/ingest.sh                  # REQUESTS=50000 CONNECTIONS=32 by default
#   REQUESTS=100000 CONNECTIONS=64 bash bench/ingest.sh
#
# PostgreSQL is measured too when TEST_DATABASE_URL is set (a scratch schema is used and
# dropped). Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

REQUESTS="${REQUESTS:-50000}"
CONNECTIONS="${CONNECTIONS:-32}"

build_release beacon-collector ingest_load

pg_schema=""
bench_cleanup() {
  if [ -n "$pg_schema" ] && command -v psql >/dev/null; then
    psql -q "$TEST_DATABASE_URL" -c "DROP SCHEMA IF EXISTS $pg_schema CASCADE" >/dev/null 2>&1 || true
  fi
}

# measure NAME ARGS... : appends "NAME ok=... per_second=..." for one collector to the
# results. (Not run in a subshell, so that the exit trap knows the collector's pid.)
measure() {
  local name="$1" pid url
  shift
  # All load comes from one address: lift the per-IP connection cap for it.
  BEACON_LOG=warn "$BEACON" collector --listen 127.0.0.1:0 --console-listen 127.0.0.1:0 \
    --rate-limit-per-minute 0 --max-connections-per-ip 100000 "$@" \
    >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!
  started "$pid"
  url="$(wait_line "$work/$name.out" '^beacon collector listening on \([^ ]*\).*' "$pid")"
  log "measuring $name ($REQUESTS reports, $CONNECTIONS connections)..."
  run_to_end "$work/$name.load" "$LOAD" --url "$url/api/telemetry" \
    --requests "$REQUESTS" --connections "$CONNECTIONS"
  stop "$pid"
  results+=("$name $(cat "$work/$name.load")")
}

field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

results=()
measure baseline --db "sqlite://$work/discard.db" --discard
measure sqlite --db "sqlite://$work/bench.db"
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  pg_schema="bench_ingest_$$"
  separator='?'
  case "$TEST_DATABASE_URL" in *\?*) separator='&' ;; esac
  measure postgres --db "${TEST_DATABASE_URL}${separator}schema=$pg_schema"
fi

baseline="$(field per_second "${results[0]}")"
printf '\n%-10s %12s %10s %8s %8s %8s\n' target reports/s vs-baseline failed p50-ms p99-ms
for line in "${results[@]}"; do
  name="${line%% *}"
  rate="$(field per_second "$line")"
  ratio="$(awk -v r="$rate" -v b="$baseline" 'BEGIN { printf "%.0f%%", 100 * r / b }')"
  printf '%-10s %12s %10s %8s %8s %8s\n' "$name" "$rate" "$ratio" \
    "$(field failed "$line")" "$(field p50_ms "$line")" "$(field p99_ms "$line")"
done
