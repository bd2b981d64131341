// Runs the compiled tests (dist/**/*.test.js) with node's test runner.
// Arguments filter test files by substring: `node scripts/run-tests.mjs replica/ nbd`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function find(dir, out) {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) find(full, out);
    else if (name.endsWith('.test.js')) out.push(full);
  }
  return out;
}

// Two files run at a time, started in this order. The long ones (fault scenarios, then end-to-end
// tests, then integration tests, a minute or more each) go first and the many short ones fill in
// behind them: started last, a long file would run on alone and stretch the whole run.
const groups = ['dist/test/scenarios/', 'dist/test/e2e/', 'dist/test/integration/'];
const rank = (file) => {
  const i = groups.findIndex((prefix) => file.startsWith(prefix));
  return i < 0 ? groups.length : i;
};
const filters = process.argv.slice(2);
const files = find('dist', [])
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=600000', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
