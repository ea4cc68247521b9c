#!/usr/bin/env bash
# The main job: install the package and start JupyterLab on the example notebooks, with the
# interop hub running inside the server (embedded defaults: SQLite context store in the Jupyter
# data dir, io.Connect's ten channels). Extra arguments go to `jupyter lab`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e . "jupyterlab>=4"
args=(--notebook-dir notebooks --ip 127.0.0.1)
[ "$(id -u)" = 0 ] && args+=(--allow-root)
exec jupyter lab "${args[@]}" "$@"
