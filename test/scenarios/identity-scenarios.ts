// Scenario S28 (reliability notes §7.3): port reuse and replica identity. A replica's address is
// not its identity: after a restart another replica can listen on a member's port. Another
// volume's replica is refused by the volume name every frame carries; another replica of the
// same volume by its instance id (src/format/replica-identity.ts), which the engine records in
// every generation's member list and checks when it starts.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { dataProcessThreadPoolSize } from '../../src/lib/limits.ts';
import { openReplicaStore } from '../../src/replica/layered-store.ts';
import { NodeReplicaFiles } from '../../src/replica/node/node-replica-files.ts';
import { systemClock } from '../../src/bin/system-clock.ts';
import { startDaemon, waitFor, type Daemon } from '../harness/daemon.ts';
import { pingIntervalMs, requestTimeoutMs, type ScenarioCluster, type ScenarioReplica } from './scenario-cluster.ts';
import type { ScenarioContext, ScenarioDefinition } from './scenario-run.ts';

const errWithinMs = requestTimeoutMs + pingIntervalMs + 1000;

async function expectErr(ctx: ScenarioContext, replica: ScenarioReplica): Promise<void> {
  const tookMs = await ctx.cluster.waitForMode(replica, 'err', errWithinMs);
  ctx.report(`replica ${replica.index} err after ${tookMs} ms`);
}

/** A replica daemon of another volume, or another replica of this one, on `port` (in `dir`, by default a new one). */
async function startStranger(cluster: ScenarioCluster, options: { name: string; volume: string; port: number; dir?: string }): Promise<{ dir: string; daemon: Daemon }> {
  const dir = options.dir ?? join(cluster.dir, options.name);
  const args = ['replica', '--dir', dir, '--size', String(cluster.sizeBytes), '--volume', options.volume, '--listen', `127.0.0.1:${options.port}`];
  const daemon = await startDaemon({ args, readyPattern: /listening on (\S+)/, env: { UV_THREADPOOL_SIZE: String(dataProcessThreadPoolSize) }, timeoutMs: 60_000 });
  cluster.note(`${options.name}: replica of volume ${options.volume} started on port ${options.port}, pid ${daemon.pid}`);
  return { dir, daemon };
}

/** An engine start that must be refused; resolves with the engine's output. */
async function expectStartRefused(ctx: ScenarioContext, why: RegExp): Promise<string> {
  await rm(ctx.cluster.socket, { force: true });
  try {
    await ctx.cluster.startEngine();
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    ctx.expect(why.test(text), `the engine was refused, but not for ${String(why)}: ${text.slice(-1500)}`);
    return text;
  }
  ctx.expect(false, `the engine started although a member's port was held by another replica (expected ${String(why)})`);
  // Keep the run consistent: a started engine is stopped so that the real member can come back.
  await ctx.cluster.engine?.kill9();
  return '';
}

