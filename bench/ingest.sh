#!/usr/bin/env bash
# Sustained ingest benchmark. For each number of connections (64 and 512) and each target
# (--discard, SQLite, PostgreSQL when TEST_DATABASE_URL is set), starts a fresh release
# `beacon collector`, drives it with `wrk` (bench/ingest.lua: a new random node uuid per
# request) for BENCH_SECONDS, then stops the clock only when the collector says that every
# acknowledged report is indexed and counted (`POST /settle` on its private listener).
# During each stored run a reader loads the console's overview page and its JSON 50 times
# and checks that this week's node count includes every report acknowledged before it.
#
#   bash bench/ingest.sh                      # 60 s per run, 64 and 512 connections
#   BENCH_SHORT=1 bash bench/ingest.sh        # 10 s per run, for iterating
#   BENCH_SECONDS=90 CONNECTIONS="64" TARGETS="discard sqlite" bash bench/ingest.sh
#   BEACON_BIN=target/release/beacon bash bench/ingest.sh   # measure a binary built before
#
# PostgreSQL runs in a schema of its own (bench_ingest_<pid>_<n>), dropped afterwards.
# Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

apt_install wrk curl
if [ -n "${BENCH_SHORT:-}" ]; then default_seconds=10; else default_seconds=60; fi
BENCH_SECONDS="${BENCH_SECONDS:-$default_seconds}"
CONNECTIONS="${CONNECTIONS:-64 512}"
TARGETS="${TARGETS:-discard sqlite${TEST_DATABASE_URL:+ postgres}}"
WARMUP_SECONDS=2
READS=50
USER_NAME=bench
export BEACON_CONSOLE_PASSWORD="bench-password-$$-$RANDOM"

# BEACON_BIN: an already built binary to measure (skips the build).
BEACON="${BEACON_BIN:-}"
if [ -z "$BEACON" ]; then
  log "building release binary..."
  cargo build --release --quiet -p beacon --bin beacon
  BEACON="$(cargo metadata --format-version 1 --no-deps | jq -er .target_directory)/release/beacon"
fi

pg_schemas=()
bench_cleanup() {
  local schema
  for schema in "${pg_schemas[@]}"; do
    psql -q "$TEST_DATABASE_URL" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  done
}

now() { date +%s.%N; }
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# db_url TARGET RUN: a fresh database for one run (the PostgreSQL schema is created by the
# collector and dropped at exit).
db_url() {
  case "$1" in
    sqlite) echo "sqlite://$work/$2.db" ;;
    discard) echo "sqlite://$work/$2-discard.db" ;;
    postgres)
      local schema="bench_ingest_$$_${2//[^a-z0-9]/_}" separator='?'
      pg_schemas+=("$schema")
      case "$TEST_DATABASE_URL" in *\?*) separator='&' ;; esac
      echo "${TEST_DATABASE_URL}${separator}schema=$schema"
      ;;
  esac
}

