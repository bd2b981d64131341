#!/usr/bin/env bash
# `npm start`: install npm dependencies if needed, build, and start a whole cluster on this host.
# Arguments go to `shorthorn up` (for example: npm start -- --nodes 3 --data /var/lib/shorthorn).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-node-deps.sh
npx tsc -p tsconfig.json
npm run --silent build:ui
exec node dist/src/bin/shorthorn.js up "$@"
