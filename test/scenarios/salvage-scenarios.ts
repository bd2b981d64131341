// Salvage scenarios (reliability notes §7.3 S03, S04, S17): every replica of the volume dies.
// The runner drives an engine and replicas, not the manager, so salvage is driven through the
// engine's own salvage start (`shorthorn engine --salvage`, engine/salvage-choice.ts); the
// manager's auto-salvage on top of it is tested end to end in test/e2e/volume-salvage.test.ts.
// The choice must follow the durable records (generation, members, epoch) only: S04 moves the
// file times of the last writer an hour back, and the choice must not change.
import { readdir, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ScenarioCluster, ScenarioReplica } from './scenario-cluster.ts';
import type { ScenarioContext, ScenarioDefinition } from './scenario-run.ts';

/** A replica killed by the scenario leaves the write set within this (the socket closes at once). */
const errWithinMs = 15_000;

/** kill -9 every replica at once, then the engine, which has nothing left to write to. */
async function killEverything(ctx: ScenarioContext, victims: readonly ScenarioReplica[]): Promise<void> {
  const { cluster, workload } = ctx;
  await Promise.all(victims.map((r) => r.daemon?.kill9() ?? Promise.resolve()));
  for (const r of victims) r.daemon = null;
  ctx.report(`killed replicas ${victims.map((r) => r.index).join(', ')}`);
  workload.detach();
  await cluster.engine?.kill9();
  cluster.engine = null;
  await rm(cluster.socket, { force: true });
}

/** The engine's start-up line (start-choice / salvage-choice reason). */
function startLine(cluster: ScenarioCluster): string {
  return /start: (?:salvage: )?generation .*/.exec(cluster.engine?.output() ?? '')?.[0] ?? '(no start line)';
}

async function expectRw(ctx: ScenarioContext, expected: readonly ScenarioReplica[]): Promise<void> {
  const rw = (await ctx.cluster.rwReplicas()).map((r) => r.index).sort();
  const want = expected.map((r) => r.index).sort();
  ctx.expect(JSON.stringify(rw) === JSON.stringify(want), `engine started on replicas ${rw.join(', ')}, expected ${want.join(', ')}: ${startLine(ctx.cluster)}`);
}

async function rebuildOthers(ctx: ScenarioContext, others: readonly ScenarioReplica[]): Promise<void> {
  for (const r of others) {
    const rebuilt = await ctx.cluster.rebuild(r);
    ctx.report(`replica ${r.index} rebuilt from the salvaged ones: ${rebuilt.doneBytes} bytes sent, ${rebuilt.skippedBytes} matched`);
  }
}

