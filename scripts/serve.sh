#!/usr/bin/env bash
# The main job: install the package and start JupyterLab on the example notebooks, with the
# interop hub running inside the server (embedded defaults: SQLite context store in the Jupyter
# data dir, io.Connect's ten channels). Extra arguments go to `jupyter lab`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e . "jupyterlab>=4"
# an editable install cannot place etc/jupyter/jupyter_server_config.d/jupyter_interop.json
# (a regular install does): enable the extension on the command line, whatever the install
args=(--notebook-dir notebooks --ip 127.0.0.1 "--ServerApp.jpserver_extensions={'jupyter_interop': True}")
[ "$(id -u)" = 0 ] && args+=(--allow-root)
exec jupyter lab "${args[@]}" "$@"
