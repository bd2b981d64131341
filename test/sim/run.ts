// The simulator's command line (docs/reliability.md):
//   node dist/test/sim/run.js --seed 123         replay one seed and print its whole trace on failure
//   node dist/test/sim/run.js --seeds 1000       run seeds 1..1000 (or --from N for another start)
//   node dist/test/sim/run.js --soak             run random seeds until one fails (or --minutes M)
// Options: --ops N (workload size), --verbose (print the trace of a passing seed too).
import { parseArgs } from 'node:util';
import { runSimulation, type SimResult } from './sim-run.ts';

function report(result: SimResult, verbose: boolean): void {
  const failed = result.violations.length > 0;
  if (failed || verbose) {
    console.log(result.trace);
    console.log('');
  }
  const s = result.stats;
  console.log(
    `seed ${result.seed}: ${failed ? 'FAIL' : 'ok'} — ${result.plan}; ${s.issued} ops (${s.acked} acked, ${s.failed} failed, ` +
      `${s.abandoned} abandoned), ${s.engineStarts} engine starts, ${s.faults} nemesis faults, ${s.events} events, ${s.simMs} simulated ms`,
  );
  for (const gap of result.knownGaps) console.log(`  known gap: ${gap}`);
  for (const v of result.violations) console.log(`  VIOLATION (invariant ${v.invariant}): ${v.message}`);
  if (failed) console.log(`  replay: npm run sim -- --seed ${result.seed}`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      seeds: { type: 'string' },
      from: { type: 'string' },
      soak: { type: 'boolean' },
      minutes: { type: 'string' },
      ops: { type: 'string' },
      verbose: { type: 'boolean' },
    },
  });
  const ops = values.ops === undefined ? undefined : Number(values.ops);
  const opsOption = ops === undefined ? {} : { ops };
  if (values.seed !== undefined) {
    const result = await runSimulation({ seed: Number(values.seed), traceAll: true, ...opsOption });
    report(result, values.verbose === true);
    return result.violations.length > 0 ? 1 : 0;
  }
  const started = Date.now();
  const soak = values.soak === true;
  const deadline = values.minutes === undefined ? Infinity : started + Number(values.minutes) * 60_000;
  const count = soak ? Infinity : Number(values.seeds ?? '100');
  // Soak seeds start from the wall clock so that every soak explores new ground; each is printed.
  let seed = values.from !== undefined ? Number(values.from) : soak ? Date.now() % 2 ** 31 : 1;
  let failures = 0;
  let gaps = 0;
  let ran = 0;
  while (ran < count && Date.now() < deadline) {
    const result = await runSimulation({ seed, ...opsOption });
    ran++;
    if (result.knownGaps.length > 0) gaps++;
    if (result.violations.length > 0) {
      failures++;
      report(result, false);
      if (soak) break;
    } else if (values.verbose === true) {
      report(result, false);
    }
    seed++;
  }
  const seconds = (Date.now() - started) / 1000;
  console.log(`${ran} seeds in ${seconds.toFixed(1)} s: ${failures} failing, ${gaps} with known gaps`);
  return failures > 0 ? 1 : 0;
}

process.exitCode = await main();