export const salvageScenarios: readonly ScenarioDefinition[] = [
  {
    id: 'S03',
    title: 'kill -9 all replicas at once; one never returns: the normal start refuses, the salvage start uses the other two',
    clientErrorsAllowed: true,
    // The two salvaged replicas may differ on writes no flush covered (see S17).
    inDoubtDifferencesAreKnownGap: true,
    run: async (ctx) => {
      const { cluster, workload } = ctx;
      await workload.acknowledged(100 + ctx.random.int(200));
      await killEverything(ctx, cluster.replicas);
      // Two come back; the third's disk is "gone" until after the salvage.
      const lost = cluster.replicas[ctx.random.int(cluster.replicas.length)]!;
      const back = cluster.replicas.filter((r) => r !== lost);
      for (const r of back) await cluster.startReplica(r);
      // Without salvage the volume stays down (the manager's "faulted"): a member is missing.
      const refused = await cluster.startEngine().then(
        () => 'started',
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      );
      ctx.expect(/unreachable/.test(refused) && cluster.engine === null, `the normal start did not refuse with replica ${lost.index} missing: ${refused.slice(-400)}`);
      ctx.report(`normal start refused (replica ${lost.index} missing)`);
      await cluster.startEngine({ salvage: true });
      // A replica keeps the head's extent journal for writes since the last flush in memory: a
      // kill -9 of every replica may lose acknowledged writes that no completed flush covered.
      workload.model.amnesia();
      const lossLine = /.*may be lost.*/.exec(cluster.engine?.output() ?? '')?.[0] ?? '';
      ctx.expect(lossLine.includes(lost.address), `the salvage start did not name the missing member ${lost.address}: ${startLine(cluster)}`);
      ctx.report(startLine(cluster));
      await expectRw(ctx, back);
      workload.attach(await cluster.connect());
      await workload.acknowledged(100);
      await cluster.startReplica(lost);
      await rebuildOthers(ctx, [lost]);
      await workload.acknowledged(100);
    },
  },
  {
    id: 'S04',
    title: 'staggered deaths r1, r2 after Δ, r3 after 2Δ with writes going on; salvage chooses r3 whatever its file times',
    clientErrorsAllowed: true,
    run: async (ctx) => {
      const { cluster, workload } = ctx;
      const deltaMs = [10, 500, 1500][ctx.seed % 3]!;
      const order = [...cluster.replicas];
      for (let i = order.length - 1; i > 0; i--) {
        const j = ctx.random.int(i + 1);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      const [first, second, last] = order as [ScenarioReplica, ScenarioReplica, ScenarioReplica];
      await workload.acknowledged(100 + ctx.random.int(200));
      for (const victim of [first, second]) {
        await victim.daemon!.kill9();
        victim.daemon = null;
        // The engine must have recorded the smaller write set before the next death, or the
        // next death is not "later" in any sense the replicas could record.
        await cluster.waitForMode(victim, 'err', errWithinMs);
        const before = workload.stats.acked;
        await sleep(deltaMs);
        ctx.report(`replica ${victim.index} killed; ${workload.stats.acked - before} writes acknowledged in the next ${deltaMs} ms`);
      }
      await killEverything(ctx, [last]);
      // The last writer's files look oldest: a chooser by file times (Longhorn's, revision
      // counter off) would pick another replica.
      const hourAgo = new Date(Date.now() - 3600_000);
      for (const name of await readdir(last.dir)) await utimes(join(last.dir, name), hourAgo, hourAgo);
      await utimes(last.dir, hourAgo, hourAgo);
      for (const r of cluster.replicas) await cluster.startReplica(r);
      await cluster.startEngine({ salvage: true });
      workload.model.amnesia();
      ctx.report(`Δ ${deltaMs} ms, deaths ${first.index}, ${second.index}, ${last.index}: ${startLine(cluster)}`);
      await expectRw(ctx, [last]);
      workload.attach(await cluster.connect());
      await workload.acknowledged(100);
      await rebuildOthers(ctx, [first, second]);
      await workload.acknowledged(100);
    },
  },
  {
    id: 'S17',
    title: 'power loss on every replica (lose-unsynced, kill -9 all): every write before a completed flush survives; salvage converges',
    clientErrorsAllowed: true,
    // Unflushed writes may survive on one replica and not another; the engine reads one source,
    // and until rule 7's compare-and-repair they may stay different on those sectors.
    inDoubtDifferencesAreKnownGap: true,
    faults: ({ seed }) => ({ seed, loseUnsynced: true }),
    run: async (ctx) => {
      const { cluster, workload } = ctx;
      await workload.acknowledged(200 + ctx.random.int(200));
      ctx.report(`${workload.stats.flushes} flushes issued before the power loss`);
      await killEverything(ctx, cluster.replicas);
      // Back without fault injection: what survived is what the files hold.
      for (const r of cluster.replicas) await cluster.startReplica(r);
      await cluster.startEngine({ salvage: true });
      // Acknowledged writes that no completed flush covered may be gone on every replica.
      workload.model.amnesia();
      ctx.report(startLine(cluster));
      await expectRw(ctx, cluster.replicas);
      workload.attach(await cluster.connect());
      await workload.acknowledged(150);
    },
  },
];
