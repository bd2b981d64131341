#!/usr/bin/env bash
# The one test command: installs what the tests need, type-checks, lints, runs every test.
# Usage: npm test [-- test-file-filter...]
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/install-system-deps.sh
bash scripts/install-node-deps.sh
echo "== type-check and build"
npx tsc -p tsconfig.json
echo "== web UI (type-check and bundle to ui/dist)"
npm run --silent build:ui
echo "== lint"
npx eslint --max-warnings 0 .
echo "== tests"
node scripts/run-tests.mjs "$@"
echo "== done in $(( $(date +%s) - start )) s"
