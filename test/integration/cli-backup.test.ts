// `shorthorn backup` against a real `shorthorn api` process on the embedded store, with the
// Backup and BackupVolume resources the manager would write: tables, --json, --no-wait, and the
// exit codes scripts rely on (0 ok, 1 usage, 2 not found, 3 conflict, 6 timeout, 7 failed).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ProgressBar } from '../../src/cli/progress-bar.ts';
import { resourceExamples } from '../../src/control/resources/testing/resource-examples.ts';
import { openStore } from '../../src/control/store/open-store.ts';
import type { ResourceStore } from '../../src/control/store/resource-store.ts';
import { run, shorthornBin, startDaemon, stopAll, type Daemon } from '../harness/daemon.ts';

let dir: string;
let api: Daemon;
let url: string;
let store: ResourceStore;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shorthorn-cli-backup-'));
  api = await startDaemon({ args: ['api', '--store', `embedded:${dir}`, '--port', '0'], readyPattern: /listening on (http:\/\/127\.0\.0\.1:\d+)/, timeoutMs: 120_000 });
  url = api.ready[1] ?? '';
  store = openStore({ backend: 'embedded', dataDir: dir, pollIntervalMs: 5 });
  await store.create({ ...structuredClone(resourceExamples.Node), metadata: { name: 'node-1' } });
  assert.ok((await readFile(join(dir, 'api-token'), 'utf8')).length > 0);
  const url2 = 'vfs:///backups?backup=backup-00000000000000a1&volume=vol-a';
  await store.create({ apiVersion: 'shorthorn.io/v1', kind: 'BackupVolume', metadata: { name: 'vol-a' }, spec: {}, status: { size: 64 << 20, lastBackupName: 'backup-00000000000000a1', lastBackupAt: '2026-11-27T10:00:00Z' } });
  await store.create({
    apiVersion: 'shorthorn.io/v1', kind: 'Backup', metadata: { name: 'backup-00000000000000a1', labels: { 'shorthorn.io/backup-volume': 'vol-a' } },
    spec: { backupMode: 'incremental' }, status: { state: 'Completed', progress: 100, url: url2, volumeName: 'vol-a', snapshotName: 'snap-1', size: 4 << 20, volumeSize: 64 << 20 },
  });
  await store.create({
    apiVersion: 'shorthorn.io/v1', kind: 'Backup', metadata: { name: 'backup-00000000000000e1', labels: { 'shorthorn.io/backup-volume': 'vol-a' } },
    spec: { snapshotName: 'snap-2', backupMode: 'incremental' }, status: { state: 'Error', volumeName: 'vol-a', error: 'the engine restarted' },
  });
});
after(async () => {
  await api.stop();
  await stopAll();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(process.execPath, [shorthornBin, ...args, '--api', url, '--token-file', join(dir, 'api-token')], { allowFailure: true });
}

test('backup list, volumes and get: tables and JSON', async () => {
  const list = await cli('backup', 'list');
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^NAME\s+VOLUME\s+SNAPSHOT\s+STATE/);
  assert.match(list.stdout, /backup-00000000000000a1\s+vol-a\s+snap-1\s+Completed\s+100%\s+4 MiB/);
  const json = await cli('backup', 'ls', 'vol-a', '--json');
  assert.deepEqual((JSON.parse(json.stdout) as { id: string }[]).map((b) => b.id), ['backup-00000000000000a1', 'backup-00000000000000e1']);
  assert.deepEqual(JSON.parse((await cli('backup', 'list', 'vol-none', '--json')).stdout), []);
  const volumes = await cli('backup', 'volumes');
  assert.match(volumes.stdout, /vol-a\s+64 MiB\s+backup-00000000000000a1/);
  const got = await cli('backup', 'get', 'backup-00000000000000a1');
  assert.match(got.stdout, /url:\s+vfs:\/\/\/backups\?backup=backup-00000000000000a1&volume=vol-a/);
  assert.equal((await cli('backup', 'get', 'backup-ffffffffffffffff')).code, 2);
  assert.equal((await cli('backup', 'get', '../x')).code, 1);
});

test('backup create: usage errors, unknown volume, --no-wait --json', async () => {
  assert.equal((await cli('backup', 'create', 'vol-a', 'snap-1', '--mode', 'half')).code, 1);
  assert.equal((await cli('backup', 'create', 'vol-a', 'snap-1', '--timeout', 'soon')).code, 1);
  assert.equal((await cli('backup', 'create', 'vol-nope', 'snap-1')).code, 2);
  assert.equal((await cli('volume', 'create', 'vol-src', '--size', '64Mi', '--replicas', '1')).code, 0);
  const started = await cli('backup', 'create', 'vol-src', 'snap-1', '--no-wait', '--json', '--label', 'app=db');
  assert.equal(started.code, 0, started.stderr);
  const backup = JSON.parse(started.stdout) as { id: string; status: { state: string }; spec: { labels: Record<string, string> } };
  assert.equal(backup.status.state, 'Pending');
  assert.deepEqual(backup.spec.labels, { app: 'db' });
  // Nothing runs it here (no manager): waiting runs out of time, exit 6, the request stays.
  const waited = await cli('backup', 'create', 'vol-src', 'snap-1', '--timeout', '1');
  assert.equal(waited.code, 6, waited.stderr);
  assert.match(waited.stderr, /Pending/);
});

test('backup restore and verify: refused inputs and states', async () => {
  const failed = await cli('backup', 'restore', 'backup-00000000000000e1', '--to', 'vol-r');
  assert.equal(failed.code, 1, 'only a completed backup restores');
  assert.equal((await cli('backup', 'restore', 'backup-00000000000000a1')).code, 1, '--to is required');
  assert.equal((await cli('backup', 'restore', 'backup-00000000000000a1', '--to', 'Bad_Name')).code, 1);
  const restoring = await cli('backup', 'restore', 'backup-00000000000000a1', '--to', 'vol-r', '--no-wait', '--json');
  assert.equal(restoring.code, 0, restoring.stderr);
  const volume = JSON.parse(restoring.stdout) as { spec: { size: number; fromBackup: string } };
  assert.equal(volume.spec.size, 64 << 20, 'the size of the backed-up volume');
  assert.match(volume.spec.fromBackup, /backup=backup-00000000000000a1/);
  assert.equal((await cli('backup', 'restore', 'backup-00000000000000a1', '--to', 'vol-r')).code, 3, 'the name is taken');
  assert.equal((await cli('volume', 'attach', 'vol-r', '--node', 'node-1')).code, 3, 'attach waits for the restore');
  const verify = await cli('backup', 'verify', 'backup-00000000000000a1');
  assert.equal(verify.code, 3, `no backup target is set: ${verify.stderr}`);
  const deleted = await cli('backup', 'delete', 'backup-00000000000000e1', '--no-wait');
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal((await cli('backup', 'delete', 'backup-ffffffffffffffff', '--no-wait')).code, 2);
});

test('the progress bar', () => {
  assert.equal(ProgressBar.render('backup b', 42, 'InProgress', 10), 'backup b [####......]  42% InProgress');
  assert.equal(ProgressBar.render('x', 250, 'done', 4), 'x [####] 100% done');
  assert.equal(ProgressBar.render('x', -5, 'Pending', 4), 'x [....]   0% Pending');
});
