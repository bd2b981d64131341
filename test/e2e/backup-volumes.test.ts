// Backups of real volumes through the API and the CLI, end to end: two node agents, the manager
// and `shorthorn api` as real processes; data written over NBD; a snapshot taken through the
// API; `shorthorn backup create` waits for Completed; the target listed without any cluster (the
// library on the same directory or bucket) shows it, and a backup another "cluster" wrote there
// appears as resources; `shorthorn backup restore --to` restores into a new volume that reads back
// bit for bit; deleting a backup removes it from the target while the other still restores.
// Once with a directory target, once with Ceph RGW (credentials in a 0600 secret file).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { BackupStore } from '../../src/backup/backup-store.ts';
import { createBackup } from '../../src/backup/create-backup.ts';
import { deleteBackup } from '../../src/backup/delete-backup.ts';
import { openBackupTarget } from '../../src/backup/open-backup-target.ts';
import { fastLock, seededVolume, testSeed } from '../../src/backup/testing/backup-fixture.ts';
import type { Engine } from '../../src/control/resources/engine.ts';
import { SeededRandom } from '../../src/lib/random.ts';
import { run, shorthornBin, startDaemon, stopAll, waitFor, withTempDir } from '../harness/daemon.ts';
import { startCephRgw } from '../harness/ceph-rgw.ts';
import { freePort } from '../harness/free-port.ts';
import { startLocalCluster, type LocalCluster } from '../harness/local-cluster.ts';

after(stopAll);

const seed = testSeed();
const mib = 1024 * 1024;
const sizeBytes = 32 * mib;

interface Api {
  readonly url: string;
  readonly tokenFile: string;
  call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

async function startApi(dir: string): Promise<Api> {
  const port = await freePort();
  const storeDir = join(dir, 'store');
  await startDaemon({ args: ['api', '--store', `embedded:${storeDir}`, '--port', String(port)], readyPattern: /listening on/, timeoutMs: 120_000 });
  const url = `http://127.0.0.1:${port}`;
  const tokenFile = join(storeDir, 'api-token');
  const token = (await readFile(tokenFile, 'utf8')).trim();
  return {
    url,
    tokenFile,
    call: async <T,>(method: string, path: string, body?: unknown) => {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: response.status, body: (await response.json()) as T };
    },
    cli: (...args: string[]) => run(process.execPath, [shorthornBin, ...args, '--api', url, '--token-file', tokenFile], { allowFailure: true }),
  };
}

