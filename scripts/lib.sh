# shellcheck shell=bash
# Shared by the scripts of this repository (sourced from the repository root, never run):
# messages, root rights, and Debian packages. Every failure to get a tool ends the script
# with a message that names it, never silently.

# log MESSAGE...: a line on stderr, tagged with $LOG_TAG (the script's name).
log() { printf '[%s] %s\n' "${LOG_TAG:-beacon}" "$*" >&2; }

# die MESSAGE...: logs the error and ends the script with status 1.
die() {
  log "error: $*"
  exit 1
}

# as_root COMMAND...: runs COMMAND as root (directly, or through sudo).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "root rights needed (no sudo) for: $*"
  fi
}

apt_updated=0
# apt_install PACKAGE...: installs the Debian packages that are not installed yet.
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] ||
      missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "cannot install ${missing[*]}: apt-get not found (Debian needed)"
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq || die "apt-get update failed: cannot install ${missing[*]}"
    apt_updated=1
  fi
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    die "apt-get could not install ${missing[*]}"
}
