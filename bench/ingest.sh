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

echo "building release binaries..." >&2
cargo build --release --quiet -p beacon --bin beacon
cargo build --release --quiet -p beacon-collector --example ingest_load
target_dir="$(target_dir)"
BEACON="$target_dir/release/beacon"
LOAD="$target_dir/release/examples/ingest_load"

work="$(mktemp -d)"
collector_pid=""
pg_schema=""
cleanup() {
  if [ -n "$collector_pid" ]; then kill "$collector_pid" 2>/dev/null || true; fi
  if [ -n "$pg_schema" ] && command -v psql >/dev/null; then
    psql -q "$TEST_DATABASE_URL" -c "DROP SCHEMA IF EXISTS $pg_schema CASCADE" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# start_collector NAME ARGS... : starts a collector, sets $collector_pid and $collector_url.
start_collector() {
  local name="$1"; shift
  BEACON_LOG=warn "$BEACON" collector --listen 127.0.0.1:0 --rate-limit-per-minute 0 "$@" \
    >"$work/$name.out" 2>"$work/$name.err" &
  collector_pid=$!
  for _ in $(seq 1 600); do
    collector_url="$(sed -n 's/^beacon collector listening on \([^ ]*\).*/\1/p' "$work/$name.out")"
    [ -n "$collector_url" ] && return 0
    kill -0 "$collector_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "collector $name did not start:" >&2
  cat "$work/$name.err" >&2
  exit 1
}

stop_collector() {
  kill -TERM "$collector_pid"
  wait "$collector_pid" || true
  collector_pid=""
}

# measure NAME ARGS... : appends "NAME ok=... per_second=..." for one target to the results.
# (Not run in a subshell, so that the cleanup trap knows the collector's pid.)
measure() {
  local name="$1"; shift
  start_collector "$name" "$@"
  echo "measuring $name ($REQUESTS reports, $CONNECTIONS connections)..." >&2
  local result
  result="$("$LOAD" --url "$collector_url/api/telemetry" --requests "$REQUESTS" --connections "$CONNECTIONS")"
  stop_collector
  results+=("$name $result")
}

field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

results=()
measure baseline --db "sqlite://$work/discard.db" --discard
measure sqlite --db "sqlite://$work/bench.db"
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  pg_schema="bench_ingest_$$"
  separator='?'; case "$TEST_DATABASE_URL" in *\?*) separator='&';; esac
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
