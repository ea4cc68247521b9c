#!/usr/bin/env bash
# Copies FINOS's published FDC3 2.2 JSON schemas from their npm packages into
# jupyter_interop/fdc3/schemas/, the untracked package data the wheel ships (docs/FDC3.md):
#   context/*.schema.json  from @finos/fdc3-context (the standard context types)
#   api/api.schema.json    from @finos/fdc3-schema  (fdc3.action refers to its AppIdentifier)
#   SOURCE.json            which packages and versions they came from
# The versions are pinned by fdc3-schemas/package-lock.json; `npm ci` runs only when
# node_modules is missing or the lock changed; nothing is done when the output is newer than
# both package files. Node is needed here only: a user's pip install of the wheel needs none.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
src=fdc3-schemas
out=jupyter_interop/fdc3/schemas

if [ -f "$out/SOURCE.json" ] &&
   [ -z "$(find "$src/package.json" "$src/package-lock.json" -newer "$out/SOURCE.json" -print -quit)" ]; then
  echo "build-fdc3-schemas: $out is up to date"
  exit 0
fi

require_node build-fdc3-schemas "Fetching the FDC3 schemas"
npm_ci_if_lock_changed build-fdc3-schemas "$src"

context_pkg="$src/node_modules/@finos/fdc3-context"
schema_pkg="$src/node_modules/@finos/fdc3-schema"
rm -rf "$out"
mkdir -p "$out/context" "$out/api"
cp "$context_pkg"/dist/schemas/context/*.schema.json "$out/context/"
cp "$schema_pkg/dist/schemas/api/api.schema.json" "$out/api/"
node -e '
const [ctx, sch] = process.argv.slice(1).map((d) => require(require("path").resolve(d, "package.json")));
const source = (p, files) => ({ name: p.name, version: p.version, license: p.license, files });
console.log(JSON.stringify({ packages: [
  source(ctx, "dist/schemas/context/*.schema.json -> context/"),
  source(sch, "dist/schemas/api/api.schema.json -> api/"),
] }, null, 2));
' "$context_pkg" "$schema_pkg" > "$out/SOURCE.json"
echo "build-fdc3-schemas: copied $(ls "$out/context" | wc -l) context schemas into $out"
