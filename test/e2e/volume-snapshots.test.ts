// Snapshots, purge, expansion and revert of a real volume through the REST API, end to end on one
// host: three node agents, the manager and `shorthorn api`, all real processes, the embedded
// store. A 3-replica volume is created and attached through the API, written with qemu-io over the
// engine's NBD socket; a Snapshot asked for while detached waits (status.error) and is taken on
// attach; snapshotCreate makes Snapshot resources that the manager takes in the
// engine (parent chain, labels, readyToUse); snapshotDelete marks one removed and snapshotPurge
// removes it from the engine; expand grows the volume online (nbdinfo sees it); a revert is
// refused while an NBD client is connected and done once it is gone, and the data is the
// snapshot's again (with the purged snapshot's data below it).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Engine } from '../../src/control/resources/engine.ts';
import type { Snapshot } from '../../src/control/resources/snapshot.ts';
import type { Volume } from '../../src/control/resources/volume.ts';
import { run, stopAll, waitFor, withTempDir } from '../harness/daemon.ts';
import { startApiDaemon } from '../harness/api-daemon.ts';
import { startLocalCluster, type LocalCluster } from '../harness/local-cluster.ts';

after(stopAll);

const volumeName = 'vol-snaps';
const mib = 1024 * 1024;
const nodes = ['node-1', 'node-2', 'node-3'];

interface EngineTree {
  snapshots: { name: string; parent: string | null; children: string[]; removed: boolean }[];
}

