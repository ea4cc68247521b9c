# Shared by the scripts.

# Usage: require_node SCRIPT WHY; exits with an install hint when node or npm is missing.
require_node() {
  local tool
  for tool in node npm; do
    if ! command -v "$tool" >/dev/null; then
      echo "$1: '$tool' not found. $2 needs Node.js and npm, e.g. 'apt-get install nodejs npm'." >&2
      exit 1
    fi
  done
}

# Usage: npm_ci_if_lock_changed SCRIPT DIR; runs `npm ci` in DIR only when its node_modules is
# missing or its package-lock.json changed since the last run (a hash kept in node_modules).
npm_ci_if_lock_changed() {
  local stamp="$2/node_modules/.jupyter_interop-lock.sha256" lock_hash
  lock_hash="$(sha256sum "$2/package-lock.json" | cut -d' ' -f1)"
  if [ ! -d "$2/node_modules" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
    echo "$1: npm ci"
    npm ci --prefix "$2" --no-audit --no-fund --loglevel=error
    echo "$lock_hash" > "$stamp"
  fi
}

# Install missing Debian packages (as root, or through sudo).
# Usage: ensure_debian_packages [PACKAGE...]; an empty list does nothing.
ensure_debian_packages() {
  [ $# -gt 0 ] || return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if ! command -v apt-get >/dev/null; then
    echo "missing: $* (install them with your system's package manager)" >&2
    return 1
  fi
  echo "installing system packages: $*"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@"
}
