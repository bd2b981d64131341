// The scenario machinery's own checks: the checker must catch a planted corruption (a checker
// that never complains would look like a correct system), and the replica daemon must refuse a
// fault config unless fault injection is enabled, and refuse a bad one.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, shorthornBin, stopAll } from '../harness/daemon.ts';
import { runScenario } from './scenario-run.ts';
import { corruptReadScenario } from './planted-scenarios.ts';

describe('fault scenario machinery', () => {
  after(stopAll);

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
