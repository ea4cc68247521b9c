# Shared by the scripts: install missing Debian packages (as root, or through sudo).
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