export const identityScenarios: readonly ScenarioDefinition[] = [
  {
    id: 'S28',
    title: "port reuse: another volume's replica, then a stale replica of this volume, on a member's port: refused (volume name, instance id); nothing written to them",
    inDoubtDifferencesAreKnownGap: true,
    run: async (ctx) => {
      const { cluster, workload } = ctx;
      const otherVolume = `${cluster.volume}-other`;
      // Part 1, running engine: a replica (A) is killed, another volume's replica takes its port,
      // a rebuild of that address is asked for. That replica refuses the engine's frames (wrong volume).
      await workload.acknowledged(100 + ctx.random.int(200));
      // The member that will go on alone (C), and the two the engine drops before it (A, then B).
      const c = cluster.replicas[ctx.seed % 3]!;
      const [a, b] = cluster.replicas.filter((r) => r !== c) as [ScenarioReplica, ScenarioReplica];
      await a.daemon!.kill9();
      a.daemon = null;
      await expectErr(ctx, a);
      const other = await startStranger(cluster, { name: 'other-volume', volume: otherVolume, port: a.port });
      await cluster.startRebuild(a);
      const failed = await waitFor('the rebuild onto the other volume to fail', async () => {
        const p = await cluster.rebuildProgress(a);
        if (p?.state === 'done') throw new Error(`the rebuild onto another volume's replica succeeded`);
        return p?.state === 'failed' ? p : undefined;
      }, 30_000);
      ctx.expect(/wrong_volume|serves volume/.test(failed.error ?? ''), `the rebuild failed for another reason: ${failed.error ?? '?'}`);
      ctx.report(`rebuild onto volume ${otherVolume}'s replica (on replica ${a.index}'s port) refused: ${failed.error ?? '?'}`);
      ctx.expect((await cluster.modeOf(a)) === 'err', `replica ${a.index}'s address is back in the write set`);
      await workload.acknowledged(80);
      await other.daemon.stop();
      const otherStore = await openReplicaStore({ dir: other.dir, files: new NodeReplicaFiles(), clock: systemClock });
      try {
        const chain = otherStore.chain();
        const data = await otherStore.read(0, cluster.sizeBytes);
        const written = data.some((x) => x !== 0);
        ctx.expect(
          chain.volumeName === otherVolume && chain.membership.epoch === 0 && chain.membership.generation === 0 && chain.snapshots.length === 0 && !written,
          `the other volume's replica was touched: epoch ${chain.membership.epoch}, generation ${chain.membership.generation}, ${chain.snapshots.length} snapshots, data ${written ? 'written' : 'zero'}`,
        );
      } finally {
        await otherStore.close();
      }

      // Part 2, engine start: B is killed too, so the engine records a generation with C alone
      // and acknowledges writes only C holds. Then the engine and C die, and while C is down its
      // port is taken: first by another volume's replica, then by a stale replica of this volume
      // (another directory, another instance). An engine that took either for C would start on
      // B's older generation and lose C's writes (with the identity check disabled, seed 1 does:
      // the checker reports acknowledged writes read back as zeros).
      await b.daemon!.kill9();
      b.daemon = null;
      await expectErr(ctx, b);
      await workload.acknowledged(80);
      ctx.report(`replicas ${a.index} and ${b.index} killed; writes acknowledged on replica ${c.index} alone`);
      await cluster.engine!.kill9();
      await c.daemon!.kill9();
      c.daemon = null;
      await cluster.startReplica(b);
      const wrongVolume = await startStranger(cluster, { name: 'other-volume-2', volume: otherVolume, port: c.port });
      await expectStartRefused(ctx, /unreachable/);
      ctx.report(`start with volume ${otherVolume}'s replica on replica ${c.index}'s port: refused`);
      await wrongVolume.daemon.stop();
      // A's own directory (a real stale replica of this volume: older generation, its own
      // instance id) restarted on C's port.
      const impostor = await startStranger(cluster, { name: `replica ${a.index} (stale)`, volume: cluster.volume, port: c.port, dir: a.dir });
      await expectStartRefused(ctx, /answered by instance [0-9a-f]{32}, not the member [0-9a-f]{32}/);
      ctx.report(`start with stale replica ${a.index} of ${cluster.volume} on replica ${c.index}'s port: refused (identity mismatch)`);
      await impostor.daemon.stop();
      // The member itself returns: the engine starts on it and the others are rebuilt from it.
      await cluster.startReplica(a);
      await cluster.startReplica(c);
      await rm(cluster.socket, { force: true });
      await cluster.startEngine();
      // C was killed -9 since the last start: writes it acknowledged after its last flush may be
      // gone (the head's extents reach its journal at flush), as after a power loss.
      workload.model.amnesia();
      workload.attach(await cluster.connect());
      const rw = await cluster.rwReplicas();
      ctx.expect(rw.length === 1 && rw[0] === c, `the engine started on ${rw.map((r) => r.index).join(', ')}, expected replica ${c.index} alone`);
      for (const r of [a, b]) {
        const rebuilt = await cluster.rebuild(r);
        ctx.report(`replica ${r.index} rebuilt from ${c.index}: ${rebuilt.doneBytes} bytes sent, ${rebuilt.skippedBytes} matched`);
      }
      await workload.acknowledged(100);
    },
  },
];
