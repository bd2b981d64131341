// Backup scenarios S21–S23 (docs/reliability.md; backup-scenarios.ts) and the security negatives
// S31 (security-scenarios.ts) on one Ceph RGW and two real volumes. Every run: each scenario
// once with seed 1. SCENARIO_LONG=1: seeds 1..3 and a random one (printed). SEED=n (or
// SCENARIO_SEEDS=a,b) replays; SCENARIOS=S22 picks scenarios.
import { after, before, describe, test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopAll } from '../harness/daemon.ts';
import { startBackupScenarioEnv, type BackupScenarioEnv } from './backup-scenario-env.ts';
import { scenarioS21, scenarioS22, scenarioS23 } from './backup-scenarios.ts';
import { scenarioS31 } from './security-scenarios.ts';

const scenarios = [
  { id: 'S21', title: 'backup target failures (503s, uploads reset, slow store, RGW killed)', run: scenarioS21 },
  { id: 'S22', title: 'corrupt or missing backup blocks and configs', run: scenarioS22 },
  { id: 'S23', title: 'backup locks and GC under a concurrent backup, deletion and restore', run: scenarioS23 },
  { id: 'S31', title: 'security negatives: hostile names, URLs and bodies, tokens, another volume\'s identity, secrets in logs', run: scenarioS31 },
] as const;

const only = (process.env['SCENARIOS'] ?? '').split(',').filter((x) => x !== '');
const fixed = [process.env['SEED'] ?? '', ...(process.env['SCENARIO_SEEDS'] ?? '').split(',')].filter((x) => x !== '').map(Number);
const randomSeed = Date.now() % 1_000_000;
const seeds = fixed.length > 0 ? fixed : process.env['SCENARIO_LONG'] === '1' ? [1, 2, 3, randomSeed] : [1];

describe('backup and security fault scenarios on real processes (S21-S23, S31)', () => {
  let dir: string;
  let env: BackupScenarioEnv | undefined;
  before(async () => {
    console.log(`backup scenarios: seeds ${seeds.join(', ')}`);
    dir = await mkdtemp(join(tmpdir(), 'shorthorn-bk-scen-'));
    env = await startBackupScenarioEnv(dir);
  });
  after(async () => {
    await env?.close();
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  });
  for (const scenario of scenarios.filter((s) => only.length === 0 || only.includes(s.id))) {
    for (const seed of seeds) {
      test(`${scenario.id} SEED=${seed}: ${scenario.title}`, async () => {
        const started = performance.now();
        try {
          const report = await scenario.run(env!, seed);
          for (const line of report) console.log(`${scenario.id} SEED=${seed}: ${line}`);
          console.log(`${scenario.id} SEED=${seed}: passed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
        } catch (error) {
          console.log(`${scenario.id} SEED=${seed} failed; replay: SEED=${seed} SCENARIOS=${scenario.id} node scripts/run-tests.mjs scenarios-backup`);
          throw error;
        }
      });
    }
  }
});
