// Salvage end to end on one host (issue #6): the embedded store, three node agents and a manager,
// all real processes. Every replica process of an attached 3-replica volume is killed with
// SIGKILL while qemu-io writes through the engine's NBD socket:
// 1. auto-salvage on (the default): the volume goes faulted (Salvage condition AllReplicasFailed),
//    the manager stops the engine, picks the replicas of the highest recorded generation (read by
//    the agents from the replicas' metadata), starts the engine with them in salvage mode, and
//    the volume is healthy again with every write that a completed flush covered.
// 2. auto-salvage off: the volume stays faulted with its engine stopped until the salvage action
//    (spec.salvageRequested, as the API writes it) names one replica; the engine starts from that
//    one, the other two are rebuilt from it, and the flushed data is there.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Engine } from '../../src/control/resources/engine.ts';
import { apiVersion } from '../../src/control/resources/object-meta.ts';
import type { Replica } from '../../src/control/resources/replica.ts';
import { validateResource, withDefaults } from '../../src/control/resources/validate-resource.ts';
import type { VolumeAttachment } from '../../src/control/resources/volume-attachment.ts';
import type { Volume } from '../../src/control/resources/volume.ts';
import { run, stopAll, waitFor, withTempDir } from '../harness/daemon.ts';
import { startLocalCluster, updateWithRetry, type LocalCluster } from '../harness/local-cluster.ts';

after(stopAll);

const volumeName = 'vol-salvage';
const engineName = `${volumeName}-e-0`;
const sizeBytes = 64 * 1024 * 1024;
const nodes = ['node-1', 'node-2', 'node-3'];

const pieceBytes = 256 * 1024;

/**
 * qemu-io writing 256 KiB pieces from `fromBytes`, each followed by a flush, in the background;
 * resolves with the offsets whose write and following flush both completed: those must survive.
 */
