#!/usr/bin/env bash
# Sustained ingest benchmark. For each number of connections (64 and 512) and each target
# (--discard, SQLite, and when TEST_DATABASE_URL is set PostgreSQL and postgres2: two
# collectors on one schema, each driven by half the connections), starts fresh release
# `beacon collector`s, drives them with `wrk` (bench/ingest.lua: a new random node uuid per
# request) for BENCH_SECONDS, then stops the clock only when the collector says that every
# acknowledged report is indexed and counted (`POST /settle` on its private listener).
# During each stored run a reader loads the console's overview page and its JSON READS
# times (50; 0 for no reader, to measure ingest alone) and checks that this week's node
# count includes every report acknowledged before it.
# SQLite runs also report what the collector wrote to storage per report (its WAL, and the
# pages its checkpoints copy back into the database file).
#
#   bash bench/ingest.sh                      # 60 s per run, 64 and 512 connections
#   BENCH_SHORT=1 bash bench/ingest.sh        # 10 s per run, for iterating
#   BENCH_SECONDS=90 CONNECTIONS="64" TARGETS="discard sqlite" bash bench/ingest.sh
#   BEACON_BIN=target/release/beacon bash bench/ingest.sh   # measure a binary built before
#   READS=0 TARGETS=sqlite CONNECTIONS=64 bash bench/ingest.sh  # no console reads meanwhile
#
# PostgreSQL runs in a schema of its own (bench_ingest_<pid>_<n>), dropped afterwards.
# Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

READS="${READS:-50}"
if ! [[ "$READS" =~ ^[0-9]+$ ]]; then
  echo "bench/ingest.sh: READS must be a number of read rounds (0 for none), not \`$READS'" >&2
  exit 2
fi

apt_install wrk curl
if [ -n "${BENCH_SHORT:-}" ]; then default_seconds=10; else default_seconds=60; fi
BENCH_SECONDS="${BENCH_SECONDS:-$default_seconds}"
CONNECTIONS="${CONNECTIONS:-64 512}"
TARGETS="${TARGETS:-discard sqlite${TEST_DATABASE_URL:+ postgres postgres2}}"
WARMUP_SECONDS=2
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

# set_db TARGET RUN: sets $db to a fresh database for one run (the PostgreSQL schema is
# created by the collector and dropped at exit; not in a subshell, so that the exit knows it).
set_db() {
  case "$1" in
    sqlite) db="sqlite://$work/$2.db" ;;
    discard) db="sqlite://$work/$2-discard.db" ;;
    postgres | postgres2)
      local schema="bench_ingest_$$_${2//[^a-z0-9]/_}" separator='?'
      pg_schemas+=("$schema")
      case "$TEST_DATABASE_URL" in *\?*) separator='&' ;; esac
      db="${TEST_DATABASE_URL}${separator}schema=$schema"
      ;;
  esac
}

