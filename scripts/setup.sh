#!/usr/bin/env bash
# Installs and starts what Beacon's tests need on a fresh Debian machine, and nothing more.
# Idempotent: on a machine that already has everything it only checks and returns. Fails,
# naming the tool, when something cannot be installed or started.
# Used by both the README's test command (scripts/test.sh) and CI (.ci/run).
#
#   TEST_DATABASE_URL       the PostgreSQL server of the tests, default
#                           postgres://postgres@127.0.0.1:5432/test: checked, started
#                           when it is local and down, its database created if missing
#   BEACON_SKIP_POSTGRES=1  no PostgreSQL at all (the tests then skip their PostgreSQL half)
set -euo pipefail
cd "$(dirname "$0")/.."
LOG_TAG=setup
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

DEFAULT_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test

ensure_rust_tools() {
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
  if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install --locked cargo-nextest || die "could not install cargo-nextest"
  fi
  if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then
    command -v rustup >/dev/null || die "clippy or rustfmt missing, and no rustup to add them"
    log "adding the clippy and rustfmt components"
    rustup component add clippy rustfmt || die "rustup could not add clippy and rustfmt"
  fi
}

# protoc compiles the protocol definitions of node-to-node messages; make builds jemalloc,
# the binary's allocator; wrk drives the HTTP benchmarks.
ensure_build_tools() {
  apt_install protobuf-compiler make wrk
  command -v protoc >/dev/null || die "protoc not found after installing protobuf-compiler"
  command -v wrk >/dev/null || die "wrk not found after installing it"
}

# parse_database_url URL: sets db_user, db_password, db_host, db_port and db_name.
parse_database_url() {
  local re='^postgres(ql)?://(([^:@/]+)(:([^@/]*))?@)?(\[[^]/]+\]|[^:/?]+)?(:([0-9]+))?(/([^?]*))?(\?.*)?$'
  [[ "$1" =~ $re ]] || die "TEST_DATABASE_URL is not a postgres:// URL"
  db_user="${BASH_REMATCH[3]:-postgres}"
  local encoded="${BASH_REMATCH[5]}"
  db_password=$(printf '%b' "${encoded//%/\\x}")
  db_host="${BASH_REMATCH[6]:-127.0.0.1}"
  db_host="${db_host#[}"
  db_host="${db_host%]}"
  db_port="${BASH_REMATCH[8]:-5432}"
  db_name="${BASH_REMATCH[10]:-$db_user}"
}

is_loopback() {
  case "$1" in
    localhost | 127.* | ::1) return 0 ;;
    *) return 1 ;;
  esac
}

# start_local_postgres PORT: starts Debian's cluster on PORT, creating one if none has it.
start_local_postgres() {
  local port="$1" version="" cluster=""
  apt_install postgresql
  read -r version cluster < <(pg_lsclusters -h | awk -v port="$port" '$3 == port { print $1, $2; exit }') || true
  if [ -z "$version" ]; then
    version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
    [ -n "$version" ] || die "no PostgreSQL server installed under /usr/lib/postgresql"
    cluster=main
    [ -d "/etc/postgresql/$version/main" ] && cluster="beacon_$port"
    log "creating PostgreSQL cluster $version/$cluster on port $port"
    as_root pg_createcluster -p "$port" "$version" "$cluster" >/dev/null ||
      die "could not create a PostgreSQL cluster on port $port"
  fi
  local hba="/etc/postgresql/$version/$cluster/pg_hba.conf"
  # Tests connect without a password, on loopback only.
  if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$hba"
  fi
  log "starting PostgreSQL $version/$cluster"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start ||
    as_root pg_ctlcluster "$version" "$cluster" start ||
    die "could not start PostgreSQL $version/$cluster"
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$port" && return 0
    sleep 1
  done
  die "PostgreSQL $version/$cluster did not answer on port $port"
}

# The PostgreSQL tests need the server at TEST_DATABASE_URL. Use it if it answers, start
# it if it is local, and create its database.
ensure_postgres() {
  if [ "${BEACON_SKIP_POSTGRES:-}" = 1 ]; then
    log "BEACON_SKIP_POSTGRES=1: no PostgreSQL"
    return 0
  fi
  parse_database_url "${TEST_DATABASE_URL:-$DEFAULT_DATABASE_URL}"
  local where="$db_host:$db_port"
  apt_install postgresql-client
  if [ -n "$db_password" ]; then export PGPASSWORD="$db_password"; fi
  if pg_isready -q -h "$db_host" -p "$db_port"; then
    log "PostgreSQL reachable on $where"
  elif is_loopback "$db_host"; then
    start_local_postgres "$db_port"
  else
    die "PostgreSQL on $where (TEST_DATABASE_URL) does not answer, and only a local one can be started here; start it, or set BEACON_SKIP_POSTGRES=1 to test without PostgreSQL"
  fi
  local psql=(psql -h "$db_host" -p "$db_port" -U "$db_user" -d postgres -v ON_ERROR_STOP=1 -tAq)
  local found
  found=$("${psql[@]}" -c "select 1 from pg_database where datname = '${db_name//\'/\'\'}'") ||
    die "cannot sign in to PostgreSQL on $where as $db_user"
  if [ "$found" != 1 ]; then
    log "creating database $db_name"
    "${psql[@]}" -c "create database \"${db_name//\"/\"\"}\"" >/dev/null ||
      die "could not create database $db_name on $where"
  fi
}

# Browser tests drive Debian's Chromium through playwright-core (never a downloaded browser).
ensure_browser() {
  apt_install chromium
  command -v npm >/dev/null || apt_install nodejs npm
  if [ ! -d tests/browser/node_modules/playwright-core ]; then
    log "installing browser test packages"
    (cd tests/browser && npm ci --no-audit --no-fund --silent) ||
      die "npm could not install the browser test packages (tests/browser)"
  fi
}

ensure_rust_tools
ensure_build_tools
ensure_postgres
ensure_browser
log "ready"