function backgroundWriter(uri: string, pattern: string, fromBytes: number, count: number): { written: () => number; flushed: Promise<number[]> } {
  const args = ['-f', 'raw'];
  for (let i = 0; i < count; i++) args.push('-c', `write -P ${pattern} ${fromBytes + i * pieceBytes} ${pieceBytes}`, '-c', 'flush');
  args.push(uri);
  // One pipe for both streams, so that "flush failed" stays in order with the writes.
  const child = spawn('sh', ['-c', 'exec qemu-io "$@" 2>&1', 'sh', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const flushed = new Promise<number[]>((resolve) => child.once('exit', () => {
    const durable: number[] = [];
    let pending: number | null = null;
    for (const line of text.split('\n')) {
      const wrote = /^wrote \d+\/\d+ bytes at offset (\d+)/.exec(line);
      if (/^flush failed/.test(line)) pending = null;
      else if (wrote !== null || /^write failed/.test(line)) {
        if (pending !== null) durable.push(pending);
        pending = wrote === null ? null : Number(wrote[1]);
      }
    }
    // The last write's flush printed nothing more: it completed only if qemu-io ended well after it.
    if (pending !== null && !/failed/.test(text.slice(text.lastIndexOf('wrote ')))) durable.push(pending);
    resolve(durable);
  }));
  return { written: () => text.split('wrote ').length - 1, flushed };
}

test('every replica killed: auto-salvage brings the volume back; with auto-salvage off it waits for the salvage action', async () => {
  await withTempDir('salvage', async (dir) => {
    let cluster: LocalCluster | undefined;
    try {
      cluster = await startLocalCluster({ dir, nodes });
      const { store, manager } = cluster;
      const volume = withDefaults('Volume', { apiVersion, kind: 'Volume', metadata: { name: volumeName }, spec: { size: sizeBytes, numberOfReplicas: 3 } });
      const checked = validateResource('Volume', volume);
      assert.ok(checked.ok);
      await store.create(checked.value);
      const getVolume = async (): Promise<Volume> => (await store.get('Volume', volumeName)) as Volume;
      const getEngine = async (): Promise<Engine> => (await store.get('Engine', engineName)) as Engine;
      const replicasOf = async (): Promise<Replica[]> =>
        ((await store.list('Replica')).items as Replica[]).filter((r) => r.spec.volumeName === volumeName);
      const salvageOf = (v: Volume) => v.status?.conditions?.find((c) => c.type === 'Salvage');
      await waitFor('volume detached with 3 replicas', async () => ((await getVolume()).status?.state === 'detached' && (await replicasOf()).length === 3 ? true : undefined), 30_000);
      await updateWithRetry<VolumeAttachment>(store, 'VolumeAttachment', volumeName, (va) => ({
        ...va, spec: { ...va.spec, attachmentTickets: { e2e: { id: 'e2e', type: 'shorthorn-api', nodeID: 'node-1' } } },
      }));
      const healthy = async (what: string): Promise<void> => {
        await waitFor(what, async () => {
          const v = await getVolume();
          const modes = Object.values((await getEngine()).status?.replicaModeMap ?? {});
          return v.status?.state === 'attached' && v.status.robustness === 'healthy' && modes.length === 3 && modes.every((m) => m === 'RW') ? true : undefined;
        }, 120_000);
      };
      await healthy('volume attached and healthy');
      const uri = (await getEngine()).status?.endpoint;
      assert.ok(uri !== undefined);
      await waitFor('every replica reports its record', async () => ((await replicasOf()).every((r) => r.status?.generation !== undefined) ? true : undefined), 30_000);

      // Flushed writes, then a writer still going when every replica dies.
      await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 8M', '-c', 'flush', uri]);
      const killAll = async (): Promise<void> => {
        const replicas = await replicasOf();
        for (const r of replicas) process.kill(r.status!.pid!, 'SIGKILL');
      };
      const pieces = 96;
      const pids = (await replicasOf()).map((r) => r.status!.pid!);
      const writer = backgroundWriter(uri, '0x6b', 8 * 1024 * 1024, pieces);
      // Kill mid-workload: some of its writes have landed, the rest fail.
      await waitFor('background writes under way', () => (writer.written() >= 3 ? true : undefined), 60_000);
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      const flushed = await writer.flushed;
      assert.ok(flushed.length >= 2 && flushed.length < pieces, `writes flushed before the kill: ${flushed.length} of ${pieces}`);

      // 1. auto-salvage (default on).
      await waitFor('salvage decided', async () => {
        const v = await getVolume();
        return salvageOf(v)?.reason === 'Salvaging' || salvageOf(v)?.reason === 'Salvaged' ? true : undefined;
      }, 60_000);
      await waitFor('salvaged', async () => (salvageOf(await getVolume())?.reason === 'Salvaged' ? true : undefined), 120_000);
      await healthy('healthy again after the auto-salvage');
      const salvaged = salvageOf(await getVolume());
      assert.equal(salvaged?.status, 'True');
      assert.match(salvaged?.message ?? '', /highest generation \d+/);
      assert.match(manager.output(), /every replica failed/);
      assert.match(manager.output(), /salvage: starting the engine on node-1/);
      assert.equal((await getEngine()).spec.salvageRequested, undefined);
      await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 0 8M', ...flushed.flatMap((at) => ['-c', `read -P 0x6b ${at} ${pieceBytes}`]), uri]);
      process.stdout.write(`salvage e2e: ${flushed.length} of ${pieces} background writes were flushed before the kill; all read back\n`);

      // 2. auto-salvage off: faulted until the salvage action.
      await store.create({ apiVersion, kind: 'Setting', metadata: { name: 'auto-salvage' }, spec: { value: 'false' } });
      await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x7c 32M 8M', '-c', 'flush', uri]);
      await killAll();
      const faulted = await waitFor('faulted and waiting for the salvage action', async () => {
        const v = await getVolume();
        const e = await getEngine();
        const waiting = /auto-salvage is off/.test(salvageOf(v)?.message ?? '') && v.status?.robustness === 'faulted';
        return waiting && e.spec.desireState === 'stopped' && e.status?.currentState === 'stopped' ? v : undefined;
      }, 60_000);
      assert.equal(salvageOf(faulted)?.reason, 'AllReplicasFailed');
      // The agents have restarted the replicas (1 s back-off); an unguarded attach would start the
      // engine again within a few passes. It must not.
      await waitFor('replicas running again', async () => ((await replicasOf()).every((r) => r.status?.currentState === 'running') ? true : undefined), 30_000);
      await sleep(4000);
      assert.equal((await getEngine()).spec.desireState, 'stopped', 'the engine stays stopped without the salvage action');
      assert.equal((await getVolume()).status?.robustness, 'faulted');

      const named = (await replicasOf()).find((r) => r.spec.nodeID === 'node-2')!;
      await updateWithRetry<Replica>(store, 'Replica', named.metadata.name, (r) => ({ ...r, spec: { ...r.spec, salvageRequested: true } }));
      await waitFor('salvaged from the named replica', async () => (salvageOf(await getVolume())?.reason === 'Salvaged' ? true : undefined), 120_000);
      assert.match(salvageOf(await getVolume())?.message ?? '', new RegExp(`named by the salvage action: ${named.metadata.name}`));
      await healthy('healthy again after the salvage action (the others rebuilt)');
      const rebuilt = (await getEngine()).status?.rebuildStatus ?? {};
      assert.ok(Object.keys(rebuilt).filter((n) => n !== named.metadata.name).length >= 1, `the others were rebuilt: ${JSON.stringify(rebuilt)}`);
      await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 0 8M', '-c', 'read -P 0x7c 32M 8M', uri]);
      assert.equal((await replicasOf()).length, 3, 'no replica was deleted');
    } catch (error) {
      process.stderr.write(`${cluster?.dump() ?? 'no cluster'}\n`);
      throw error;
    } finally {
      await stopAll();
      cluster?.killInstances();
      await cluster?.store.close();
    }
  });
});
