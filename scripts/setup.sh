#!/usr/bin/env bash
# Installs everything the project, its tests and its benchmarks need on a Debian machine:
# system packages (Chromium for the browser tests, nats-server and redis-server for the
# benchmark peers, Node for the lab extension's build and the compatibility tests), the Python
# package with its test extras, the JupyterLab extension built from labextension/, FINOS's FDC3
# JSON schemas (scripts/build-fdc3-schemas.sh), and the Node packages of the tests in
# tests/compat (the compatibility tests' clients, and NATS's JWT library with which the
# federation credentials tests make their operator, accounts and users). Idempotent: a second
# run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

need_apt=()
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v nats-server >/dev/null || need_apt+=(nats-server)
command -v redis-server >/dev/null || need_apt+=(redis-server)
ensure_debian_packages "${need_apt[@]}"

echo "setup: installing jupyter_interop with its test extras"
python3 -m pip install -q -e ".[test,bench]"

echo "setup: building the JupyterLab extension"
bash scripts/build-labextension.sh

echo "setup: copying the FDC3 schemas from their npm packages"
bash scripts/build-fdc3-schemas.sh

echo "setup: installing the io.Connect / Glue42 Node clients for the compatibility tests"
npm ci --prefix tests/compat --no-audit --no-fund --loglevel=error
