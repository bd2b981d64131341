// A volume that heals itself, end to end on one host: the embedded store (and again etcd), three node agents (each
// its own data dir and disk) and one manager, all real processes. A 3-replica volume is placed one
// replica per node, attached through a VolumeAttachment ticket, written and verified with qemu-io
// and fio --verify through the engine's NBD socket; a replica process is killed with SIGKILL mid-use, the agent
// restarts it, the engine rebuilds it, the volume is healthy again, the data verifies and a scrub
// finds every replica identical. The engine is killed too and comes back with its data. Then
// detach, and delete (replica data removed).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '../../src/control/resources/engine.ts';
import { apiVersion } from '../../src/control/resources/object-meta.ts';
import type { Replica } from '../../src/control/resources/replica.ts';
import { validateResource, withDefaults } from '../../src/control/resources/validate-resource.ts';
import type { VolumeAttachment } from '../../src/control/resources/volume-attachment.ts';
import type { Volume } from '../../src/control/resources/volume.ts';
import { run, stopAll, waitFor, withTempDir } from '../harness/daemon.ts';
import { startEtcd } from '../harness/etcd.ts';
import { fioErrors, runFio, type FioResult } from '../harness/fio.ts';
import { startLocalCluster, updateWithRetry, type LocalCluster } from '../harness/local-cluster.ts';

after(stopAll);

const volumeName = 'vol-heal';
const sizeBytes = 64 * 1024 * 1024;
const nodes = ['node-1', 'node-2', 'node-3'];

/** fio's seeded random-write job with crc32c verification over 16–48 MiB; the same arguments replay the same data. */
function healFio(uri: string, extra: readonly string[]): Promise<FioResult> {
  return runFio(['--name=heal', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=16', '--offset=16M', '--size=32M',
    '--verify=crc32c', '--randseed=4321', '--verify_state_save=0', '--output-format=json', ...extra]);
}

