#!/usr/bin/env bash
# The main job: JupyterLab on the example notebooks with the interop hub inside the server and
# the lab extension (channel chip, Interop sidebar) in the page, embedded defaults (SQLite
# context store in the Jupyter data dir, io.Connect's ten channels).
#
# Everything goes into a project virtual environment, created on first use and reused after
# (JUPYTER_INTEROP_VENV, default .venv): the system Python is never touched. The package is
# installed the way users get it, a regular install with the `data` extra, so the server
# extension and the prebuilt lab extension are enabled by the files the install places, and
# every example runs with Run All. Node is needed only to build the lab extension from these
# sources and to fetch the FDC3 schemas (done once, again when they change). Extra arguments go to `jupyter lab`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

venv="${JUPYTER_INTEROP_VENV:-.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "serve: creating the virtual environment $venv"
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    # Debian's Python ships venv without ensurepip: that is the python3-venv package
    rm -rf "$venv"
    ensure_debian_packages python3-venv
    "$python" -m venv "$venv"
  fi
fi

echo "serve: installing JupyterLab into $venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "jupyterlab>=4"
# Node: the lab extension's build (only when its sources changed) and the Node example
command -v npm >/dev/null || ensure_debian_packages nodejs npm
PYTHON="$venv/bin/python" bash scripts/build-labextension.sh
bash scripts/build-fdc3-schemas.sh
if [ ! -d notebooks/node/node_modules ]; then
  echo "serve: installing the Node example's client (@interopio/core)"
  npm install --prefix notebooks/node --no-package-lock --no-audit --no-fund --loglevel=error
fi
echo "serve: installing jupyter_interop[data] into $venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check ".[data]"

args=(--notebook-dir notebooks --ip 127.0.0.1)
[ "$(id -u)" = 0 ] && args+=(--allow-root)
exec "$venv/bin/jupyter" lab "${args[@]}" "$@"
