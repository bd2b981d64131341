// Run fault scenarios from the command line and replay a failure by its seed:
//   node dist/test/scenarios/run.js --scenario S12 --seed 7
//   node dist/test/scenarios/run.js --scenario S12 --seeds 20      (seeds 1..20)
//   node dist/test/scenarios/run.js --all --seeds 3
// A failure prints its violations, the replay command and where its evidence was kept.
import { stopAll } from '../harness/daemon.ts';
import { runScenario, replayCommand } from './scenario-run.ts';
import { scenarioById, scenarios } from './scenarios.ts';

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  const ids = process.argv.includes('--all') ? scenarios.map((s) => s.id) : (argValue('--scenario') ?? '').split(',').filter((x) => x !== '');
  if (ids.length === 0) {
    console.error(`usage: run.js (--scenario S01[,S02…] | --all) (--seed N | --seeds K [--from N])\nscenarios: ${scenarios.map((s) => `${s.id} ${s.title}`).join('\n  ')}`);
    return 2;
  }
  const single = argValue('--seed');
  const count = Number(argValue('--seeds') ?? '1');
  const from = Number(argValue('--from') ?? '1');
  const seeds = single !== undefined ? [Number(single)] : Array.from({ length: count }, (_, i) => from + i);
  let failures = 0;
  for (const id of ids) {
    const def = scenarioById(id);
    for (const seed of seeds) {
      const started = Date.now();
      const result = await runScenario(def, seed);
      await stopAll();
      const took = ((Date.now() - started) / 1000).toFixed(1);
      console.log(`${result.violations.length === 0 ? 'ok  ' : 'FAIL'} ${def.id} seed ${seed} (${took} s): ${def.title}`);
      for (const line of result.report) console.log(`     ${line}`);
      for (const gap of result.knownGaps) console.log(`     known gap: ${gap}`);
      if (result.violations.length > 0) {
        failures++;
        for (const v of result.violations.slice(0, 10)) console.log(`     violation [${v.invariant}]: ${v.message}`);
        console.log(`     evidence kept in ${result.keptDir ?? '?'}; replay: ${replayCommand(def.id, seed)}`);
      }
    }
  }
  return failures === 0 ? 0 : 1;
}

process.exitCode = await main();
