// Scenario S20 (reliability notes §7.3): trims and snapshot operations while a replica rebuilds.
// The engine's rules (volume-chain.ts, rebuild.ts): a snapshot may be taken during a rebuild (the
// joining replica takes it too, above the join snapshot the copy ends at); delete, purge, revert,
// expand and scrub change sealed layers the copy is reading, so they are refused (409) until the
// rebuild is done, and revert is refused while NBD clients are connected. Clients see no error,
// and the rebuilt replica ends equal to the others.
import { waitFor } from '../harness/daemon.ts';
import { pingIntervalMs, requestTimeoutMs, type ScenarioReplica } from './scenario-cluster.ts';
import type { ScenarioContext, ScenarioDefinition } from './scenario-run.ts';
import { defaultMix, type WorkloadMix } from './scenario-workload.ts';

const errWithinMs = requestTimeoutMs + pingIntervalMs + 1000;

/** Many trims (bursts of them with four threads), small writes between. */
const trimHeavy: WorkloadMix = { write: 0.35, zero: 0.05, trim: 0.3, flush: 0.05, unaligned: 0.5, unalignedSectorsMax: 8 };

async function expectStatus(ctx: ScenarioContext, method: string, path: string, body: unknown, expected: number, what: string): Promise<unknown> {
  const { status, json } = await ctx.cluster.control(method, path, body);
  ctx.expect(status === expected, `${what}: HTTP ${status}, expected ${expected}: ${JSON.stringify(json)}`);
  return json;
}

/**
 * A refusal because of the engine's state: a 4xx whose message says why. (The busy checks of
 * volume-chain.ts answer 400 invalid_argument, the rebuild route 409 conflict; either is a
 * refusal the manager does not retry blindly.)
 */
async function expectRefused(ctx: ScenarioContext, method: string, path: string, body: unknown, why: RegExp, what: string): Promise<void> {
  const { status, json } = await ctx.cluster.control(method, path, body);
  const message = (json as { message?: string }).message ?? '';
  ctx.expect((status === 400 || status === 409) && why.test(message), `${what}: HTTP ${status} ${JSON.stringify(json)}, expected a refusal matching ${String(why)}`);
}

async function rebuildRunning(ctx: ScenarioContext, replica: ScenarioReplica): Promise<boolean> {
  const p = await ctx.cluster.rebuildProgress(replica);
  return p !== undefined && p.state !== 'done' && p.state !== 'failed';
}

export const chainOpScenarios: readonly ScenarioDefinition[] = [
  {
    id: 'S20',
    title: 'trim bursts, snapshot create/delete, purge, revert, expand and scrub while a fresh replica rebuilds',
    finalRw: 3,
    run: async (ctx) => {
      const { cluster, workload } = ctx;
      await workload.acknowledged(150 + ctx.random.int(150));
      await expectStatus(ctx, 'POST', '/v1/snapshots', { name: 's20-base' }, 200, 'snapshot before the rebuild');
      await workload.acknowledged(100);
      await expectStatus(ctx, 'POST', '/v1/snapshots', { name: 's20-old' }, 200, 'second snapshot before the rebuild');
      await workload.acknowledged(100);
      const victim = cluster.replicas[ctx.random.int(3)]!;
      await victim.daemon!.kill9();
      await cluster.waitForMode(victim, 'err', errWithinMs);
      const fresh = await cluster.addReplica({ proxy: false, seed: ctx.seed + 10 });
      await cluster.startReplica(fresh);
      workload.setMix(trimHeavy);
      // Slow enough (256 KiB/s) that every operation below lands while the copy runs.
      await cluster.startRebuild(fresh, 256 * 1024);
      await waitFor('the rebuild to start copying', async () => ((await cluster.rebuildProgress(fresh))?.state === 'copying' ? true : undefined), 60_000);
      ctx.report(`replica ${victim.index} killed; fresh replica ${fresh.index} rebuilding at 256 KiB/s under trim bursts`);
      await workload.acknowledged(50);
      await expectStatus(ctx, 'POST', '/v1/snapshots', { name: 's20-during' }, 200, 'snapshot during the rebuild');
      await workload.acknowledged(50);
      await expectRefused(ctx, 'DELETE', '/v1/snapshots/s20-old', undefined, /while rebuild/, 'delete during the rebuild');
      await expectRefused(ctx, 'POST', '/v1/snapshots/purge', {}, /while rebuild/, 'purge during the rebuild');
      await expectRefused(ctx, 'POST', '/v1/snapshots/revert', { name: 's20-base' }, /while/, 'revert during the rebuild (and with a client connected)');
      await expectRefused(ctx, 'POST', '/v1/expand', { sizeBytes: cluster.sizeBytes * 2 }, /while rebuild/, 'expand during the rebuild');
      await expectRefused(ctx, 'POST', '/v1/scrub', {}, /while rebuild/, 'scrub during the rebuild');
      await expectRefused(ctx, 'POST', '/v1/rebuilds', { address: victim.address }, /while rebuild/, 'a second rebuild during the rebuild');
      await workload.acknowledged(50);
      await expectStatus(ctx, 'POST', '/v1/snapshots', { name: 's20-during-2' }, 200, 'second snapshot during the rebuild');
      const stillRunning = await rebuildRunning(ctx, fresh);
      ctx.expect(stillRunning, 'the rebuild ended before the operations were all tried: they did not run during it');
      const rebuilt = await cluster.waitForRebuild(fresh, 180_000);
      ctx.report(`rebuild done: ${rebuilt.doneBytes} bytes; snapshots during it taken, delete/purge/revert/expand/scrub refused`);
      // After the rebuild: the refused operations run, and every replica (the rebuilt one too) takes them.
      workload.setMix(defaultMix);
      await expectStatus(ctx, 'DELETE', '/v1/snapshots/s20-old', undefined, 200, 'delete after the rebuild');
      await expectStatus(ctx, 'DELETE', '/v1/snapshots/s20-during', undefined, 200, 'delete of the snapshot taken during the rebuild');
      await workload.acknowledged(50);
      await expectStatus(ctx, 'POST', '/v1/snapshots/purge', {}, 200, 'purge after the rebuild');
      await expectRefused(ctx, 'POST', '/v1/snapshots/revert', { name: 's20-base' }, /NBD clients are connected/, 'revert with a client connected');
      const status = await cluster.status();
      ctx.expect(status.replicas.filter((r) => r.mode === 'rw').length === 3, `after the purge: ${JSON.stringify(status.replicas)}`);
      const tree = (await expectStatus(ctx, 'GET', '/v1/snapshots', undefined, 200, 'snapshot list')) as { snapshots: { name: string; removed: boolean }[] };
      const names = tree.snapshots.filter((s) => !s.removed && s.name.startsWith('s20-')).map((s) => s.name).sort();
      ctx.expect(JSON.stringify(names) === JSON.stringify(['s20-base', 's20-during-2']), `user snapshots after the purge: ${names.join(', ')}`);
      await workload.acknowledged(100);
    },
  },
];
