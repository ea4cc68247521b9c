#!/usr/bin/env bash
# Installs everything the project, its tests and its benchmarks need on a Debian machine:
# system packages (Chromium for the browser tests, nats-server and redis-server for the
# benchmark peers), the Python package with its test extras, and the Node clients used by the
# compatibility tests. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v node >/dev/null || need_apt+=(nodejs npm)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v nats-server >/dev/null || need_apt+=(nats-server)
command -v redis-server >/dev/null || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "setup: installing system packages: ${need_apt[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

echo "setup: installing jupyter_interop with its test extras"
python3 -m pip install -q -e ".[test,bench]"

echo "setup: installing the io.Connect / Glue42 Node clients for the compatibility tests"
npm ci --prefix tests/compat --no-audit --no-fund --loglevel=error
