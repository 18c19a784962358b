#!/usr/bin/env bash
# Installs and starts what Beacon's tests need on a fresh Debian machine, and nothing more.
# Idempotent: on a machine that already has everything it only checks and returns.
# Used by both the README's test command (scripts/test.sh) and CI (.ci/run).
set -euo pipefail

log() { printf '[setup] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq
    apt_updated=1
  fi
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust_tools() {
  command -v cargo >/dev/null || { log "cargo not found: install Rust (rustup) first"; exit 1; }
  if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install --locked cargo-nextest
  fi
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt || true
}

# The PostgreSQL tests need a server at TEST_DATABASE_URL. Use the one that is running, or
# start Debian's when nothing answers on 127.0.0.1:5432.
ensure_postgres() {
  apt_install postgresql-client
  if pg_isready -q -h 127.0.0.1 -p 5432; then
    log "PostgreSQL reachable on 127.0.0.1:5432"
  else
    apt_install postgresql
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$version" ]; then
      version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
      as_root pg_createcluster "$version" main >/dev/null
    fi
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    # Tests connect as postgres without a password, on loopback only.
    if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
      as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$hba"
    fi
    log "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || as_root pg_ctlcluster "$version" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    pg_isready -q -h 127.0.0.1 -p 5432 || { log "PostgreSQL did not start"; exit 1; }
  fi
  if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='test'" postgres | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -c 'create database test' postgres >/dev/null
  fi
}

# Browser tests drive Debian's Chromium through playwright-core (never a downloaded browser).
ensure_browser() {
  apt_install chromium
  command -v npm >/dev/null || apt_install nodejs npm
  if [ ! -d tests/browser/node_modules/playwright-core ]; then
    log "installing browser test packages"
    (cd tests/browser && npm ci --no-audit --no-fund --silent)
  fi
}

cd "$(dirname "$0")/.."
ensure_rust_tools
ensure_postgres
ensure_browser
log "ready"
