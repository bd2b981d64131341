// A node that dies takes a replica with it: four nodes, a 3-replica volume attached on node-1,
// then the agent of a replica's node and its replica process are killed with SIGKILL. The node's
// lease expires, the manager marks it not Ready and the replica failed, and (with
// replica-replenishment-wait-interval 0) places a new replica on the spare node; the engine
// rebuilds it and the volume is healthy again with the data intact. The dead node's agent then
// comes back: the node is Ready again, and the old replica stays failed, stopped and out of the write set.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Engine } from '../../src/control/resources/engine.ts';
import type { Node } from '../../src/control/resources/node.ts';
import { apiVersion } from '../../src/control/resources/object-meta.ts';
import type { Replica } from '../../src/control/resources/replica.ts';
import { validateResource, withDefaults } from '../../src/control/resources/validate-resource.ts';
import type { VolumeAttachment } from '../../src/control/resources/volume-attachment.ts';
import type { Volume } from '../../src/control/resources/volume.ts';
import { run, stopAll, waitFor, withTempDir } from '../harness/daemon.ts';
import { startLocalCluster, updateWithRetry, type LocalCluster } from '../harness/local-cluster.ts';

after(stopAll);

const volumeName = 'vol-down';
const nodes = ['node-1', 'node-2', 'node-3', 'node-4'];

test('a dead node: its replica is replaced on a spare node and rebuilt; the volume heals', async () => {
  await withTempDir('node-down', async (dir) => {
    let cluster: LocalCluster | undefined;
    try {
      cluster = await startLocalCluster({ dir, nodes, leaseTtlMs: 2000 });
      const { store } = cluster;
      await store.create({ apiVersion, kind: 'Setting', metadata: { name: 'replica-replenishment-wait-interval' }, spec: { value: '0' } });
      // Keep node-4 free: it is the spare the replacement must go to.
      await updateWithRetry<Node>(store, 'Node', 'node-4', (n) => ({ ...n, spec: { ...n.spec, allowScheduling: false } }));
      const volume = validateResource('Volume', withDefaults('Volume', {
        apiVersion, kind: 'Volume', metadata: { name: volumeName }, spec: { size: 32 * 1024 * 1024, numberOfReplicas: 3 },
      }));
      assert.ok(volume.ok);
      await store.create(volume.value);
      const replicasOf = async (): Promise<Replica[]> =>
        ((await store.list('Replica')).items as Replica[]).filter((r) => r.spec.volumeName === volumeName);
      const getVolume = async (): Promise<Volume> => (await store.get('Volume', volumeName)) as Volume;
      await waitFor('3 replicas placed', async () => ((await getVolume()).status?.state === 'detached' && (await replicasOf()).length === 3 ? true : undefined), 30_000);
      assert.deepEqual((await replicasOf()).map((r) => r.spec.nodeID).sort(), ['node-1', 'node-2', 'node-3']);
      await updateWithRetry<Node>(store, 'Node', 'node-4', (n) => ({ ...n, spec: { ...n.spec, allowScheduling: true } }));
      await updateWithRetry<VolumeAttachment>(store, 'VolumeAttachment', volumeName, (va) => ({
        ...va, spec: { ...va.spec, attachmentTickets: { t1: { id: 't1', type: 'shorthorn-api', nodeID: 'node-1' } } },
      }));
      await waitFor('attached and healthy', async () => {
        const v = await getVolume();
        return v.status?.state === 'attached' && v.status.robustness === 'healthy' ? true : undefined;
      }, 60_000);
      const uri = ((await store.get('Engine', `${volumeName}-e-0`)) as Engine).status!.endpoint!;
      await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x3c 0 4M', '-c', 'flush', uri]);

      // node-3 dies: its agent and its replica.
      const lost = (await replicasOf()).find((r) => r.spec.nodeID === 'node-3')!;
      await cluster.agents.get('node-3')!.kill9();
      process.kill(lost.status!.pid!, 'SIGKILL');
      await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x4d 4M 4M', '-c', 'flush', uri]);

      const replacement = await waitFor('a replacement on node-4, rebuilt, volume healthy', async () => {
        const fresh = (await replicasOf()).find((r) => r.spec.nodeID === 'node-4');
        const e = (await store.get('Engine', `${volumeName}-e-0`)) as Engine;
        const v = await getVolume();
        const modes = e.status?.replicaModeMap ?? {};
        const ok = fresh !== undefined && modes[fresh.metadata.name] === 'RW' && e.status?.rebuildStatus?.[fresh.metadata.name]?.state === 'done' &&
          Object.values(modes).filter((m) => m === 'RW').length === 3 && v.status?.robustness === 'healthy';
        return ok ? fresh : undefined;
      }, 60_000);
      const node3 = (await store.get('Node', 'node-3')) as Node;
      assert.equal(node3.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'NodeAgentDown');
      const failed = (await store.get('Replica', lost.metadata.name)) as Replica;
      assert.ok(failed.spec.failedAt !== undefined, 'the lost replica is marked failed');
      const engine = (await store.get('Engine', `${volumeName}-e-0`)) as Engine;
      assert.deepEqual(Object.keys(engine.spec.replicaAddressMap).sort(), [...(await replicasOf()).filter((r) => r.spec.failedAt === undefined).map((r) => r.metadata.name)].sort());
      assert.ok(engine.spec.replicaAddressMap[replacement.metadata.name] !== undefined);
      assert.match(cluster.manager.output(), new RegExp(`replica ${lost.metadata.name} of ${volumeName} failed: node node-3 is not ready`));
      assert.match(cluster.manager.output(), /placed replica .* on node node-4/);
      await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x3c 0 4M', '-c', 'read -P 0x4d 4M 4M', uri]);

      // node-3's agent comes back: Ready again. Its old replica stays failed and stopped, its data
      // kept: the volume already has its three (cleanup of failed replicas is not built yet).
      await cluster.startAgent('node-3');
      await waitFor('node-3 ready again', async () => {
        const n = (await store.get('Node', 'node-3')) as Node;
        return n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' ? true : undefined;
      }, 30_000);
      await waitFor('the old replica reported stopped by the returning agent', async () => {
        const r = (await store.get('Replica', lost.metadata.name)) as Replica;
        return r.status?.currentState === 'stopped' ? r : undefined;
      }, 30_000);
      const after = (await store.get('Replica', lost.metadata.name)) as Replica;
      assert.equal(after.spec.desireState, 'stopped');
      assert.ok(after.spec.failedAt !== undefined);
      const v = await getVolume();
      assert.equal(v.status?.robustness, 'healthy');
      assert.equal(Object.keys(((await store.get('Engine', `${volumeName}-e-0`)) as Engine).spec.replicaAddressMap).length, 3);
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
