#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, then every test of the workspace.
# BEACON_SETUP_DONE=1 says scripts/setup.sh has just run (CI runs it before its lints).
set -euo pipefail
cd "$(dirname "$0")/.."
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
if [ "${BEACON_SETUP_DONE:-}" != 1 ]; then bash scripts/setup.sh; fi
# Two tests per core: most of them wait on processes, sockets and browsers rather than
# compute (at one per core the suite kept two cores 40% busy; BENCHMARKS.md, "CI duration").
threads="${TEST_THREADS:-$((2 * $(nproc)))}"
cargo nextest run --workspace --all-targets --profile ci --test-threads "$threads" "$@"
