// The snapshot data check end to end on one host: three node agents, the manager and `shorthorn
// api`, all real processes, the embedded store. A 3-replica volume is written with qemu-io over
// the engine's NBD socket and snapshotted; a snapshotCheck through the REST API finds it clean
// (status.dataIntegrity). Then one byte of one replica's sealed layer is flipped on disk behind its
// back (bit rot its stored checksums do not show); the next snapshotCheck reports the mismatch
// by replica name, the engine fails that replica (3 rw replicas: a majority), the manager rebuilds
// it, the volume is healthy again with the data intact, and a third check, through the CLI
// (`shorthorn snapshot check --wait`), is clean. The cron path
// is covered by src/control/controllers/data-integrity-controller.test.ts (the setting takes
// five-field cron only, a minute at the least: too slow for this test).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Engine } from '../../src/control/resources/engine.ts';
import type { Replica } from '../../src/control/resources/replica.ts';
import type { Volume, VolumeDataIntegrityStatus } from '../../src/control/resources/volume.ts';
import { run, shorthornBin, stopAll, waitFor, withTempDir } from '../harness/daemon.ts';
import { startApiDaemon } from '../harness/api-daemon.ts';
import { startLocalCluster, type LocalCluster } from '../harness/local-cluster.ts';
import { flipSealedByte } from '../harness/sealed-layer.ts';

after(stopAll);

const volumeName = 'vol-check';
const mib = 1024 * 1024;
const nodes = ['node-1', 'node-2', 'node-3'];
const pattern = 0x5c;
/** The pattern is written at 4-12 MiB; the flipped byte is in the second 2 MiB checksum chunk of it. */
const flipAtBytes = 5 * mib + 12345;

const flipByte = (replicaDir: string): Promise<void> => flipSealedByte(replicaDir, flipAtBytes, pattern);

test('snapshotCheck finds a flipped byte in one replica, which is failed and rebuilt; the data reads back right', async () => {
  await withTempDir('integrity-e2e', async (dir) => {
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
      const replicas = async (): Promise<Replica[]> => ((await store.list('Replica')).items as Replica[]).filter((r) => r.spec.volumeName === volumeName);
      const healthy = async (): Promise<boolean> => {
        const v = await getVolume();
        const modes = Object.values((await getEngine()).status?.replicaModeMap ?? {});
        return v.status?.state === 'attached' && v.status.robustness === 'healthy' && modes.length === 3 && modes.every((m) => m === 'RW');
      };
      /** Ask for a check through the API and wait for its outcome in the volume status. */
      const check = async (what: string): Promise<VolumeDataIntegrityStatus> => {
        const view = await action('snapshotCheck');
        const request = (view['metadata'] as Volume['metadata']).annotations?.['shorthorn.io/snapshot-check-requested-at'];
        assert.ok(request !== undefined, JSON.stringify(view['metadata']));
        return waitFor(what, async () => {
          const status = (await getVolume()).status?.dataIntegrity;
          return status?.lastRequest === request && status.lastCheckAt !== undefined ? status : undefined;
        }, 60_000);
      };

      const created = await call('POST', '/v1/volumes', { name: volumeName, size: '32Mi', numberOfReplicas: 3 });
      assert.ok(created.status === 200 || created.status === 201, JSON.stringify(created.body));
      await waitFor('volume detached with its replicas placed', async () => ((await getVolume()).status?.state === 'detached' ? true : undefined), 30_000);
      const refused = await call('POST', `/v1/volumes/${volumeName}?action=snapshotCheck`, {});
      assert.equal(refused.status, 409, 'a detached volume offers no check');
      await action('attach', { hostId: 'node-1' });
      await waitFor('volume attached and healthy', async () => ((await healthy()) ? true : undefined), 60_000);
      const uri = (await getEngine()).status?.endpoint ?? '';
      assert.ok(uri.startsWith('nbd+unix://'), uri);
      await run('qemu-io', ['-f', 'raw', '-c', `write -P ${pattern} 4M 8M`, '-c', 'flush', uri]);
      await action('snapshotCreate', { name: 's1' });
      await waitFor('s1 taken', async () => {
        const answer = await call('GET', '/v1/snapshots/s1');
        return answer.status === 200 && (answer.body['status'] as { readyToUse?: boolean } | undefined)?.readyToUse === true ? true : undefined;
      }, 30_000);

      // A clean check: every replica's data read against its sums (computed now if not yet).
      const first = await check('the first check recorded');
      assert.equal(first.lastCheckResult, 'clean', JSON.stringify(first));
      assert.deepEqual([first.lastCheckTrigger, first.lastCheckMode], ['request', 'enabled']);
      assert.equal(first.bytesVerified, 3 * 8 * mib, JSON.stringify(first));

      // Rot one replica's sealed layer (not the one on the engine's node, for variety).
      const bad = (await replicas()).find((r) => r.spec.nodeID === 'node-2');
      assert.ok(bad?.spec.diskPath !== undefined && bad.spec.dataDirectoryName !== undefined, JSON.stringify(bad?.spec));
      await flipByte(join(bad.spec.diskPath, 'replicas', bad.spec.dataDirectoryName));
      const second = await check('the mismatch recorded');
      assert.equal(second.lastCheckResult, 'mismatch', JSON.stringify(second));
      assert.deepEqual(second.mismatchedReplicas, [bad.metadata.name]);
      assert.deepEqual(second.markedFailed, [bad.metadata.name]);
      assert.match(second.message ?? '', /data fails its replica's own checksum; replica\(s\) .* failed and will be rebuilt/);

      // The manager rebuilds the failed replica; the volume is whole again.
      await waitFor('the volume degraded, then healthy again after the rebuild', async () => {
        const engine = await getEngine();
        const rebuilt = Object.values(engine.status?.rebuildStatus ?? {}).some((r) => r.state === 'done');
        return rebuilt && (await healthy()) ? true : undefined;
      }, 90_000);
      const { stdout } = await run('qemu-io', ['-f', 'raw', '-c', `read -P ${pattern} 4M 8M`, uri]);
      assert.doesNotMatch(stdout, /Pattern verification failed/);
      // The third through the CLI: `snapshot check --wait` prints the outcome, exit 0 when clean.
      const cli = await run(process.execPath, [shorthornBin, 'snapshot', 'check', volumeName, '--wait', '--timeout', '60', '--api', api.url, '--token-file', join(storeDir, 'api-token')]);
      assert.match(cli.stdout, new RegExp(`^volume ${volumeName}: data check clean: \\d+ layer\\(s\\), \\d+ chunk\\(s\\) on 3 rw replica\\(s\\)`), cli.stdout);
      const third = (await getVolume()).status?.dataIntegrity;
      assert.equal(third?.lastCheckResult, 'clean', JSON.stringify(third));
      assert.deepEqual(third.markedFailed, []);
      assert.ok(third.lastRequest !== second.lastRequest);
    } catch (error) {
      if (cluster !== undefined) process.stderr.write(cluster.dump());
      throw error;
    } finally {
      cluster?.killInstances();
      await stopAll();
    }
  });
});
