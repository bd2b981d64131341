// The simulator in CI: SIM_SEEDS seeds (default 1000) from SIM_FROM (default 1), each a whole run
// of engine, replicas, disks and network from one seed, checked against the model. A failure
// names the seed and the command that replays it with its whole trace. Longer runs: `npm run sim
// -- --soak` (docs/reliability.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimulation, type SimResult } from './sim-run.ts';

const seeds = Number(process.env['SIM_SEEDS'] ?? '1000');
const from = Number(process.env['SIM_FROM'] ?? '1');

/** Seeds that once found a bug (docs/reliability.md has the table); they stay in every run. */
const regressionSeeds = [8, 46, 67, 68, 81, 90, 5, 140, 231, 290];

function failureReport(result: SimResult): string {
  const lines = result.violations.slice(0, 10).map((v) => `  invariant ${v.invariant}: ${v.message}`);
  const traceTail = result.trace.split('\n').slice(-60).join('\n');
  return `seed ${result.seed} failed (${result.plan}):\n${lines.join('\n')}\nreplay: npm run sim -- --seed ${result.seed}\nlast trace lines:\n${traceTail}`;
}

test(`the simulator finds no violation in ${seeds} seeds from ${from}`, async () => {
  const failures: string[] = [];
  let gaps = 0;
  const list = [...regressionSeeds, ...Array.from({ length: seeds }, (_, i) => from + i)];
  for (const seed of list) {
    const result = await runSimulation({ seed });
    if (result.knownGaps.length > 0) gaps++;
    if (result.violations.length > 0) failures.push(failureReport(result));
    if (failures.length >= 3) break;
  }
  console.log(`${list.length} seeds, ${gaps} with known gaps (see docs/reliability.md)`);
  assert.equal(failures.length, 0, failures.join('\n\n'));
});

test('a seed replays exactly: same trace, same outcome', async () => {
  const a = await runSimulation({ seed: 4242, traceAll: true });
  const b = await runSimulation({ seed: 4242, traceAll: true });
  assert.equal(a.trace, b.trace);
  assert.deepEqual(a.stats, b.stats);
  assert.ok(a.stats.events > 100, `a run has substance (${a.stats.events} events)`);
});
