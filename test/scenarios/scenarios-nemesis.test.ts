// S30 smoke: the randomized nemesis (nemesis-scenarios.ts) for SOAK_SECONDS (45 here unless set)
// with a random seed, printed; replay with SEED=. Long runs: docs/reliability.md (nemesis-soak.js).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { stopAll } from '../harness/daemon.ts';
import { runScenario } from './scenario-run.ts';
import { nemesisScenario } from './nemesis-scenarios.ts';

after(stopAll);

const seed = Number(process.env['SEED'] ?? (Date.now() % 1_000_000) + 1);
const soakSeconds = Number(process.env['SOAK_SECONDS'] ?? 45);

test(`S30 nemesis smoke: SEED=${seed} SOAK_SECONDS=${soakSeconds}`, async () => {
  console.log(`S30 smoke: SEED=${seed} SOAK_SECONDS=${soakSeconds}`);
  const result = await runScenario(nemesisScenario(soakSeconds), seed);
  await stopAll();
  for (const line of result.report) console.log(`S30 SEED=${seed}: ${line}`);
  assert.deepEqual(
    result.violations.map((v) => `[${v.invariant}] ${v.message}`),
    [],
    `S30 SEED=${seed} failed; evidence in ${result.keptDir ?? '?'}; replay: SEED=${seed} SOAK_SECONDS=${soakSeconds} node dist/test/scenarios/nemesis-soak.js`,
  );
});
