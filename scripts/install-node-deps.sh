#!/usr/bin/env bash
# `npm ci` when node_modules does not match package-lock.json (better-sqlite3 compiles: ~2.5 min).
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.shorthorn-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
npm ci --no-audit --no-fund
echo "$want" > "$stamp"
