#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer) for SECONDS each, as many at once
# as there are cores, and fails if one crashes (its input is kept in fuzz/artifacts/TARGET/).
# Installs cargo-fuzz when missing. CI runs it with the default; BENCHMARKS.md records
# the long runs (`FUZZ_JOBS=1 nice -n 10 bash scripts/fuzz.sh 600`).
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]    default: 30 s, every target
#
# The corpus grows in fuzz/corpus/TARGET/ (not committed), seeded from fuzz/seeds/TARGET/.
# cargo-fuzz needs nightly compiler flags (sanitizer coverage): the stable toolchain takes
# them with RUSTC_BOOTSTRAP=1.
#
#   FUZZ_SANITIZER   address (default) | none: `none` builds and runs faster and still
#                    finds every panic and every property the targets assert
#   FUZZ_JOBS        targets run at once (default: the number of cores)
set -euo pipefail
cd "$(dirname "$0")/.."
LOG_TAG=fuzz
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

seconds="${1:-30}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(report gzip_body config_switch console_filters)
fi
[[ "$seconds" =~ ^[0-9]+$ ]] || die "SECONDS must be a whole number, not $seconds"
jobs="${FUZZ_JOBS:-$(nproc)}"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "FUZZ_JOBS must be a whole number above 0, not $jobs"

export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked || die "could not install cargo-fuzz"
fi

# The fuzz workspace has its own lock file. A dependency added to a fuzzed crate must not
# stop CI: cargo then adds only what is missing, and says so here (commit the result).
if ! cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null 2>&1; then
  log "fuzz/Cargo.lock lacks a dependency of the fuzzed crates; cargo adds it (commit fuzz/Cargo.lock)"
fi

started=$(date +%s)
log "building the fuzz targets (sanitizer: $sanitizer)"
cargo fuzz build --sanitizer "$sanitizer" || die "the fuzz targets do not build"
log "built in $(($(date +%s) - started)) s"

logs=fuzz/target/logs
mkdir -p "$logs"

# fuzz_one TARGET: runs TARGET for $seconds; a crash ends it naming the input and the log.
fuzz_one() {
  local target="$1" corpus="fuzz/corpus/$1" runs
  mkdir -p "$corpus"
  if ! cargo fuzz run --sanitizer "$sanitizer" "$target" "$corpus" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$logs/$target.log" 2>&1; then
    tail -n 40 "$logs/$target.log" >&2
    die "$target crashed; the input is in fuzz/artifacts/$target/, the log in $logs/$target.log"
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log" | tail -n 1)
  log "$target: ${runs:-?} runs in ${seconds} s, corpus $(find "$corpus" -type f | wc -l) inputs, no crash"
}

# Targets run side by side, one per core: each still has a core for its SECONDS.
log "${#targets[@]} targets, ${seconds} s each, $jobs at a time"
running=0 crashed=0
for target in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || crashed=1
    running=$((running - 1))
  fi
  fuzz_one "$target" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || crashed=1
  running=$((running - 1))
done
[ "$crashed" -eq 0 ] || die "a fuzz target crashed (see above)"