test('snapshots, delete and purge, expand and revert of a 3-replica volume through the REST API', async () => {
  await withTempDir('snapshots-e2e', async (dir) => {
    let cluster: LocalCluster | undefined;
    try {
      cluster = await startLocalCluster({ dir, nodes });
      const { store } = cluster;
      const storeDir = join(dir, 'store');
      const api = await startApiDaemon(storeDir);
      const { call } = api;
      const action = (name: string, body: unknown = {}): Promise<Record<string, unknown>> => api.action(volumeName, name, body);
      const getVolume = async (): Promise<Volume> => (await store.get('Volume', volumeName)) as Volume;
      const getEngine = async (): Promise<Engine> => (await store.get('Engine', `${volumeName}-e-0`)) as Engine;
      const snapshotResource = async (name: string): Promise<Snapshot | undefined> => {
        const answer = await call('GET', `/v1/snapshots/${name}`);
        if (answer.status === 404) return undefined;
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        return answer.body as unknown as Snapshot;
      };

      const created = await call('POST', '/v1/volumes', { name: volumeName, size: '64Mi', numberOfReplicas: 3 });
      assert.ok(created.status === 200 || created.status === 201, JSON.stringify(created.body));
      await waitFor('volume detached with its replicas placed', async () => ((await getVolume()).status?.state === 'detached' ? true : undefined), 30_000);
      // A Snapshot asked for while the volume is detached (as a recurring job may): status.error
      // says why it waits, and it is taken once the volume attaches.
      await store.create({
        apiVersion: 'shorthorn.io/v1', kind: 'Snapshot',
        metadata: { name: 'snap-early', labels: { shorthornvolume: volumeName } },
        spec: { volume: volumeName, createSnapshot: true, labels: {} },
      });
      await waitFor('snap-early waits for the attach', async () => (/is not attached \(it is detached\)/.test((await snapshotResource('snap-early'))?.status?.error ?? '') ? true : undefined), 20_000);
      await action('attach', { hostId: 'node-1' });
      await waitFor('volume attached and healthy', async () => {
        const v = await getVolume();
        return v.status?.state === 'attached' && v.status.robustness === 'healthy' ? true : undefined;
      }, 60_000);
      const engine = await getEngine();
      const uri = engine.status?.endpoint ?? '';
      assert.ok(uri.startsWith('nbd+unix://'), uri);
      const control = `http://127.0.0.1:${engine.status?.port ?? 0}`;
      const engineTree = async (): Promise<EngineTree> => (await (await fetch(`${control}/v1/snapshots`)).json()) as EngineTree;

      await waitFor('snap-early taken after the attach', async () => {
        const s = await snapshotResource('snap-early');
        return s?.status?.readyToUse === true && s.status.error === undefined ? true : undefined;
      }, 20_000);
      // Two snapshots with different data under them.
      await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 8M', '-c', 'flush', uri]);
      await action('snapshotCreate', { name: 'snap-a', labels: { app: 'e2e' } });
      const snapA = await waitFor('snap-a taken and ready', async () => {
        const s = await snapshotResource('snap-a');
        return s?.status?.readyToUse === true ? s : undefined;
      }, 20_000);
      assert.equal(snapA.status?.userCreated, true);
      assert.deepEqual(snapA.status?.labels, { app: 'e2e' });
      assert.ok(snapA.status?.creationTime !== undefined && (snapA.status.size ?? 0) >= 4 * mib, JSON.stringify(snapA.status));
      await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x22 0 4M', '-c', 'flush', uri]);
      await action('snapshotCreate', { name: 'snap-b' });
      const snapB = await waitFor('snap-b ready on top of snap-a', async () => {
        const s = await snapshotResource('snap-b');
        const a = await snapshotResource('snap-a');
        const chained = s?.status?.readyToUse === true && s.status.parent === 'snap-a' && a?.status?.children?.['snap-b'] === true;
        return chained ? s : undefined;
      }, 20_000);
      assert.deepEqual(snapB.status?.children, { 'volume-head': true });
      const listed = await action('snapshotList');
      const names = (listed['data'] as { id: string }[]).map((s) => s.id).sort();
      assert.deepEqual(names, ['snap-a', 'snap-b', 'snap-early']);
      assert.deepEqual((await engineTree()).snapshots.map((s) => [s.name, s.parent]), [['snap-early', null], ['snap-a', 'snap-early'], ['snap-b', 'snap-a']]);
      // A snapshot taken in the engine itself (as a rebuild does) is mirrored into a resource.
      const direct = await fetch(`${control}/v1/snapshots`, { method: 'POST', body: JSON.stringify({ name: 'sys-1', kind: 'system' }) });
      assert.equal(direct.status, 200, await direct.text());
      const mirrored = await waitFor('the engine\'s own snapshot mirrored', async () => {
        const s = await snapshotResource('sys-1');
        return s?.status?.readyToUse === true ? s : undefined;
      }, 20_000);
      assert.equal(mirrored.spec.createSnapshot, false);
      assert.equal(mirrored.status?.userCreated, false);
      assert.equal(mirrored.status?.parent, 'snap-b');
      assert.equal(mirrored.metadata.labels?.['shorthornvolume'], volumeName);
      await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x33 0 4M', '-c', 'flush', uri]);

      // Delete marks it removed in the engine; purge coalesces it into its child snap-b. (A removed
      // snapshot under the live head stays until a newer snapshot is taken, as in Longhorn.)
      await action('snapshotDelete', { name: 'snap-a' });
      await waitFor('snap-a marked removed in the engine and its resource gone', async () => {
        const tree = await engineTree();
        return tree.snapshots.find((s) => s.name === 'snap-a')?.removed === true && (await snapshotResource('snap-a')) === undefined ? true : undefined;
      }, 20_000);
      await action('snapshotPurge');
      await waitFor('snap-a purged from the engine and the request cleared', async () => {
        const tree = await engineTree();
        const cleared = (await getVolume()).metadata.annotations?.['shorthorn.io/snapshot-purge-requested-at'] === undefined;
        return cleared && tree.snapshots.every((s) => s.name !== 'snap-a') ? true : undefined;
      }, 30_000);
      assert.equal((await snapshotResource('snap-a')), undefined, 'a removed snapshot is not mirrored back');
      await waitFor('snap-b sits on snap-early now', async () => {
        const b = await snapshotResource('snap-b');
        const early = await snapshotResource('snap-early');
        return b?.status?.readyToUse === true && b.status.parent === 'snap-early' && early?.status?.children?.['snap-b'] === true ? true : undefined;
      }, 20_000);
      await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x33 0 4M', '-c', 'read -P 0x11 4M 4M', uri]);

      // Expand online: the engine, its Engine and Replica resources carry the new size.
      await action('expand', { size: '128Mi' });
      await waitFor('engine expanded to 128 MiB', async () => {
        const e = await getEngine();
        return e.status?.currentSize === 128 * mib && e.spec.volumeSize === 128 * mib ? true : undefined;
      }, 30_000);
      await waitFor('replicas carry the new size', async () => {
        const replicas = (await store.list('Replica')).items.filter((r) => (r.spec as { volumeName: string }).volumeName === volumeName);
        return replicas.length === 3 && replicas.every((r) => (r.spec as { volumeSize: number }).volumeSize === 128 * mib) ? true : undefined;
      }, 20_000);
      assert.equal((await run('nbdinfo', ['--size', uri])).stdout.trim(), String(128 * mib));
      await waitFor('volume status: the new size, no expansion pending', async () => {
        const v = await getVolume();
        return v.status?.expansionRequired === false && v.status.currentSize === 128 * mib ? true : undefined;
      }, 20_000);
      await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x44 100M 1M', '-c', 'read -P 0x33 0 4M', uri]);

      // Revert: refused while an NBD client is connected; done once it is gone.
      const holder = spawn('qemu-io', ['-f', 'raw', uri], { stdio: ['pipe', 'pipe', 'pipe'] });
      try {
        let prompt = '';
        holder.stdout.on('data', (chunk: Buffer) => (prompt += chunk.toString()));
        // qemu-io prints its prompt once it has connected and opened the export.
        await waitFor('an NBD client connected', () => (prompt.includes('qemu-io>') ? true : undefined), 10_000);
        await action('snapshotRevert', { name: 'snap-b' });
        const refused = await waitFor('revert refused while a client is connected', async () => {
          const c = (await getVolume()).status?.conditions?.find((x) => x.type === 'SnapshotRevert');
          return c?.status === 'False' ? c : undefined;
        }, 20_000);
        assert.match(refused.message ?? '', /NBD clients are connected/);
      } finally {
        holder.stdin.end();
        await new Promise((resolve) => holder.once('close', resolve));
      }
      await action('snapshotRevert', { name: 'snap-b' });
      await waitFor('reverted to snap-b', async () => {
        const v = await getVolume();
        const c = v.status?.conditions?.find((x) => x.type === 'SnapshotRevert');
        return c?.status === 'True' && v.metadata.annotations?.['shorthorn.io/snapshot-revert-requested'] === undefined ? true : undefined;
      }, 20_000);
      // snap-b's own data, the purged snap-a's data below it, and nothing of what came after.
      await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x22 0 4M', '-c', 'read -P 0x11 4M 4M', '-c', 'read -P 0 100M 1M', uri]);
      assert.equal((await run('nbdinfo', ['--size', uri])).stdout.trim(), String(128 * mib));
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
