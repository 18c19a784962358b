#!/usr/bin/env bash
# Compares collector builds whose difference is smaller than this machine's drift between
# sittings (up to 15-25% for the same binary): runs bench/ingest.sh for each binary in
# turn, ROUNDS times (A B A B ...), so that each run has a neighbour of the other build,
# and prints one row per run, the binary's path first. Nothing is built: give it release
# binaries built before (e.g. `cargo build --release -p beacon --bin beacon && cp
# target/release/beacon /tmp/before`, then the same after the change).
#
#   bash bench/compare.sh /tmp/before /tmp/after
#   ROUNDS=3 TARGETS=postgres CONNECTIONS=512 BENCH_SECONDS=20 \
#     TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test bash bench/compare.sh /tmp/a /tmp/b
#
# TARGETS (default sqlite), CONNECTIONS (default 64), BENCH_SECONDS (default 20) are
# bench/ingest.sh's; its reader runs in every stored run, as there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -lt 2 ]; then
  echo "usage: bash bench/compare.sh BINARY BINARY [BINARY...]" >&2
  exit 2
fi
for binary in "$@"; do
  if [ ! -x "$binary" ]; then
    echo "bench/compare.sh: $binary is not an executable file" >&2
    exit 2
  fi
done
ROUNDS="${ROUNDS:-2}"
export TARGETS="${TARGETS:-sqlite}" CONNECTIONS="${CONNECTIONS:-64}"
export BENCH_SECONDS="${BENCH_SECONDS:-20}"

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
header="" rows=()
for round in $(seq 1 "$ROUNDS"); do
  for binary in "$@"; do
    echo "[compare] round $round of $ROUNDS: $binary" >&2
    BEACON_BIN="$binary" bash bench/ingest.sh >"$out"
    # ingest.sh's table: its header and the line under it once, then its result rows.
    [ -n "$header" ] || header="$(grep -m 2 -E '^\|' "$out")"
    while IFS= read -r row; do
      rows+=("| $binary | $round $row")
    done < <(grep -E '^\| [a-z]' "$out" | grep -v '^| target |')
  done
done

printf '\n%s\n' "bench/ingest.sh per run: TARGETS=\"$TARGETS\" CONNECTIONS=\"$CONNECTIONS\" BENCH_SECONDS=$BENCH_SECONDS, builds alternating"
sed -e '1s/^|/| binary | round |/' -e '2s/^|/|---|--:|/' <<<"$header"
printf '%s\n' "${rows[@]}"
