#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, then every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
cargo nextest run --workspace --all-targets --profile ci "$@"