for (const backend of ['embedded', 'etcd'] as const) {
  test(`a 3-replica volume places, attaches, survives a killed replica, heals, detaches and deletes (${backend} store)`, async () => {
    await withTempDir('self-heal', async (dir) => {
      let cluster: LocalCluster | undefined;
      const etcd = backend === 'etcd' ? await startEtcd() : undefined;
      try {
        cluster = await startLocalCluster({ dir, nodes, ...(etcd === undefined ? {} : { etcdEndpoint: etcd.endpoint }) });
        const { store, manager } = cluster;
        const volume = withDefaults('Volume', {
          apiVersion, kind: 'Volume', metadata: { name: volumeName }, spec: { size: sizeBytes, numberOfReplicas: 3 },
        });
        const checked = validateResource('Volume', volume);
        assert.ok(checked.ok);
        await store.create(checked.value);
        const getVolume = async (): Promise<Volume> => (await store.get('Volume', volumeName)) as Volume;
        const replicasOf = async (): Promise<Replica[]> =>
          ((await store.list('Replica')).items as Replica[]).filter((r) => r.spec.volumeName === volumeName);

        await waitFor('volume detached with 3 replicas', async () => {
          const v = await getVolume();
          return v.status?.state === 'detached' && (await replicasOf()).length === 3 ? true : undefined;
        }, 30_000);
        const placed = await replicasOf();
        assert.deepEqual(placed.map((r) => r.spec.nodeID).sort(), nodes, 'one replica per node (hard node anti-affinity)');

        // Attach through a ticket, as the API and CSI do.
        // The manager writes the attachment's status too: updateWithRetry re-reads on conflict.
        const setTickets = (tickets: VolumeAttachment['spec']['attachmentTickets']): Promise<void> =>
          updateWithRetry<VolumeAttachment>(store, 'VolumeAttachment', volumeName, (va) => ({ ...va, spec: { ...va.spec, attachmentTickets: tickets } }));
        const ticketId = 'shorthorn-api-e2e';
        await setTickets({ [ticketId]: { id: ticketId, type: 'shorthorn-api', nodeID: 'node-1' } });
        const attached = await waitFor('volume attached and healthy', async () => {
          const v = await getVolume();
          return v.status?.state === 'attached' && v.status.robustness === 'healthy' ? v : undefined;
        }, 60_000);
        assert.equal(attached.status?.currentNodeID, 'node-1');
        const engine = (await store.get('Engine', `${volumeName}-e-0`)) as Engine;
        assert.equal(engine.spec.epoch, 1);
        assert.equal(engine.spec.nodeID, 'node-1');
        const uri = engine.status?.endpoint;
        assert.ok(uri !== undefined && uri.startsWith('nbd+unix://'));
        const va = (await store.get('VolumeAttachment', volumeName)) as VolumeAttachment;
        assert.equal(va.status?.attachmentTicketStatuses?.[ticketId]?.satisfied, true);

        await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 8M', '-c', 'flush', uri]);

        // SIGKILL a replica that is not on the engine's node, then keep writing: the engine drops it.
        const victim = (await replicasOf()).find((r) => r.spec.nodeID === 'node-2')!;
        const victimPid = victim.status!.pid!;
        // fio writes and verifies its own region (16–48 MiB) while the replica dies under it.
        const fio = healFio(uri, ['--do_verify=1']);
        process.kill(victimPid, 'SIGKILL');
        await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x6b 8M 8M', '-c', 'flush', uri]);
        const fioWrite = await fio;
        assert.equal(fioWrite.code, 0, `fio: ${fioWrite.stderr}`);
        assert.equal(fioErrors(fioWrite.stdout), 0, 'fio --verify saw no error while a replica was killed');
        await waitFor('the killed replica restarted, rebuilt, and the volume healthy', async () => {
          const v = await getVolume();
          const r = (await store.get('Replica', victim.metadata.name)) as Replica;
          const e = (await store.get('Engine', `${volumeName}-e-0`)) as Engine;
          const modes = Object.values(e.status?.replicaModeMap ?? {});
          // The rebuild record comes from the engine itself, so a stale "all RW" from before the
          // engine noticed the kill cannot satisfy this.
          const rebuilt = e.status?.rebuildStatus?.[victim.metadata.name]?.state === 'done';
          const healed = rebuilt && r.status?.pid !== undefined && r.status.pid !== victimPid && modes.length === 3 && modes.every((m) => m === 'RW');
          return healed && v.status?.robustness === 'healthy' ? true : undefined;
        }, 60_000);
        assert.match(manager.output(), /replica .* failed|engine write set|degraded/);

        await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 0 8M', '-c', 'read -P 0x6b 8M 8M', uri]);
        // Every replica holds the same data: seal the head and compare the replicas chunk by chunk.
        const control = `http://127.0.0.1:${engine.status!.port!}`;
        assert.equal((await fetch(`${control}/v1/snapshots`, { method: 'POST', body: JSON.stringify({ name: 'check' }) })).status, 200);
        const scrub = (await (await fetch(`${control}/v1/scrub`, { method: 'POST', body: '{}' })).json()) as { replicas: string[]; mismatches: unknown[] };
        assert.equal(scrub.replicas.length, 3, `scrub: ${JSON.stringify(scrub)}; engine: ${await (await fetch(`${control}/v1/status`)).text()}`);
        assert.deepEqual(scrub.mismatches, []);

        // SIGKILL the engine: the agent starts it again on the same socket; the replicas are all of
        // the same generation, so it comes back with all three and the data is there.
        const enginePid = ((await store.get('Engine', `${volumeName}-e-0`)) as Engine).status!.pid!;
        process.kill(enginePid, 'SIGKILL');
        await waitFor('engine restarted and the volume healthy', async () => {
          const e = (await store.get('Engine', `${volumeName}-e-0`)) as Engine;
          const v = await getVolume();
          const modes = Object.values(e.status?.replicaModeMap ?? {});
          const back = e.status?.pid !== undefined && e.status.pid !== enginePid && e.status.currentState === 'running';
          return back && modes.length === 3 && modes.every((m) => m === 'RW') && v.status?.state === 'attached' && v.status.robustness === 'healthy' ? true : undefined;
        }, 30_000);
        await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 0 8M', '-c', 'read -P 0x6b 8M 8M', uri]);
        const fioVerify = await healFio(uri, ['--verify_only=1']);
        assert.equal(fioVerify.code, 0, `fio: ${fioVerify.stderr}`);
        assert.equal(fioErrors(fioVerify.stdout), 0, 'what fio wrote verifies after the engine restart');

        // Detach: remove the ticket.
        await setTickets({});
        await waitFor('volume detached', async () => ((await getVolume()).status?.state === 'detached' ? true : undefined), 30_000);
        const stoppedEngine = (await store.get('Engine', `${volumeName}-e-0`)) as Engine;
        assert.equal(stoppedEngine.status?.currentState, 'stopped');

        // Delete: replicas and their data go, then the volume.
        const dataDirs = (await replicasOf()).map((r) => join(r.spec.diskPath!, 'replicas', r.spec.dataDirectoryName!));
        assert.ok(dataDirs.every((d) => existsSync(d)));
        await store.delete('Volume', volumeName);
        await waitFor('volume, engine and replicas gone', async () => {
          const left = (await store.list('Volume')).items.length + (await store.list('Engine')).items.length + (await replicasOf()).length;
          return left === 0 ? true : undefined;
        }, 30_000);
        assert.ok(dataDirs.every((d) => !existsSync(d)), 'replica data removed by the agents');
      } catch (error) {
        process.stderr.write(`${cluster?.dump() ?? 'no cluster'}\n`);
        throw error;
      } finally {
        await stopAll();
        cluster?.killInstances();
        await cluster?.store.close();
        await etcd?.stop();
      }
    });
  });
}
