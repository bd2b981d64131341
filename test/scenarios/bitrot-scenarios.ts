// Scenario S15 (reliability notes §7.3): bit rot at rest. With the engine stopped, bytes are
// flipped inside the data of a sealed snapshot layer of one replica (not the read source, so no
// client read meets them first: the engine does not verify reads, S14c). After the restart a scrub
// with data verification (the engine control API, as it is) must find the rot from that replica's
// own stored checksums, the majority must agree with the others, and with markErr the replica must
// leave the write set. A rebuild must then give it data whose checksums match again: a second
// scrub finds nothing. (Seed 1 found that the rebuild kept the rotten chunk: it trusted the
// receiver's stored checksums; rebuild.ts now re-hashes the receiver's data first.)
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { metadataSizeMaxBytes } from '../../src/lib/limits.ts';
import { readMeta } from '../../src/replica/replica-dir.ts';
import { NodeReplicaFiles } from '../../src/replica/node/node-replica-files.ts';
import { openReplicaStore } from '../../src/replica/layered-store.ts';
import { systemClock } from '../../src/bin/system-clock.ts';
import type { ScenarioContext, ScenarioDefinition } from './scenario-run.ts';

interface ScrubJson {
  readonly corrupt: readonly { layer: string; offsetBytes: number; replica: string; healthyElsewhere: boolean }[];
  readonly disagreeing: readonly string[];
  readonly markedErr: readonly string[];
  readonly mismatches: readonly unknown[];
  readonly chunksChecked: number;
  readonly bytesVerified: number;
}

async function scrub(ctx: ScenarioContext, markErr: boolean): Promise<ScrubJson> {
  const { status, json } = await ctx.cluster.control('POST', '/v1/scrub', { markErr, verifyData: true });
  if (status !== 200) throw new Error(`scrub: HTTP ${status} ${JSON.stringify(json)}`);
  return json as ScrubJson;
}

export const bitrotScenarios: readonly ScenarioDefinition[] = [
  {
    id: 'S15',
    title: 'bit rot at rest in a sealed layer of one replica (engine stopped); scrub finds it, the replica leaves, a rebuild restores matching checksums',
    inDoubtDifferencesAreKnownGap: true,
    run: async (ctx) => {
      const { cluster, workload } = ctx;
      await workload.acknowledged(200 + ctx.random.int(200));
      const snap = await cluster.control('POST', '/v1/snapshots', { name: 's15-sealed' });
      ctx.expect(snap.status === 200, `snapshot: HTTP ${snap.status}`);
      await workload.acknowledged(100);
      // Odd seeds scrub once before the rot: every replica computes and stores the layer's
      // checksums, so the rot is then found by the replica's own record; even seeds leave them to
      // be computed over the rotten bytes, so only the vote can find it.
      if (ctx.seed % 2 === 1) {
        const before = await scrub(ctx, false);
        ctx.expect(before.corrupt.length === 0 && before.mismatches.length === 0, `scrub before the rot found something: ${JSON.stringify(before).slice(0, 400)}`);
      }
      // Not the read source (the first rw replica in address order).
      const readSource = (await cluster.rwReplicas())[0]!;
      const others = cluster.replicas.filter((r) => r !== readSource);
      const victim = others[ctx.random.int(others.length)]!;
      await cluster.engine!.stop();
      await victim.daemon!.stop();
      victim.daemon = null;
      // Which file holds the sealed layer, and where it holds data.
      const meta = await readMeta({ files: new NodeReplicaFiles(), dir: victim.dir }, metadataSizeMaxBytes);
      const layer = meta.snapshots.find((s) => s.name === 's15-sealed');
      if (layer === undefined) throw new Error(`replica ${victim.index} has no layer s15-sealed`);
      const store = await openReplicaStore({ dir: victim.dir, files: new NodeReplicaFiles(), clock: systemClock });
      const extents = await store.layerExtents('s15-sealed', { offsetBytes: 0, lengthBytes: cluster.sizeBytes }).finally(() => store.close());
      const dataExtents = extents.filter((e) => e.kind !== 'zero');
      if (dataExtents.length === 0) throw new Error('the sealed layer holds no data to rot');
      const extent = dataExtents[ctx.random.int(dataExtents.length)]!;
      const flips = 1 + ctx.random.int(4);
      const file = await open(join(victim.dir, layer.dataFile), 'r+');
      try {
        for (let i = 0; i < flips; i++) {
          const at = extent.offsetBytes + ctx.random.int(extent.lengthBytes);
          const byte = Buffer.alloc(1);
          await file.read(byte, 0, 1, at);
          byte[0] = byte[0]! ^ (1 << ctx.random.int(8));
          await file.write(byte, 0, 1, at);
        }
        await file.sync();
      } finally {
        await file.close();
      }
      ctx.report(`engine stopped; ${flips} bit(s) flipped in ${layer.dataFile} (layer s15-sealed) of replica ${victim.index}, extent ${extent.offsetBytes}+${extent.lengthBytes}`);
      await cluster.startReplica(victim);
      await rm(cluster.socket, { force: true });
      await cluster.startEngine();
      workload.attach(await cluster.connect());
      await workload.acknowledged(50);
      const found = await scrub(ctx, true);
      // Either way of finding it counts: the replica's own stored checksums (when they were
      // computed before the rot), or the vote against the other two (when the replica computes
      // them only now, over the rotten bytes).
      const onVictim = found.corrupt.filter((c) => c.replica === victim.address);
      const outvoted = found.disagreeing.includes(victim.address) && found.mismatches.length > 0;
      ctx.expect(onVictim.length > 0 || outvoted, `scrub did not find the rot on replica ${victim.index}: ${JSON.stringify(found).slice(0, 600)}`);
      ctx.expect(onVictim.every((c) => c.layer === 's15-sealed' && c.healthyElsewhere), `rot reported elsewhere than layer s15-sealed: ${JSON.stringify(onVictim)}`);
      ctx.expect(found.corrupt.every((c) => c.replica === victim.address) && found.disagreeing.every((a) => a === victim.address), `scrub blamed another replica: ${JSON.stringify(found).slice(0, 600)}`);
      ctx.expect(found.markedErr.includes(victim.address), `replica ${victim.index} was not marked err: ${JSON.stringify(found.markedErr)}`);
      ctx.expect((await cluster.modeOf(victim)) === 'err', `replica ${victim.index} is still in the write set after the scrub`);
      ctx.report(`scrub: ${found.chunksChecked} chunks, ${found.bytesVerified} bytes verified; replica ${victim.index} ${onVictim.length > 0 ? `fails its own checksums at ${onVictim.map((c) => `${c.layer}@${c.offsetBytes}`).join(', ')}` : `outvoted on ${found.mismatches.length} chunk(s)`}; marked err`);
      const rebuilt = await cluster.rebuild(victim);
      ctx.report(`replica ${victim.index} rebuilt: ${rebuilt.doneBytes} bytes sent, ${rebuilt.skippedBytes} matched`);
      const again = await scrub(ctx, false);
      ctx.expect(again.corrupt.length === 0 && again.mismatches.length === 0, `after the rebuild the scrub finds: corrupt ${JSON.stringify(again.corrupt)}, mismatches ${JSON.stringify(again.mismatches).slice(0, 300)}`);
      ctx.report(`scrub after the rebuild: ${again.chunksChecked} chunks, nothing found`);
      await workload.acknowledged(80);
    },
  },
];
