# shellcheck shell=bash
# Shared by the bench scripts (sourced from the repository root, after `set -euo pipefail`):
# the tools a bench needs, release builds, and the processes a bench starts, every one of
# which is killed when the bench exits, whether it ends, fails or is interrupted.
LOG_TAG=bench
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

apt_install jq

# Scratch files of this run, removed on exit.
work="$(mktemp -d)"
bench_pids=()

bench_shell=$BASHPID
# The bench's own clean-up runs first if it defines `bench_cleanup` (before $work goes).
bench_exit() {
  # A child signalled between fork and exec still has these traps: only the bench cleans.
  [ "$BASHPID" = "$bench_shell" ] || return 0
  local pid
  for pid in "${bench_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if declare -F bench_cleanup >/dev/null; then bench_cleanup || true; fi
  rm -rf "$work"
}
trap bench_exit EXIT
# A signal ends the bench through the EXIT trap above.
trap 'exit 130' INT
trap 'exit 143' TERM

# started PID: kill PID when the bench exits (call right after `COMMAND &`).
started() { bench_pids+=("$1"); }

# ended PID: PID has exited; nothing to kill any more.
ended() {
  local pid kept=()
  for pid in "${bench_pids[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
  bench_pids=("${kept[@]}")
}

# stop PID: SIGTERM, then waits for PID to exit.
stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  ended "$1"
}

# run_to_end OUT COMMAND...: runs COMMAND with its standard output in OUT. It runs in the
# background and is waited for, so that it is killed with the others if the bench is.
run_to_end() {
  local out="$1" pid status=0
  shift
  "$@" >"$out" &
  pid=$!
  started "$pid"
  wait "$pid" || status=$?
  ended "$pid"
  return "$status"
}

# wait_line FILE PATTERN [PID]: prints the first capture (\1) of the sed PATTERN once a
# line of FILE matches it; fails after 60 s, or as soon as PID has exited, showing FILE and
# the process's errors (FILE with .err for .out).
wait_line() {
  local found
  for _ in $(seq 1 600); do
    found="$(sed -n "s/$2/\1/p" "$1" | head -n 1)"
    if [ -n "$found" ]; then
      echo "$found"
      return 0
    fi
    if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then break; fi
    sleep 0.1
  done
  log "no line matching '$2' in $1:"
  cat "$1" "${1%.out}.err" >&2 2>/dev/null || true
  exit 1
}

# build_release PACKAGE EXAMPLE: release builds of `beacon` and of the load generator
# EXAMPLE of PACKAGE; sets $BEACON and $LOAD to their paths.
build_release() {
  log "building release binaries..."
  cargo build --release --quiet -p beacon --bin beacon
  cargo build --release --quiet -p "$1" --example "$2"
  local target_dir
  target_dir="$(cargo metadata --format-version 1 --no-deps | jq -er .target_directory)"
  # shellcheck disable=SC2034 # read by the bench that sourced this file
  BEACON="$target_dir/release/beacon"
  # shellcheck disable=SC2034
  LOAD="$target_dir/release/examples/$2"
}
