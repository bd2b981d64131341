#!/usr/bin/env bash
# `npm ci` when node_modules does not match package-lock.json (better-sqlite3 compiles: ~2.5 min),
# and the native addon when it is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.shorthorn-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  npm ci --no-audit --no-fund  # also builds the native addon (binding.gyp: npm runs node-gyp rebuild)
  echo "$want" > "$stamp"
fi
# The shorthorn_file_io addon (native/): rebuilt when missing or older than its sources, for trees
# whose node_modules predate it or whose C source changed since npm ci.
addon=build/Release/shorthorn_file_io.node
if [[ ! -f "$addon" || binding.gyp -nt "$addon" || -n "$(find native -newer "$addon" -print -quit)" ]]; then
  npm run --silent build:native
fi
