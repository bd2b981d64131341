// An aborted scenario (its run throws while the workload is going) must end the workload's client
// threads and stop the daemons: before the fix runScenario left the threads looping (no client →
// wait 20 ms → look again, forever) and `node dist/test/scenarios/run.js` never exited.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { stopAll } from '../harness/daemon.ts';
import { runScenario, type ScenarioContext, type ScenarioDefinition } from './scenario-run.ts';

after(stopAll);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a scenario that throws mid-workload stops the workload threads and every daemon', async () => {
  let captured: ScenarioContext | undefined;
  const pids: number[] = [];
  const aborting: ScenarioDefinition = {
    id: 'ABORT',
    title: 'throws while the workload runs',
    run: async (ctx) => {
      captured = ctx;
      await ctx.workload.acknowledged(30);
      for (const daemon of [ctx.cluster.engine, ...ctx.cluster.replicas.map((r) => r.daemon)]) if (daemon !== null) pids.push(daemon.pid);
      throw new Error('planted abort');
    },
  };
  const result = await runScenario(aborting, 1);
  try {
    assert.ok(captured !== undefined, 'the scenario ran');
    assert.ok(result.violations.some((v) => v.invariant === 'liveness' && /scenario aborted: .*planted abort/s.test(v.message)), JSON.stringify(result.violations));
    assert.equal(captured.workload.runningThreads, 0, 'workload client threads still running after runScenario returned');
    assert.equal(pids.length, 4, 'engine and three replicas recorded');
    assert.deepEqual(pids.filter(alive), [], 'daemons still running after runScenario returned');
  } finally {
    // Without the fix, end the threads here so that this file does not hang as run.js did.
    await captured?.workload.stop();
    if (result.keptDir !== null) await rm(result.keptDir, { recursive: true, force: true });
  }
});