# cpu_of PID: user+system CPU seconds of the process, and of its SQLite writer thread.
cpu_of() {
  local tick total=0 writer=0 task name ticks
  tick="$(getconf CLK_TCK)"
  for task in /proc/"$1"/task/*; do
    name="$(cat "$task/comm" 2>/dev/null)" || continue
    # Fields after the command name: 14 and 15 of stat are utime and stime.
    ticks="$(sed 's/^.*) //' "$task/stat" 2>/dev/null | awk '{ print $12 + $13 }')" || continue
    total=$((total + ticks))
    case "$name" in beacon-sqlite-w* | beacon-pg*) writer=$((writer + ticks)) ;; esac
  done
  awk -v t="$total" -v w="$writer" -v k="$tick" 'BEGIN { printf "%.2f %.2f", t / k, w / k }'
}

# login CONSOLE_URL JAR: a console session for the reader.
login() {
  local page csrf
  page="$(curl -fsS -c "$2" "$1/console/login")"
  csrf="$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' <<<"$page" | head -n 1)"
  curl -fsS -o /dev/null -b "$2" -c "$2" --data-urlencode "username=$USER_NAME" \
    --data-urlencode "password=$BEACON_CONSOLE_PASSWORD" --data-urlencode "csrf=$csrf" \
    --data-urlencode "next=/console/overview" "$1/console/login"
}

# accepted CONSOLE_URL: reports acknowledged so far (the collector's own counter, bumped
# after the commit and before the answer).
accepted() {
  curl -fsS "$1/metrics" |
    awk '/^beacon_collector_reports_accepted_total/ { n += $2 } END { printf "%d", n }'
}

# reader CONSOLE_URL JAR OUT PAUSE: READS rounds of (acknowledged so far; overview page;
# overview JSON; activity JSON whose week in progress must count at least those reports),
# one line per round: "page_ms json_ms behind" (behind: acknowledged reports missing).
reader() {
  local url="$1" jar="$2" out="$3" pause="$4" before page json nodes
  for _ in $(seq 1 "$READS"); do
    sleep "$pause"
    before="$(accepted "$url")"
    page="$(curl -fsS -o /dev/null -b "$jar" -w '%{time_total}' "$url/console/overview")"
    json="$(curl -fsS -o /dev/null -b "$jar" -w '%{time_total}' \
      "$url/console/api/v1/charts/overview")"
    nodes="$(curl -fsS -b "$jar" "$url/console/api/v1/charts/activity" |
      jq '[.. | objects | select(has("week") and has("nodes"))] | max_by(.week) | .nodes // 0')"
    echo "$page $json $((before - nodes))" >>"$out"
  done
}

# p99 of column N of FILE, in ms (values in seconds).
p99_ms() {
  sort -g -k "$2,$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END {
    i = int(NR * 0.99); if (i < 1) i = 1; if (i > NR) i = NR; printf "%.1f", v[i] * 1000 }'
}

# measure TARGET CONNECTIONS: one run; appends a result line.
measure() {
  local target="$1" conns="$2" run="$1-$2" url console pid args=() line t0 t1 t2
  local db cpu0 cpu1 reads="" pages_p99="-" json_p99="-" behind="-"
  db="$(db_url "$target" "$run")"
  [ "$target" = discard ] && args+=(--discard)
  if [ "$target" != discard ]; then
    "$BEACON" collector user add "$USER_NAME" --db "$db" >/dev/null 2>"$work/$run.user.err"
  fi
  BEACON_LOG=warn "$BEACON" collector --listen 127.0.0.1:0 --console-listen 127.0.0.1:0 \
    --db "$db" --rate-limit-per-minute 0 --max-connections 100000 \
    --max-connections-per-ip 100000 "${args[@]}" >"$work/$run.out" 2>"$work/$run.err" &
  pid=$!
  started "$pid"
  url="$(wait_line "$work/$run.out" '^beacon collector listening on \([^ ]*\).*' "$pid")"
  console="$(wait_line "$work/$run.out" '^beacon collector console on \([^ ]*\)' "$pid")"
  console="${console%/console/}"
  log "$run: ${WARMUP_SECONDS} s warm-up, then ${BENCH_SECONDS} s..."
  wrk -t1 -c"$conns" -d"${WARMUP_SECONDS}s" --timeout 30s -s bench/ingest.lua \
    "$url/api/telemetry" >/dev/null
  curl -fsS -o /dev/null -X POST "$console/settle"
  if [ "$target" != discard ]; then
    login "$console" "$work/$run.jar"
    reads="$work/$run.reads"
    : >"$reads"
    reader "$console" "$work/$run.jar" "$reads" \
      "$(awk -v s="$BENCH_SECONDS" -v n="$READS" 'BEGIN { printf "%.3f", s * 0.9 / n }')" &
    started $!
    local reader_pid=$!
  fi
  local writer0 writer1
  read -r cpu0 writer0 <<<"$(cpu_of "$pid")"
  t0="$(now)"
  wrk -t1 -c"$conns" -d"${BENCH_SECONDS}s" --timeout 30s -s bench/ingest.lua \
    "$url/api/telemetry" >"$work/$run.wrk"
  t1="$(now)"
  curl -fsS -o /dev/null -X POST "$console/settle"
  t2="$(now)"
  read -r cpu1 writer1 <<<"$(cpu_of "$pid")"
  if [ -n "$reads" ]; then
    wait "$reader_pid" || true
    ended "$reader_pid"
    pages_p99="$(p99_ms "$reads" 1)"
    json_p99="$(p99_ms "$reads" 2)"
    behind="$(awk 'BEGIN { m = 0 } $3 > m { m = $3 } END { print m }' "$reads")"
  fi
  local rss
  rss="$(awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")"
  stop "$pid"
  line="$(tail -n 1 "$work/$run.wrk")"
  local requests non2xx errors seconds acked
  requests="$(field requests "$line")"
  non2xx="$(field non2xx "$line")"
  errors="$(field errors "$line")"
  seconds="$(field seconds "$line")"
  acked=$((requests - non2xx))
  results+=("$(awk -v n="$target" -v c="$conns" -v a="$acked" -v s="$seconds" \
    -v t0="$t0" -v t1="$t1" -v t2="$t2" -v f="$non2xx" -v e="$errors" \
    -v p50="$(field p50_ms "$line")" -v p99="$(field p99_ms "$line")" \
    -v max="$(field max_ms "$line")" -v rss="$rss" -v cpu="$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { print b - a }')" \
    -v wcpu="$(awk -v a="$writer0" -v b="$writer1" 'BEGIN { print b - a }')" \
    -v pp="$pages_p99" -v jp="$json_p99" -v behind="$behind" 'BEGIN {
      settle = t2 - t1
      printf "%s %d %.0f %.0f %.2f %d %d %s %s %s %s %.1f %.1f %s %s %s\n", n, c, a / s,
        a / (s + settle), settle, f, e, p50, p99, max, rss, cpu, wcpu, pp, jp, behind }')")
}

results=()
for conns in $CONNECTIONS; do
  for target in $TARGETS; do
    measure "$target" "$conns"
  done
done

# One table, ratios against the --discard run at the same number of connections.
printf '\n%s\n' "wrk -t1, ${BENCH_SECONDS} s per run after ${WARMUP_SECONDS} s warm-up; sustained = acknowledged / (load + settle)"
printf '| %s |\n' "target | conns | acknowledged/s | sustained/s | sustained / discard | settle s | non-2xx | errors | p50 ms | p99 ms | max ms | peak RSS MiB | CPU s (writer) | overview page p99 ms | overview JSON p99 ms | reads behind"
printf '|%s\n' "---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
for line in "${results[@]}"; do
  read -r name conns acked sustained settle non2xx errors p50 p99 max rss cpu wcpu pp jp behind <<<"$line"
  base="$(printf '%s\n' "${results[@]}" | awk -v c="$conns" '$1 == "discard" && $2 == c { print $3 }')"
  ratio="$(awk -v s="$sustained" -v b="${base:-0}" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * s / b; else print "-" }')"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s (%s) | %s | %s | %s |\n' \
    "$name" "$conns" "$acked" "$sustained" "$ratio" "$settle" "$non2xx" "$errors" "$p50" \
    "$p99" "$max" "$rss" "$cpu" "$wcpu" "$pp" "$jp" "$behind"
done
