// Registers node:test cases for a group of fault scenarios (docs/reliability.md): each scenario
// once with seed 1, and one member of the group picked at random with a random seed (both
// printed). The scenarios are split over several test files so that each file stays well inside
// the test runner's per-file timeout on a loaded machine. SCENARIO_LONG=1: seeds 1..3 and a random
// one for every scenario; SCENARIOS=S01,S12 picks scenarios; SCENARIO_SEEDS=a,b picks seeds.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { stopAll } from '../harness/daemon.ts';
import { replayCommand, runScenario, type ScenarioDefinition } from './scenario-run.ts';
import { scenarioById } from './scenarios.ts';

export function defineScenarioTests(group: string, ids: readonly string[]): void {
  const long = process.env['SCENARIO_LONG'] === '1';
  const only = (process.env['SCENARIOS'] ?? '').split(',').filter((x) => x !== '');
  const fixedSeeds = (process.env['SCENARIO_SEEDS'] ?? '').split(',').filter((x) => x !== '').map(Number);
  const randomSeed = Date.now() % 1_000_000;
  const chosen = ids.filter((id) => only.length === 0 || only.includes(id)).map(scenarioById);
  const randomPick = chosen[randomSeed % Math.max(1, chosen.length)];

  const seedsOf = (def: ScenarioDefinition): number[] => {
    if (fixedSeeds.length > 0) return fixedSeeds;
    const seeds = long ? [1, 2, 3] : [1];
    if (long || def === randomPick) seeds.push(randomSeed);
    return seeds;
  };

  describe(`fault scenarios on real processes: ${group}`, () => {
    after(stopAll);
    console.log(`${group}: random scenario seed ${randomSeed} (for ${long ? 'every scenario' : (randomPick?.id ?? 'none')})`);
    for (const def of chosen) {
      for (const seed of seedsOf(def)) {
        test(`${def.id} seed ${seed}: ${def.title}`, async () => {
          const result = await runScenario(def, seed);
          await stopAll();
          console.log(`${def.id} seed ${seed}: ${result.report.join('; ')}`);
          for (const gap of result.knownGaps) console.log(`${def.id} seed ${seed}: known gap: ${gap}`);
          assert.deepEqual(
            result.violations.map((v) => `[${v.invariant}] ${v.message}`),
            [],
            `${def.id} seed ${seed} failed; evidence in ${result.keptDir ?? '?'}; replay: ${replayCommand(def.id, seed)}`,
          );
        });
      }
    }
  });
}