# cpu_of PID...: user+system CPU seconds of the processes, and of their SQLite writer threads.
cpu_of() {
  local tick total=0 writer=0 pid task name ticks
  tick="$(getconf CLK_TCK)"
  for pid in "$@"; do
    for task in /proc/"$pid"/task/*; do
      name="$(cat "$task/comm" 2>/dev/null)" || continue
      # Fields after the command name: 14 and 15 of stat are utime and stime.
      ticks="$(sed 's/^.*) //' "$task/stat" 2>/dev/null | awk '{ print $12 + $13 }')" || continue
      total=$((total + ticks))
      case "$name" in beacon-sqlite-w* | beacon-pg*) writer=$((writer + ticks)) ;; esac
    done
  done
  awk -v t="$total" -v w="$writer" -v k="$tick" 'BEGIN { printf "%.2f %.2f", t / k, w / k }'
}

# written_of PID...: bytes the processes caused to be written to storage (a page dirtied
# again before the kernel wrote it back counts once).
written_of() {
  local pid total=0 bytes
  for pid in "$@"; do
    bytes="$(awk '/^write_bytes/ { print $2 }' "/proc/$pid/io")"
    total=$((total + bytes))
  done
  echo "$total"
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

# start_collector RUN DB [ARGS...]: a release collector on free loopback ports, its output
# in $work/RUN.out; sets $pid, $url and $console.
start_collector() {
  local run="$1" db="$2"
  shift 2
  BEACON_LOG=warn "$BEACON" collector --listen 127.0.0.1:0 --console-listen 127.0.0.1:0 \
    --db "$db" --rate-limit-per-minute 0 --max-connections 100000 \
    --max-connections-per-ip 100000 "$@" >"$work/$run.out" 2>"$work/$run.err" &
  pid=$!
  started "$pid"
  url="$(wait_line "$work/$run.out" '^beacon collector listening on \([^ ]*\).*' "$pid")"
  console="$(wait_line "$work/$run.out" '^beacon collector console on \([^ ]*\)' "$pid")"
  console="${console%/console/}"
}

# load SECONDS CONNECTIONS OUT URL...: wrk against each URL at once, the connections
# shared between them; one wrk result line per URL in OUT.
load() {
  local seconds="$1" conns="$2" out="$3" pids=() each target
  shift 3
  each=$((conns / $#))
  : >"$out"
  for target in "$@"; do
    wrk -t1 -c"$each" -d"${seconds}s" --timeout 30s -s bench/ingest.lua \
      "$target/api/telemetry" | tail -n 1 >>"$out" &
    pids+=($!)
    started $!
  done
  for target in "${pids[@]}"; do
    wait "$target"
    ended "$target"
  done
}

# wrk_total OUT: the wrk lines of OUT as one: counts added, the longest run, and the worst
# of each latency figure (the instances' latencies are not merged, only bounded).
wrk_total() {
  awk '{ for (i = 1; i <= NF; i++) {
      split($i, kv, "="); k = kv[1]; x = kv[2] + 0
      if (k ~ /^(requests|non2xx|errors)$/) v[k] += x; else if (x > v[k]) v[k] = x
    } }
    END {
      printf "requests=%d non2xx=%d errors=%d seconds=%s p50_ms=%s p99_ms=%s max_ms=%s\n",
        v["requests"], v["non2xx"], v["errors"], v["seconds"], v["p50_ms"], v["p99_ms"],
        v["max_ms"]
    }' "$1"
}

# measure TARGET CONNECTIONS: one run; appends a result line. Target postgres2 is two
# collectors on one schema, each driven by half the connections.
measure() {
  local target="$1" conns="$2" run="$1-$2" pid url console pids=() urls=() consoles=()
  local db args=() line t0 t1 t2 instances=1 i cpu0 cpu1 writer0 writer1 written0 written1
  local reads="" pages_p99="-" json_p99="-" behind="-" with_reads=false
  # The console reader needs a user, made before the collector opens the store.
  [ "$target" != discard ] && [ "$READS" -gt 0 ] && with_reads=true
  set_db "$target" "$run"
  [ "$target" = discard ] && args+=(--discard)
  [ "$target" = postgres2 ] && instances=2
  if "$with_reads"; then
    "$BEACON" collector user add "$USER_NAME" --db "$db" >/dev/null 2>"$work/$run.user.err"
  fi
  for i in $(seq 1 "$instances"); do
    start_collector "$run.$i" "$db" "${args[@]}"
    pids+=("$pid")
    urls+=("$url")
    consoles+=("$console")
  done
  log "$run: ${WARMUP_SECONDS} s warm-up, then ${BENCH_SECONDS} s..."
  load "$WARMUP_SECONDS" "$conns" "$work/$run.warmup" "${urls[@]}"
  curl -fsS -o /dev/null -X POST "${consoles[0]}/settle"
  if "$with_reads"; then
    login "${consoles[0]}" "$work/$run.jar"
    reads="$work/$run.reads"
    : >"$reads"
    reader "${consoles[0]}" "$work/$run.jar" "$reads" \
      "$(awk -v s="$BENCH_SECONDS" -v n="$READS" 'BEGIN { printf "%.3f", s * 0.9 / n }')" &
    started $!
    local reader_pid=$!
  fi
  read -r cpu0 writer0 <<<"$(cpu_of "${pids[@]}")"
  written0="$(written_of "${pids[@]}")"
  t0="$(now)"
  load "$BENCH_SECONDS" "$conns" "$work/$run.wrk" "${urls[@]}"
  t1="$(now)"
  # A settle on one collector counts what every collector on its database acknowledged.
  for console in "${consoles[@]}"; do
    curl -fsS -o /dev/null -X POST "$console/settle"
  done
  t2="$(now)"
  read -r cpu1 writer1 <<<"$(cpu_of "${pids[@]}")"
  written1="$(written_of "${pids[@]}")"
  if [ -n "$reads" ]; then
    wait "$reader_pid" || true
    ended "$reader_pid"
    pages_p99="$(p99_ms "$reads" 1)"
    json_p99="$(p99_ms "$reads" 2)"
    behind="$(awk 'BEGIN { m = 0 } $3 > m { m = $3 } END { print m }' "$reads")"
  fi
  local rss=0
  for pid in "${pids[@]}"; do
    rss="$(awk -v m="$rss" '/^VmHWM/ { r = $2 / 1024; printf "%.0f", (r > m ? r : m) }' "/proc/$pid/status")"
    stop "$pid"
  done
  line="$(wrk_total "$work/$run.wrk")"
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
    -v pp="$pages_p99" -v jp="$json_p99" -v behind="$behind" \
    -v written="$((written1 - written0))" 'BEGIN {
      settle = t2 - t1
      # PostgreSQL writes in its own processes, and discard writes nothing.
      if (n == "sqlite" && a > 0) {
        w = sprintf("%.1f (%.0f MB/s)", written / a / 1024, written / (s + settle) / 1e6)
      } else w = "-"
      printf "%s %d %.0f %.0f %.2f %d %d %s %s %s %s %.1f %.1f %s %s %s %s\n", n, c, a / s,
        a / (s + settle), settle, f, e, p50, p99, max, rss, cpu, wcpu, pp, jp, behind, w }')")
}

results=()
for conns in $CONNECTIONS; do
  for target in $TARGETS; do
    measure "$target" "$conns"
  done
done

# One table, ratios against the --discard run at the same number of connections.
printf '\n%s\n' "wrk -t1, ${BENCH_SECONDS} s per run after ${WARMUP_SECONDS} s warm-up; sustained = acknowledged / (load + settle)"
printf '| %s |\n' "target | conns | acknowledged/s | sustained/s | sustained / discard | settle s | non-2xx | errors | p50 ms | p99 ms | max ms | peak RSS MiB | CPU s (writer) | overview page p99 ms | overview JSON p99 ms | reads behind | written KiB/report (MB/s)"
printf '|%s\n' "---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
for line in "${results[@]}"; do
  read -r name conns acked sustained settle non2xx errors p50 p99 max rss cpu wcpu pp jp behind written <<<"$line"
  base="$(printf '%s\n' "${results[@]}" | awk -v c="$conns" '$1 == "discard" && $2 == c { print $3 }')"
  ratio="$(awk -v s="$sustained" -v b="${base:-0}" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * s / b; else print "-" }')"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s (%s) | %s | %s | %s | %s |\n' \
    "$name" "$conns" "$acked" "$sustained" "$ratio" "$settle" "$non2xx" "$errors" "$p50" \
    "$p99" "$max" "$rss" "$cpu" "$wcpu" "$pp" "$jp" "$behind" "$written"
done
