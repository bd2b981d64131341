// Recurring jobs end to end on one host: a node agent, the manager and `shorthorn api`, all real
// processes, the embedded store, a real volume written with qemu-io. Schedules use six-field cron
// (seconds first) so nothing waits minutes.
// 1. A snapshot-force-create job with retain 3 (made and joined through the CLI) runs every 2 s: it keeps
//    exactly the newest three of its own snapshots in the engine, and a user's snapshot and
//    another job's stay. The manager is killed with SIGKILL while a run is recorded as running;
//    the restarted manager resumes that run: no slot gets two snapshots, run numbers have no gap
//    or repeat, retention is right afterwards. A `snapshot` job skips the volume while nothing
//    is written since its last snapshot, and takes one after a write.
// 2. A backup job with full-backup-interval 2 to a directory target: full and incremental backups
//    alternate as asked (checked in the target's backup.cfg), retain 2 backups.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BackupStore } from '../../src/backup/backup-store.ts';
import { openBackupTarget } from '../../src/backup/open-backup-target.ts';
import type { Backup } from '../../src/control/resources/backup.ts';
import type { Engine } from '../../src/control/resources/engine.ts';
import type { RecurringJob } from '../../src/control/resources/recurring-job.ts';
import type { Snapshot } from '../../src/control/resources/snapshot.ts';
import { artifactJobLabel, artifactSlotLabel } from '../../src/control/recurring/job-artifacts.ts';
import { run, shorthornBin, startDaemon, stopAll, waitFor, withTempDir } from '../harness/daemon.ts';
import { startLocalCluster, type LocalCluster } from '../harness/local-cluster.ts';

after(stopAll);

interface EngineTree {
  snapshots: { name: string; parent: string | null; removed: boolean; labels?: Record<string, string> }[];
}

interface Api {
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }>;
  cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

async function startApi(storeDir: string): Promise<Api> {
  const daemon = await startDaemon({ args: ['api', '--store', `embedded:${storeDir}`, '--port', '0'], readyPattern: /listening on (http:\/\/127\.0\.0\.1:\d+)/, timeoutMs: 60_000 });
  const url = daemon.ready[1] ?? '';
  const tokenFile = join(storeDir, 'api-token');
  const token = (await readFile(tokenFile, 'utf8')).trim();
  return {
    call: async (method, path, body) => {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    },
    cli: (...args) => run(process.execPath, [shorthornBin, ...args, '--api', url, '--token-file', tokenFile], { allowFailure: true }),
  };
}