async function ok<T = Record<string, unknown>>(api: Api, method: string, path: string, body?: unknown): Promise<T> {
  const answer = await api.call<T>(method, path, body);
  assert.ok(answer.status < 300, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

type View = { id: string; metadata: { labels?: Record<string, string> }; status?: Record<string, unknown> };

async function attached(api: Api, cluster: LocalCluster, volume: string, node: string): Promise<string> {
  await ok(api, 'POST', `/v1/volumes/${volume}?action=attach`, { hostId: node });
  await waitFor(`${volume} attached`, async () => ((await ok<View>(api, 'GET', `/v1/volumes/${volume}`)).status?.['state'] === 'attached' ? true : undefined), 90_000);
  return ((await cluster.store.get('Engine', `${volume}-e-0`)) as Engine).status!.endpoint!;
}

async function detached(api: Api, volume: string): Promise<void> {
  await ok(api, 'POST', `/v1/volumes/${volume}?action=detach`, {});
  await waitFor(`${volume} detached`, async () => ((await ok<View>(api, 'GET', `/v1/volumes/${volume}`)).status?.['state'] === 'detached' ? true : undefined), 60_000);
}

async function image(dir: string, uri: string, name: string): Promise<string> {
  const file = join(dir, `${name}.img`);
  await run('nbdcopy', [uri, file]);
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

async function roundTrip(options: {
  dir: string;
  cluster: LocalCluster;
  api: Api;
  /** The backup-target setting value. */
  target: string;
  /** The same target as the library opens it, for the cluster-less listing. */
  openStore: () => Promise<BackupStore>;
}): Promise<void> {
  const { dir, cluster, api } = options;
  const random = new SeededRandom(seed);
  let last = Date.now();
  const step = (what: string): void => {
    console.log(`${what}: ${Date.now() - last} ms`);
    last = Date.now();
  };
  await ok(api, 'PUT', '/v1/settings/backupstore-poll-interval', { value: '2' });
  await ok(api, 'PUT', '/v1/settings/backup-target', { value: options.target });
  await ok(api, 'POST', '/v1/volumes', { name: 'vol-b', size: '32Mi', numberOfReplicas: 2 });
  await waitFor('vol-b detached', async () => ((await ok<View>(api, 'GET', '/v1/volumes/vol-b')).status?.['state'] === 'detached' ? true : undefined), 60_000);
  const uri = await attached(api, cluster, 'vol-b', 'node-1');
  step('created and attached');

  // Seeded data with holes: 2 MiB blocks of noise, of text, or left empty.
  const data = new Uint8Array(sizeBytes);
  for (let block = 0; block < sizeBytes / (2 * mib); block++) {
    const kind = random.int(3);
    const slice = data.subarray(block * 2 * mib, (block + 1) * 2 * mib);
    if (kind === 0) random.fill(slice);
    else if (kind === 1) slice.set(new TextEncoder().encode(`block ${block} seed ${seed} `.repeat(100_000)).subarray(0, slice.length));
  }
  const source = join(dir, 'source.img');
  await writeFile(source, data);
  await run('nbdcopy', [source, uri]);
  const first = await image(dir, uri, 'first');
  step('data written');

  await ok(api, 'POST', '/v1/volumes/vol-b?action=snapshotCreate', { name: 'snap-1' });
  await waitFor('snap-1 ready', async () => ((await ok<View>(api, 'GET', '/v1/snapshots/snap-1')).status?.['readyToUse'] === true ? true : undefined), 30_000);
  const created = await api.cli('backup', 'create', 'vol-b', 'snap-1', '--json', '--timeout', '180');
  assert.equal(created.code, 0, `backup create: ${created.stderr}`);
  const backup1 = JSON.parse(created.stdout) as View;
  assert.equal(backup1.status?.['state'], 'Completed');
  assert.match(String(backup1.status?.['url']), /\?backup=backup-[0-9a-f]{16}&volume=vol-b$/);
  step('snapshot and first backup');

  // Listed in the backup volume (the mirror), and in the target without any cluster.
  await waitFor('backup volume vol-b mirrored', async () => {
    const list = await api.call<{ data: View[] }>('POST', '/v1/backupvolumes/vol-b?action=backupList', {});
    return list.status === 200 && list.body.data.some((b) => b.id === backup1.id) ? true : undefined;
  }, 30_000);
  const store = await options.openStore();
  const paths = await store.paths('vol-b');
  assert.deepEqual((await store.listBackups(paths)).map((b) => [b.name, b.state]), [[backup1.id, 'complete']]);
  step('mirrored');

  // A backup written by another cluster shows up after a sync.
  const foreign = seededVolume(4, new SeededRandom(seed + 1));
  foreign.snapshot('s1');
  await createBackup(store, foreign.reader('s1'), { volumeName: 'vol-foreign', backupName: 'backup-00000000000f0e1a', lock: fastLock });
  await ok(api, 'POST', '/v1/backuptargets/default?action=backupTargetSync', {});
  await waitFor('foreign backup mirrored', async () => {
    const got = await api.call<View>('GET', '/v1/backups/backup-00000000000f0e1a');
    return got.status === 200 && got.body.status?.['state'] === 'Completed' && got.body.metadata.labels?.['shorthorn.io/backup-volume'] === 'vol-foreign' ? true : undefined;
  }, 30_000);
  step('foreign backup mirrored');

  // Change a block, second backup (incremental).
  await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 6M 2M', '-c', 'flush', uri]);
  const second = await image(dir, uri, 'second');
  assert.notEqual(second, first);
  await ok(api, 'POST', '/v1/volumes/vol-b?action=snapshotCreate', { name: 'snap-2' });
  await waitFor('snap-2 ready', async () => ((await ok<View>(api, 'GET', '/v1/snapshots/snap-2')).status?.['readyToUse'] === true ? true : undefined), 30_000);
  const created2 = await api.cli('backup', 'create', 'vol-b', 'snap-2', '--json', '--timeout', '180');
  assert.equal(created2.code, 0, `backup create: ${created2.stderr}`);
  const backup2 = JSON.parse(created2.stdout) as View;
  assert.equal(backup2.status?.['state'], 'Completed');
  step('second backup');

  // Restore the first into a new volume: attach is refused until it is done, then bit for bit.
  const restored = await api.cli('backup', 'restore', backup1.id, '--to', 'vol-r1', '--replicas', '2', '--timeout', '180');
  assert.equal(restored.code, 0, `restore: ${restored.stdout}\n${restored.stderr}`);
  assert.equal(await image(dir, await attached(api, cluster, 'vol-r1', 'node-2'), 'r1'), first, 'vol-r1 holds snap-1 bit for bit');
  await detached(api, 'vol-r1');
  step('restore 1 and compare');

  // Verify, then delete the first backup: gone from the target, the second still restores.
  const verified = await api.cli('backup', 'verify', backup2.id, '--json');
  assert.equal(verified.code, 0, verified.stderr);
  assert.equal((JSON.parse(verified.stdout) as { ok: boolean }).ok, true);
  const deleted = await api.cli('backup', 'delete', backup1.id, '--timeout', '120');
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.deepEqual((await store.listBackups(paths)).map((b) => b.name), [backup2.id]);
  step('verify and delete');
  const restored2 = await api.cli('backup', 'restore', backup2.id, '--to', 'vol-r2', '--replicas', '1', '--timeout', '180');
  assert.equal(restored2.code, 0, `restore: ${restored2.stdout}\n${restored2.stderr}`);
  assert.equal(await image(dir, await attached(api, cluster, 'vol-r2', 'node-1'), 'r2'), second, 'vol-r2 holds snap-2 bit for bit');
  step('restore 2 and compare');
  const missing = await api.cli('backup', 'get', backup1.id);
  assert.equal(missing.code, 2, 'a deleted backup is not found');

  // A backup deleted from the target by someone else leaves the cluster at the next sync.
  await deleteBackup(store, { volumeName: 'vol-foreign', backupName: 'backup-00000000000f0e1a', lock: fastLock });
  await ok(api, 'POST', '/v1/backuptargets/default?action=backupTargetSync', {});
  await waitFor('foreign backup unmirrored', async () => ((await api.call('GET', '/v1/backups/backup-00000000000f0e1a')).status === 404 ? true : undefined), 60_000);
  assert.equal((await api.call('GET', '/v1/backupvolumes/vol-foreign')).status, 200, 'its backup volume is still in the target');
  step('foreign backup unmirrored');

  // Deleting a backup volume deletes it from the target with its backups.
  await ok(api, 'DELETE', '/v1/backupvolumes/vol-foreign');
  await waitFor('vol-foreign gone', async () => ((await api.call('GET', '/v1/backupvolumes/vol-foreign')).status === 404 ? true : undefined), 120_000);
  assert.deepEqual(await store.listVolumes(), ['vol-b']);
  step('backup volume deleted');
  await store.target.close();
}

async function withCluster(prefix: string, body: (dir: string, cluster: LocalCluster, api: Api) => Promise<void>): Promise<void> {
  await withTempDir(prefix, async (dir) => {
    let cluster: LocalCluster | undefined;
    try {
      cluster = await startLocalCluster({ dir, nodes: ['node-1', 'node-2'] });
      const api = await startApi(dir);
      await body(dir, cluster, api);
    } catch (error) {
      process.stderr.write(`${cluster?.dump() ?? 'no cluster'}\n`);
      throw error;
    } finally {
      await stopAll();
      cluster?.killInstances();
      await cluster?.store.close();
    }
  });
}

test(`backups of a real volume to a directory target: backup, mirror, restore, delete (seed ${seed})`, { timeout: 600_000 }, async () => {
  await withCluster('backup-vfs', async (dir, cluster, api) => {
    const target = join(dir, 'backups');
    await roundTrip({ dir, cluster, api, target, openStore: async () => new BackupStore(await openBackupTarget(`vfs://${target}`)) });
  });
});

test(`backups of a real volume to Ceph RGW with credentials from a secret file (seed ${seed})`, { timeout: 900_000 }, async () => {
  const rgw = await startCephRgw();
  try {
    const client = new S3Client({ region: 'us-east-1', endpoint: rgw.endpoint, forcePathStyle: true, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey } });
    await client.send(new CreateBucketCommand({ Bucket: 'shorthorn-e2e' }));
    client.destroy();
    const credentials = { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey, AWS_ENDPOINTS: rgw.endpoint };
    await withCluster('backup-rgw', async (dir, cluster, api) => {
      const secret = join(dir, 'store', 'secrets', 's3-secret');
      await run('mkdir', ['-p', join(dir, 'store', 'secrets')]);
      await writeFile(secret, Object.entries(credentials).map(([k, v]) => `${k}=${v}`).join('\n'));
      await chmod(secret, 0o644);
      await ok(api, 'PUT', '/v1/settings/backup-target-credential-secret', { value: 's3-secret' });
      await ok(api, 'PUT', '/v1/settings/backup-target', { value: 's3://shorthorn-e2e@us-east-1/cluster-a/' });
      // A group-readable secret is refused: the target is unavailable and says why.
      await waitFor('target unavailable: insecure secret', async () => {
        const target = await ok<View>(api, 'GET', '/v1/backuptargets/default');
        const condition = (target.status?.['conditions'] as { message?: string }[] | undefined)?.[0];
        return target.status?.['available'] === false && /chmod 600/.test(condition?.message ?? '') ? true : undefined;
      }, 30_000);
      assert.doesNotMatch(cluster.manager.output(), new RegExp(rgw.secretAccessKey), 'the secret never reaches the log');
      await chmod(secret, 0o600);
      await roundTrip({
        dir, cluster, api, target: 's3://shorthorn-e2e@us-east-1/cluster-a/',
        openStore: async () => new BackupStore(await openBackupTarget('s3://shorthorn-e2e@us-east-1/cluster-a/', { s3: { env: credentials } })),
      });
      assert.doesNotMatch(cluster.manager.output(), new RegExp(rgw.secretAccessKey), 'the secret never reaches the log');
    });
  } finally {
    await rgw.stop();
  }
});

test(`an engine killed during a backup: the Backup ends in Error, never Completed; the next backup completes (seed ${seed})`, { timeout: 900_000 }, async () => {
  await withCluster('backup-kill', async (dir, cluster, api) => {
    const target = join(dir, 'backups');
    await ok(api, 'PUT', '/v1/settings/backup-target', { value: target });
    await ok(api, 'PUT', '/v1/settings/backup-concurrent-limit', { value: '1' });
    // Incompressible data through gzip, one block at a time: a backup long enough to kill.
    await ok(api, 'POST', '/v1/volumes', { name: 'vol-k', size: '256Mi', numberOfReplicas: 1, backupCompressionMethod: 'gzip' });
    await waitFor('vol-k detached', async () => ((await ok<View>(api, 'GET', '/v1/volumes/vol-k')).status?.['state'] === 'detached' ? true : undefined), 60_000);
    const uri = await attached(api, cluster, 'vol-k', 'node-1');
    const data = new SeededRandom(seed + 2).fill(new Uint8Array(256 * mib));
    await writeFile(join(dir, 'k.img'), data);
    await run('nbdcopy', [join(dir, 'k.img'), uri]);
    await ok(api, 'POST', '/v1/volumes/vol-k?action=snapshotCreate', { name: 'snap-k' });
    await waitFor('snap-k ready', async () => ((await ok<View>(api, 'GET', '/v1/snapshots/snap-k')).status?.['readyToUse'] === true ? true : undefined), 60_000);
    const started = await api.cli('backup', 'create', 'vol-k', 'snap-k', '--no-wait', '--json');
    assert.equal(started.code, 0, started.stderr);
    const name = (JSON.parse(started.stdout) as View).id;
    await waitFor('backup in progress', async () => ((await ok<View>(api, 'GET', `/v1/backups/${name}`)).status?.['state'] === 'InProgress' ? true : undefined), 120_000);
    const engine = (await cluster.store.get('Engine', 'vol-k-e-0')) as Engine;
    process.kill(engine.status!.pid!, 'SIGKILL');
    const failed = await waitFor('backup failed', async () => {
      const view = await ok<View>(api, 'GET', `/v1/backups/${name}`);
      assert.notEqual(view.status?.['state'], 'Completed', 'a backup whose engine died must not complete');
      return view.status?.['state'] === 'Error' ? view : undefined;
    }, 120_000);
    assert.match(String(failed.status?.['error']), /stopped|restarted|no longer knows/);
    const store = new BackupStore(await openBackupTarget(`vfs://${target}`));
    const listed = (await store.listBackups(await store.paths('vol-k'))).find((b) => b.name === name);
    assert.notEqual(listed?.state, 'complete', 'nothing of the killed backup lists as complete');
    await store.target.close();
    // The agent restarts the engine; a new backup of the same snapshot completes.
    await waitFor('vol-k attached again', async () => {
      const e = (await cluster.store.get('Engine', 'vol-k-e-0')) as Engine;
      return e.status?.currentState === 'running' && e.status.pid !== engine.status!.pid ? true : undefined;
    }, 120_000);
    const again = await api.cli('backup', 'create', 'vol-k', 'snap-k', '--json', '--timeout', '300');
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as View).status?.['state'], 'Completed');
    const afterKill = await api.cli('backup', 'get', name, '--json');
    assert.equal((JSON.parse(afterKill.stdout) as View).status?.['state'], 'Error', 'the failed backup stays failed');
  });
});
