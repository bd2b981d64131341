// The randomized nemesis soak (S30, nemesis-scenarios.ts) from the command line:
//   SOAK_SECONDS=7200 node dist/test/scenarios/nemesis-soak.js          (a random seed, printed)
//   SEED=123 SOAK_SECONDS=7200 node dist/test/scenarios/nemesis-soak.js  (replay that seed)
// Prints SEED first, then the timeline of faults; exits 1 with the violations and where the
// evidence was kept when a check fails.
import { stopAll } from '../harness/daemon.ts';
import { runScenario } from './scenario-run.ts';
import { nemesisScenario, soakSecondsFromEnv } from './nemesis-scenarios.ts';

async function main(): Promise<number> {
  const seedText = process.env['SEED'];
  const seed = seedText === undefined ? (Date.now() % 1_000_000) + 1 : Number(seedText);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`SEED=${seedText ?? ''}: a whole number`);
  const soakSeconds = soakSecondsFromEnv();
  console.log(`SEED=${seed} SOAK_SECONDS=${soakSeconds}`);
  const started = Date.now();
  const result = await runScenario(nemesisScenario(soakSeconds), seed);
  await stopAll();
  const took = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`${result.violations.length === 0 ? 'ok  ' : 'FAIL'} S30 SEED=${seed} SOAK_SECONDS=${soakSeconds} (${took} s)`);
  for (const line of result.report) console.log(`     ${line}`);
  for (const gap of result.knownGaps) console.log(`     known gap: ${gap}`);
  if (result.violations.length === 0) return 0;
  for (const v of result.violations.slice(0, 10)) console.log(`     violation [${v.invariant}]: ${v.message}`);
  console.log(`     evidence kept in ${result.keptDir ?? '?'}; replay: SEED=${seed} SOAK_SECONDS=${soakSeconds} node dist/test/scenarios/nemesis-soak.js`);
  return 1;
}

process.exitCode = await main();
