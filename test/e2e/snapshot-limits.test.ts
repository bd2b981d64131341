// A volume's snapshot limit, from the Volume resource to the engine and back, with real processes:
// two node agents, the manager and `shorthorn api` on the embedded store. A 2-replica volume is
// attached; its Volume spec.snapshotMaxCount is set to 3 through the API's updateSnapshotMaxCount (the manager copies it into the Engine,
// the agent into the running engine with PUT /v1/snapshot-limits); three snapshots taken through
// the REST API are taken, the fourth is refused with an error naming the limit; the limit is
// raised to 5 and the fourth is taken (the snapshot controller asks again) and a fifth too. The
// engine is the same process all along (pid and kernel start time): a limits change never
// restarts it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '../../src/control/resources/engine.ts';
import type { Snapshot } from '../../src/control/resources/snapshot.ts';
import type { Volume } from '../../src/control/resources/volume.ts';
import { run, stopAll, waitFor, withTempDir } from '../harness/daemon.ts';
import { startApiDaemon } from '../harness/api-daemon.ts';
import { startLocalCluster, type LocalCluster } from '../harness/local-cluster.ts';

after(stopAll);

const volumeName = 'vol-limits';
const engineName = `${volumeName}-e-0`;
const nodes = ['node-1', 'node-2'];

/** The kernel's start time of a process (field 22 of /proc/PID/stat): with the pid, its identity. */
function startTimeOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
}

test('Volume spec.snapshotMaxCount reaches the running engine live: the 4th of 3 is refused naming the limit, taken once it is raised, same engine process', async () => {
  await withTempDir('snapshot-limits-e2e', async (dir) => {
    let cluster: LocalCluster | undefined;
    try {
      cluster = await startLocalCluster({ dir, nodes });
      const { store } = cluster;
      const storeDir = join(dir, 'store');
      const api = await startApiDaemon(storeDir);
      const { call } = api;
      const action = async (name: string, body: unknown = {}): Promise<void> => {
        await api.action(volumeName, name, body);
      };
      const getVolume = async (): Promise<Volume> => (await store.get('Volume', volumeName)) as Volume;
      const getEngine = async (): Promise<Engine> => (await store.get('Engine', engineName)) as Engine;
      const snapshotResource = async (name: string): Promise<Snapshot | undefined> => {
        const answer = await call('GET', `/v1/snapshots/${name}`);
        if (answer.status === 404) return undefined;
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        return answer.body as unknown as Snapshot;
      };
      const takeSnapshot = async (name: string): Promise<void> => {
        await action('snapshotCreate', { name });
        await waitFor(`${name} taken`, async () => ((await snapshotResource(name))?.status?.readyToUse === true ? true : undefined), 20_000);
      };
      const setCount = async (count: number): Promise<void> => {
        await action('updateSnapshotMaxCount', { snapshotMaxCount: count });
      };

      const created = await call('POST', '/v1/volumes', { name: volumeName, size: '16Mi', numberOfReplicas: 2 });
      assert.ok(created.status === 200 || created.status === 201, JSON.stringify(created.body));
      await waitFor('volume detached with its replicas placed', async () => ((await getVolume()).status?.state === 'detached' ? true : undefined), 30_000);
      await action('attach', { hostId: 'node-1' });
      await waitFor('volume attached and healthy', async () => {
        const v = await getVolume();
        return v.status?.state === 'attached' && v.status.robustness === 'healthy' ? true : undefined;
      }, 60_000);
      const engine = await getEngine();
      const pid = engine.status?.pid ?? 0;
      assert.ok(pid > 0, JSON.stringify(engine.status));
      const startTime = startTimeOf(pid);
      const control = `http://127.0.0.1:${engine.status?.port ?? 0}`;
      const limitsInForce = async (): Promise<{ maxCount: number; maxSizeBytes: number }> =>
        ((await (await fetch(`${control}/v1/status`)).json()) as { snapshotLimits: { maxCount: number; maxSizeBytes: number } }).snapshotLimits;
      // Started with the setting's default (no volume value yet): Longhorn's 250, no size limit.
      assert.equal(engine.spec.snapshotMaxCount, 250);
      assert.deepEqual(await limitsInForce(), { maxCount: 250, maxSizeBytes: 0 });

      await setCount(3);
      await waitFor('the engine enforces snapshotMaxCount 3', async () => ((await limitsInForce()).maxCount === 3 ? true : undefined), 20_000);
      assert.equal((await getEngine()).spec.snapshotMaxCount, 3);
      await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 1M', '-c', 'flush', engine.status?.endpoint ?? '']);
      for (const name of ['lim-1', 'lim-2', 'lim-3']) await takeSnapshot(name);
      await action('snapshotCreate', { name: 'lim-4' });
      const refused = await waitFor('lim-4 refused', async () => {
        const error = (await snapshotResource('lim-4'))?.status?.error;
        return error === undefined ? undefined : error;
      }, 20_000);
      assert.match(refused, /the volume holds 3 snapshots and snapshotMaxCount is 3/);
      assert.notEqual((await snapshotResource('lim-4'))?.status?.readyToUse, true);
      // The engine's own answer: 409 naming the limit.
      const direct = await fetch(`${control}/v1/snapshots`, { method: 'POST', body: JSON.stringify({ name: 'direct-4' }) });
      assert.equal(direct.status, 409);
      assert.match(((await direct.json()) as { message: string }).message, /snapshotMaxCount is 3/);

      await setCount(5);
      // The snapshot controller asks for lim-4 again (every 5 s while refused): taken now.
      await waitFor('lim-4 taken after the limit was raised', async () => {
        const s = await snapshotResource('lim-4');
        return s?.status?.readyToUse === true && s.status.error === undefined ? true : undefined;
      }, 30_000);
      await takeSnapshot('lim-5');
      assert.deepEqual(await limitsInForce(), { maxCount: 5, maxSizeBytes: 0 });

      const engineAfter = await getEngine();
      assert.equal(engineAfter.status?.pid, pid, 'the same engine process');
      assert.equal(startTimeOf(pid), startTime, 'the same engine process (not a recycled pid)');
      assert.equal(engineAfter.spec.epoch, engine.spec.epoch, 'no new attach');
      assert.equal((await getVolume()).status?.state, 'attached');
      const agentLog = cluster.agents.get('node-1')?.output() ?? '';
      assert.equal(agentLog.match(new RegExp(`started engine ${engineName} `, 'g'))?.length, 1, 'the agent started the engine once');
      assert.match(agentLog, new RegExp(`engine ${engineName}: snapshot limits now maxCount 5`));
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
