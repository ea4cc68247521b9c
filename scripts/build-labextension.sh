#!/usr/bin/env bash
# Builds the JupyterLab extension (labextension/) into jupyter_interop/labextension/, the
# prebuilt layout the wheel ships (docs/LAB.md, "Build and packaging"). Node is needed here
# only: a user's pip install of the wheel needs none.
#   npm ci     only when node_modules is missing or package-lock.json changed since
#   tsc + jupyter labextension build
#   skipped when the output is newer than every source file (so setup and serve stay fast)
# PYTHON (default python3) is the Python whose jupyterlab runs the build.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
PYTHON="${PYTHON:-python3}"
src=labextension
out=jupyter_interop/labextension

require_node build-labextension "Building the JupyterLab extension (Node.js >= 18)"
if ! "$PYTHON" -c "import jupyterlab" 2>/dev/null; then
  echo "build-labextension: $PYTHON has no jupyterlab; install it (pip install jupyterlab) or" \
       "set PYTHON to the Python that has it." >&2
  exit 1
fi

sources=("$src/src" "$src/style" "$src/package.json" "$src/package-lock.json"
         "$src/tsconfig.json" "$src/install.json")
if [ -f "$out/package.json" ] && [ -f "$out/install.json" ] &&
   [ -z "$(find "${sources[@]}" -newer "$out/package.json" -print -quit)" ]; then
  echo "build-labextension: $out is up to date"
  exit 0
fi

npm_ci_if_lock_changed build-labextension "$src"

echo "build-labextension: compiling TypeScript"
(cd "$src" && npx --no-install tsc)
echo "build-labextension: bundling into $out"
rm -rf "$out"
(cd "$src" && "$PYTHON" -m jupyterlab.labextensions build . 2>&1 | grep -v "Deprecated" || true)
if [ ! -f "$out/package.json" ]; then
  echo "build-labextension: the bundle was not produced (see the output above)" >&2
  exit 1
fi
cp "$src/install.json" "$out/install.json"
echo "build-labextension: built $out"
