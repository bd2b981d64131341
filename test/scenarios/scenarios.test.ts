// Fault scenarios in CI (docs/reliability.md): every scenario once with a fixed seed, and one
// scenario picked at random with a random seed (both printed). SCENARIO_LONG=1 runs every scenario
// with seeds 1..3 and a random one; SCENARIOS=S01,S12 picks scenarios; SCENARIO_SEEDS=a,b picks
// seeds. A failure names the seed and the replay command and keeps its evidence.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, shorthornBin, stopAll } from '../harness/daemon.ts';
import { replayCommand, runScenario, type ScenarioDefinition } from './scenario-run.ts';
import { scenarios } from './scenarios.ts';
import { corruptReadScenario } from './planted-scenarios.ts';

const long = process.env['SCENARIO_LONG'] === '1';
const only = (process.env['SCENARIOS'] ?? '').split(',').filter((x) => x !== '');
const fixedSeeds = (process.env['SCENARIO_SEEDS'] ?? '').split(',').filter((x) => x !== '').map(Number);
const randomSeed = Date.now() % 1_000_000;
const chosen = scenarios.filter((s) => only.length === 0 || only.includes(s.id));
const randomPick = chosen[randomSeed % chosen.length];

function seedsOf(def: ScenarioDefinition): number[] {
  if (fixedSeeds.length > 0) return fixedSeeds;
  const seeds = long ? [1, 2, 3] : [1];
  if (long || def === randomPick) seeds.push(randomSeed);
  return seeds;
}

async function check(def: ScenarioDefinition, seed: number): Promise<void> {
  const result = await runScenario(def, seed);
  await stopAll();
  console.log(`${def.id} seed ${seed}: ${result.report.join('; ')}`);
  for (const gap of result.knownGaps) console.log(`${def.id} seed ${seed}: known gap: ${gap}`);
  assert.deepEqual(
    result.violations.map((v) => `[${v.invariant}] ${v.message}`),
    [],
    `${def.id} seed ${seed} failed; evidence in ${result.keptDir ?? '?'}; replay: ${replayCommand(def.id, seed)}`,
  );
}

describe('fault scenarios on real processes', () => {
  after(stopAll);
  console.log(`random scenario seed ${randomSeed} (for ${long ? 'every scenario' : (randomPick?.id ?? 'none')})`);

  for (const def of chosen) {
    for (const seed of seedsOf(def)) {
      test(`${def.id} seed ${seed}: ${def.title}`, () => check(def, seed));
    }
  }

  test('the checker catches corrupted reads from a replica (planted: the engine does not verify reads)', async () => {
    const result = await runScenario(corruptReadScenario, 1);
    await stopAll();
    assert.ok(
      result.violations.some((v) => v.invariant === '2 no fabrication'),
      `no fabrication reported: ${JSON.stringify(result.violations)}`,
    );
    if (result.keptDir !== null) await rm(result.keptDir, { recursive: true, force: true });
  });

  test('a replica refuses --fault-config unless fault injection is enabled, and refuses a bad config', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shorthorn-fault-config-'));
    try {
      const config = join(dir, 'faults.json');
      await writeFile(config, JSON.stringify({ rules: [{ op: 'write', type: 'eio' }] }));
      const args = [shorthornBin, 'replica', '--dir', join(dir, 'r'), '--size', '1Mi', '--listen', '127.0.0.1:0', '--fault-config', config];
      const refused = await run(process.execPath, args, { allowFailure: true });
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /--fault-config is for tests: set SHORTHORN_FAULT_INJECTION=1/);
      await writeFile(config, JSON.stringify({ rules: [{ op: 'write', type: 'eio', probabilty: 1 }] }));
      const bad = await run('env', ['SHORTHORN_FAULT_INJECTION=1', process.execPath, ...args], { allowFailure: true });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /unknown field "probabilty"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