async function ok(api: Api, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const answer = await api.call(method, path, body);
  assert.ok(answer.status < 300, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

async function withCluster(prefix: string, body: (context: { dir: string; cluster: LocalCluster; api: Api; storeDir: string }) => Promise<void>): Promise<void> {
  await withTempDir(prefix, async (dir) => {
    let cluster: LocalCluster | undefined;
    // Where `volume attach --mount` records its mounts; the manager (started below, with this
    // process's environment) reads it for filesystem-trim.
    process.env['SHORTHORN_RUN_DIR'] = join(dir, 'run');
    try {
      cluster = await startLocalCluster({ dir, nodes: ['node-1'] });
      const storeDir = join(dir, 'store');
      await body({ dir, cluster, api: await startApi(storeDir), storeDir });
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

async function attachedVolume(api: Api, cluster: LocalCluster, name: string): Promise<{ uri: string; control: string }> {
  await ok(api, 'POST', '/v1/volumes', { name, size: '32Mi', numberOfReplicas: 1 });
  await waitFor(`${name} detached`, async () => ((await ok(api, 'GET', `/v1/volumes/${name}`))['status'] as { state?: string } | undefined)?.state === 'detached' ? true : undefined, 60_000);
  await ok(api, 'POST', `/v1/volumes/${name}?action=attach`, { hostId: 'node-1' });
  await waitFor(`${name} attached`, async () => {
    const status = (await ok(api, 'GET', `/v1/volumes/${name}`))['status'] as { state?: string; robustness?: string } | undefined;
    return status?.state === 'attached' && status.robustness === 'healthy' ? true : undefined;
  }, 90_000);
  const engine = (await cluster.store.get('Engine', `${name}-e-0`)) as Engine;
  return { uri: engine.status!.endpoint!, control: `http://127.0.0.1:${engine.status!.port!}` };
}

const getJob = async (cluster: LocalCluster, name: string): Promise<RecurringJob> => (await cluster.store.get('RecurringJob', name)) as RecurringJob;

/** Stop a job's schedule (a date that does not come soon) and wait until no run is going. */
async function pause(api: Api, cluster: LocalCluster, job: RecurringJob): Promise<RecurringJob> {
  const { spec } = job;
  await ok(api, 'PUT', `/v1/recurringjobs/${job.metadata.name}`, { ...spec, cron: '0 0 1 1 *' });
  return waitFor(`${job.metadata.name} idle`, async () => {
    const current = await getJob(cluster, job.metadata.name);
    return current.spec.cron === '0 0 1 1 *' && current.status?.currentRun === undefined ? current : undefined;
  }, 60_000);
}

test('a snapshot job with retain 3 keeps the newest three of its own; a manager killed mid-run resumes the run; snapshot skips an unchanged volume', { timeout: 600_000 }, async () => {
  await withCluster('recurring-snap', async ({ cluster, api, storeDir }) => {
    const { uri, control } = await attachedVolume(api, cluster, 'vol-r');
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 4M', '-c', 'flush', uri]);
    await ok(api, 'POST', '/v1/volumes/vol-r?action=snapshotCreate', { name: 'users-snap', labels: { [artifactJobLabel]: 'snap3' } });
    await waitFor('users-snap ready', async () => ((await cluster.store.get('Snapshot', 'users-snap')) as Snapshot).status?.readyToUse === true ? true : undefined, 30_000);

    // Force-create: the volume is not written between runs, and `snapshot` would skip it.
    const created = await api.cli('job', 'create', 'snap3', '--task', 'snapshot-force-create', '--cron', '*/2 * * * * *', '--retain', '3', '--label', 'tier=gold');
    assert.equal(created.code, 0, created.stderr);
    const joined = await api.cli('volume', 'job', 'add', 'vol-r', 'snap3');
    assert.equal(joined.code, 0, joined.stderr);
    const listed = await api.cli('volume', 'job', 'list', 'vol-r', '--json');
    assert.deepEqual((JSON.parse(listed.stdout) as { data: { name: string }[] }).data.map((e) => e.name), ['snap3']);

    // Kill the manager while a run is recorded as running (after a few runs have happened).
    await waitFor('three runs done', async () => ((await getJob(cluster, 'snap3')).status?.executionCount ?? 0) >= 3 ? true : undefined, 90_000);
    const interrupted = await waitFor('a run in progress', async () => (await getJob(cluster, 'snap3')).status?.currentRun, 60_000);
    await cluster.manager.kill9();
    const left = (await getJob(cluster, 'snap3')).status!;
    console.log(`manager killed during run ${interrupted.number}; recorded: count ${left.executionCount}, current run ${JSON.stringify(left.currentRun)}`);
    // A loaded machine (the whole suite on two cores) can take long to load the manager's modules.
    const manager = await startDaemon({ args: ['manager', '--store', `embedded:${storeDir}`, '--id', 'mgr-1'], readyPattern: /manager running/, timeoutMs: 120_000 });
    await waitFor('two more runs after the restart', async () => ((await getJob(cluster, 'snap3')).status?.executionCount ?? 0) >= interrupted.number + 2 ? true : undefined, 90_000);
    if (left.currentRun !== undefined) assert.match(manager.output(), new RegExp(`resuming run ${left.currentRun.number}`));

    const job = await pause(api, cluster, await getJob(cluster, 'snap3'));
    assert.equal(job.status?.lastRunResult, 'Succeeded', job.status?.lastError);
    // Every run number was started once, across both managers: none repeated, none skipped.
    const started = [...`${cluster.manager.output()}\n${manager.output()}`.matchAll(/recurring job snap3: run (\d+) started/g)].map((m) => Number(m[1]));
    const count = job.status?.executionCount ?? 0;
    assert.deepEqual(started, Array.from({ length: count }, (_, i) => i + 1), 'run numbers started once each');
    const shown = await api.cli('job', 'get', 'snap3');
    assert.match(shown.stdout, /vol-r: snapshot snap3-/);

    // The engine's chain: every snapshot the job made that is not removed, one per slot.
    const tree = (await (await fetch(`${control}/v1/snapshots`)).json()) as EngineTree;
    const resources = (await cluster.store.list('Snapshot')).items as Snapshot[];
    const ownLive = resources
      .filter((s) => s.metadata.labels?.[artifactJobLabel] === 'snap3' && s.metadata.deletionTimestamp === undefined && s.status?.markRemoved !== true)
      .sort((a, b) => Number(a.metadata.labels?.[artifactSlotLabel]) - Number(b.metadata.labels?.[artifactSlotLabel]));
    assert.equal(ownLive.length, 3, `exactly three of the job's own: ${ownLive.map((s) => s.metadata.name).join(', ')}`);
    const liveInEngine = new Set(tree.snapshots.filter((s) => !s.removed).map((s) => s.name));
    for (const snapshot of ownLive) assert.ok(liveInEngine.has(snapshot.metadata.name), `${snapshot.metadata.name} live in the engine`);
    const jobInEngine = tree.snapshots.filter((s) => !s.removed && s.labels?.['RecurringJob'] === 'snap3').map((s) => s.name).sort();
    assert.deepEqual(jobInEngine, ownLive.map((s) => s.metadata.name).sort(), 'the engine holds the same three, no stray one');
    assert.equal(tree.snapshots.find((s) => s.name === 'users-snap')?.removed, false, 'the user\'s snapshot stays');
    const newestSlot = Number(ownLive.at(-1)!.metadata.labels?.[artifactSlotLabel]) * 1000;
    assert.equal(new Date(newestSlot).toISOString(), job.status?.lastScheduledAt, 'the newest kept is the last run\'s');
    assert.deepEqual((ownLive[0]!.spec.labels ?? {})['tier'], 'gold');

    // `snapshot` skips the volume while nothing is written since its last snapshot (the engine's
    // head is empty), and takes one once something is.
    await ok(api, 'POST', '/v1/recurringjobs', { name: 'lazy', task: 'snapshot', cron: '0 0 1 1 *', retain: 2, groups: ['default'] });
    await ok(api, 'POST', '/v1/volumes/vol-r?action=recurringJobAdd', { name: 'default', isGroup: true });
    const lazyRun = async (count: number): Promise<string> => {
      await ok(api, 'POST', '/v1/recurringjobs/lazy?action=runNow', {});
      const done = await waitFor(`lazy run ${count}`, async () => {
        const current = await getJob(cluster, 'lazy');
        return current.status?.executionCount === count && current.status.currentRun === undefined && current.status.lastRunFinishedAt !== undefined ? current : undefined;
      }, 60_000);
      return done.status?.volumes?.['vol-r'] ?? '';
    };
    assert.match(await lazyRun(1), /^skipped: nothing written since the last snapshot/);
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x33 0 1M', '-c', 'flush', uri]);
    assert.match(await lazyRun(2), /^snapshot lazy-/);
  });
});

test('a backup job with full-backup-interval 2 alternates incremental and full backups to a directory target, keeping 2', { timeout: 600_000 }, async () => {
  await withCluster('recurring-backup', async ({ dir, cluster, api }) => {
    const target = join(dir, 'backups');
    await ok(api, 'PUT', '/v1/settings/backup-target', { value: target });
    const { uri } = await attachedVolume(api, cluster, 'vol-b');
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x22 0 6M', '-c', 'flush', uri]);
    await ok(api, 'POST', '/v1/recurringjobs', {
      name: 'bk', task: 'backup', cron: '*/4 * * * * *', retain: 2, concurrency: 1, groups: ['default'], parameters: { 'full-backup-interval': '2' },
    });
    await waitFor('four backup runs', async () => ((await getJob(cluster, 'bk')).status?.executionCount ?? 0) >= 4 ? true : undefined, 240_000);
    const job = await pause(api, cluster, await getJob(cluster, 'bk'));
    assert.equal(job.status?.lastRunResult, 'Succeeded', `${job.status?.lastError} ${JSON.stringify(job.status?.volumes)}`);
    const count = job.status.executionCount!;

    const backups = ((await cluster.store.list('Backup')).items as Backup[])
      .filter((b) => b.metadata.labels?.[artifactJobLabel] === 'bk' && b.metadata.deletionTimestamp === undefined)
      .sort((a, b) => Number(a.metadata.labels?.[artifactSlotLabel]) - Number(b.metadata.labels?.[artifactSlotLabel]));
    assert.equal(backups.length, 2, `retain 2: ${backups.map((b) => b.metadata.name).join(', ')}`);
    // The last two runs are count-1 and count: one of them even (full), one odd (incremental).
    const expected = [count - 1, count].map((n) => (n % 2 === 0 ? 'full' : 'incremental'));
    assert.deepEqual(backups.map((b) => b.spec.backupMode), expected);
    const store = new BackupStore(await openBackupTarget(`vfs://${target}`));
    try {
      const paths = await store.paths('vol-b');
      const kept = backups.map((b) => b.metadata.name).sort();
      await waitFor('older backups deleted from the target', async () => {
        const inTarget = (await store.listBackups(paths)).map((b) => b.name).sort();
        return JSON.stringify(inTarget) === JSON.stringify(kept) ? true : undefined;
      }, 60_000);
      for (const backup of backups) {
        assert.equal(backup.status?.state, 'Completed');
        const config = await store.loadBackup(paths, backup.metadata.name);
        console.log(`${backup.metadata.name}: asked ${backup.spec.backupMode}, incremental ${config.isIncremental}, new ${config.newlyUploadedDataSize}, re-uploaded ${config.reUploadedDataSize}`);
        assert.equal(config.isIncremental, backup.spec.backupMode === 'incremental', `${backup.metadata.name} in the target`);
      }
    } finally {
      await store.target.close();
    }
    // Only the newest backup's snapshot stays (auto-cleanup-recurring-job-backup-snapshot).
    const snapshots = ((await cluster.store.list('Snapshot')).items as Snapshot[]).filter(
      (s) => s.metadata.labels?.[artifactJobLabel] === 'bk' && s.metadata.deletionTimestamp === undefined && s.status?.markRemoved !== true,
    );
    assert.deepEqual(snapshots.map((s) => s.metadata.name), [backups.at(-1)!.spec.snapshotName]);
  });
});

test('a filesystem-trim job trims the mounted ext4 filesystem of a volume', { timeout: 600_000 }, async () => {
  await withCluster('recurring-trim', async ({ dir, cluster, api }) => {
    await ok(api, 'POST', '/v1/volumes', { name: 'vol-t', size: '64Mi', numberOfReplicas: 1 });
    await waitFor('vol-t detached', async () => ((await ok(api, 'GET', '/v1/volumes/vol-t'))['status'] as { state?: string } | undefined)?.state === 'detached' ? true : undefined, 60_000);
    const mountDir = join(dir, 'mnt');
    const attached = await api.cli('volume', 'attach', 'vol-t', '--node', 'node-1', '--mount', mountDir, '--format', 'ext4', '--timeout', '120');
    assert.equal(attached.code, 0, `${attached.stdout}\n${attached.stderr}`);
    try {
      await ok(api, 'POST', '/v1/recurringjobs', { name: 'trim', task: 'filesystem-trim', cron: '0 0 1 1 *', retain: 0 });
      assert.equal((await api.cli('volume', 'job', 'add', 'vol-t', 'trim')).code, 0);
      // Data written and deleted: the filesystem has free blocks the volume still holds.
      await run('dd', ['if=/dev/urandom', `of=${join(mountDir, 'junk')}`, 'bs=1M', 'count=16', 'conv=fsync']);
      await run('rm', [join(mountDir, 'junk')]);
      await run('sync', []);
      const ran = await api.cli('job', 'run-now', 'trim');
      assert.equal(ran.code, 0, ran.stderr);
      const job = await waitFor('trim run finished', async () => {
        const current = await getJob(cluster, 'trim');
        return current.status?.executionCount === 1 && current.status.lastRunFinishedAt !== undefined && current.status.currentRun === undefined ? current : undefined;
      }, 60_000);
      const outcome = job.status?.volumes?.['vol-t'] ?? '';
      console.log(`trim outcome: ${outcome}`);
      assert.equal(job.status?.lastRunResult, 'Succeeded', job.status?.lastError);
      assert.match(outcome, /^fstrim .*trimmed/);
    } finally {
      const detached = await api.cli('volume', 'detach', 'vol-t', '--wait');
      assert.equal(detached.code, 0, `${detached.stdout}\n${detached.stderr}`);
    }
  });
});
