// The engine's backup job table over real replica stores and a real NBD server, with a runner
// the test controls (the backup library itself is covered by src/backup and the e2e test): 404
// and 409 before anything runs, states and progress, the pin held exactly as long as the job,
// bounded job count, and a restore that refuses to start with a client connected and refuses
// clients while it runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '../../src/lib/clock.ts';
import { Engine } from '../../src/engine/engine.ts';
import { BackupJobs, type BackupOutcome, type BackupRunner, type JobProgress, type RestoreOutcome } from '../../src/engine/backup-jobs.ts';
import { deleteSnapshot, purgeSnapshots } from '../../src/engine/volume-chain.ts';
import { createControlServer } from '../../src/engine/control-server.ts';
import { NbdServer } from '../../src/frontend/nbd-server.ts';
import { MemoryReplicaFiles } from '../../src/replica/memory-replica-files.ts';
import { createReplicaStore } from '../../src/replica/layered-store.ts';
import { StoreReplicaLink } from '../harness/store-replica-link.ts';
import { RawNbdClient } from '../harness/raw-nbd-client.ts';
import { waitFor } from '../harness/daemon.ts';

const sizeBytes = 8 * 1024 * 1024;

/** A runner whose jobs finish when the test says so. */
class HeldRunner implements BackupRunner {
  readonly pending: { resolve: () => void; reject: (error: Error) => void; progress: (p: JobProgress) => void }[] = [];
  backup(args: { onProgress: (p: JobProgress) => void }): Promise<BackupOutcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve: () => resolve({ backupURL: 'vfs:///x?backup=b&volume=vol', mode: 'full', newlyUploadedBytes: 10, blocksUploaded: 1 }), reject, progress: args.onProgress });
    });
  }
  restore(args: { onProgress: (p: JobProgress) => void }): Promise<RestoreOutcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve: () => resolve({ mode: 'full', blocksFetched: 1, blocksZeroed: 0 }), reject, progress: args.onProgress });
    });
  }
}

async function setup(): Promise<{ engine: Engine; jobs: BackupJobs; runner: HeldRunner }> {
  const clock = new ManualClock();
  const links: StoreReplicaLink[] = [];
  for (const name of ['r0', 'r1']) {
    links.push(new StoreReplicaLink(name, await createReplicaStore({ dir: `/${name}`, files: new MemoryReplicaFiles(), clock, volumeName: 'vol', sizeBytes })));
  }
  const engine = new Engine({ volumeName: 'vol', sizeBytes, epoch: 1, generation: 1, members: links, clock, log: () => {} });
  const runner = new HeldRunner();
  return { engine, runner, jobs: new BackupJobs({ engine, runner, clock, log: () => {}, jobsMax: 3 }) };
}

const request = (backupName: string, snapshotName = 's2') => ({ backupName, snapshotName, targetURL: 'vfs:///x' });

test('backup jobs: 404 and 409 at once, states and progress, the pin lives as long as the job, bounded table', async () => {
  const { engine, jobs, runner } = await setup();
  await engine.write(0, new Uint8Array(4096).fill(1));
  await engine.snapshot({ name: 's1', kind: 'user' });
  await engine.snapshot({ name: 's2', kind: 'user' });
  await assert.rejects(jobs.startBackup(request('b1', 'nope')), (e: Error & { code?: string }) => e.code === 'not_found');
  assert.deepEqual(jobs.list(), []);
  const started = await jobs.startBackup(request('b1'));
  assert.equal(started.state, 'in_progress');
  assert.equal(started.sourceReplica, 'r0');
  await assert.rejects(jobs.startBackup(request('b1')), (e: Error & { code?: string }) => e.code === 'conflict');
  runner.pending[0]!.progress({ blocksDone: 1, blocksTotal: 4, dataBytes: 2, transferBytes: 1, bytesPerSecond: 3.4 });
  assert.equal(jobs.get('b1').progressPercent, 25);
  await deleteSnapshot(engine, 's1');
  await assert.rejects(purgeSnapshots(engine), (e: Error & { code?: string }) => e.code === 'conflict' && /backup b1/.test(e.message));
  runner.pending[0]!.resolve();
  await jobs.settled();
  const done = jobs.get('b1');
  assert.equal(done.state, 'completed');
  assert.equal(done.progressPercent, 100);
  assert.equal(done.newlyUploadedBytes, 10);
  assert.ok(done.finishedAt !== undefined);
  assert.deepEqual(engine.pins.list(), []);
  await purgeSnapshots(engine);

  const failing = await jobs.startBackup(request('b2'));
  assert.equal(failing.state, 'in_progress');
  runner.pending[1]!.reject(new Error('target gone'));
  await jobs.settled();
  assert.equal(jobs.get('b2').state, 'error');
  assert.equal(jobs.get('b2').error, 'target gone');
  assert.deepEqual(engine.pins.list(), []);
  // The same name may run again after it ended.
  await jobs.startBackup(request('b2'));
  // Three slots: b1 (done), b2 (running); b3 fits; b4 drops the oldest finished job (b1).
  await jobs.startBackup(request('b3'));
  await jobs.startBackup(request('b4'));
  assert.deepEqual(jobs.list().map((j) => j.backupName).sort(), ['b2', 'b3', 'b4']);
  await assert.rejects(jobs.startBackup(request('b5')), (e: Error & { code?: string }) => e.code === 'conflict' && /running/.test(e.message));
  assert.throws(() => jobs.get('b1'), (e: Error & { code?: string }) => e.code === 'not_found');
  for (const p of runner.pending.slice(2)) p.resolve();
  await jobs.settled();
  await engine.close();
});

test('restore: refused with a client connected; clients refused while it runs; served again after', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shorthorn-restore-'));
  const { engine, jobs, runner } = await setup();
  const nbd = new NbdServer(engine, { refuseReason: () => jobs.refuseClients() });
  const socket = join(dir, 'nbd.sock');
  await nbd.listen({ kind: 'unix', path: socket });
  try {
    const client = await RawNbdClient.connect({ path: socket });
    await client.handshake();
    const restore = { targetURL: 'vfs:///x', backupVolumeName: 'vol', backupName: 'b1' };
    assert.throws(() => jobs.startRestore(restore, nbd.connectionCount), (e: Error & { code?: string }) => e.code === 'conflict' && /1 NBD clients/.test(e.message));
    client.destroy();
    await waitFor('the client to be gone', () => (nbd.connectionCount === 0 ? true : undefined));
    assert.equal(jobs.startRestore(restore, nbd.connectionCount).state, 'in_progress');
    assert.match(jobs.refuseClients() ?? '', /restore of backup b1/);
    assert.throws(() => jobs.startRestore(restore, 0), (e: Error & { code?: string }) => e.code === 'conflict');
    await assert.rejects(jobs.startBackup(request('bk')), (e: Error & { code?: string }) => e.code === 'conflict');
    const refused = await RawNbdClient.connect({ path: socket });
    await refused.waitForClose();
    assert.equal(refused.received().length, 0, 'a refused client gets no handshake');
    await waitFor('the restore to reach the runner', () => (runner.pending.length === 1 ? true : undefined));
    runner.pending[0]!.resolve();
    await jobs.settled();
    const status = jobs.restore();
    assert.equal(status.state, 'completed');
    assert.equal(status.lastRestoredBackup, 'b1');
    assert.equal(jobs.refuseClients(), null);
    // A later restore that fails leaves the volume holding neither backup: nothing is claimed.
    assert.equal(jobs.startRestore({ ...restore, backupName: 'b2' }, 0).lastRestoredBackup, undefined);
    await waitFor('the second restore to reach the runner', () => (runner.pending.length === 2 ? true : undefined));
    runner.pending[1]!.reject(new Error('block missing'));
    await jobs.settled();
    assert.deepEqual([jobs.restore().state, jobs.restore().lastRestoredBackup], ['error', undefined], 'a failed restore keeps no earlier claim (S22)');
    const again = await RawNbdClient.connect({ path: socket });
    await again.handshake();
    again.destroy();
  } finally {
    await nbd.close();
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('control routes: hostile bodies and paths get 4xx with {code, message}; nothing echoes credentials', async () => {
  const { engine, jobs, runner } = await setup();
  await engine.snapshot({ name: 's2', kind: 'user' });
  const server = createControlServer({ engine, connect: () => Promise.reject(new Error('no replicas here')), log: () => {}, backups: jobs, clientCount: () => 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const call = async (method: string, path: string, body?: string): Promise<{ status: number; json: Record<string, unknown> }> => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { method, ...(body === undefined ? {} : { body }) });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };
  try {
    const secret = 'never-echo-this';
    const good = { backupName: 'bk-1', snapshotName: 's2', targetURL: 'vfs:///x', credentials: { AWS_SECRET_ACCESS_KEY: secret } };
    for (const [body, status] of [
      ['not json', 400],
      ['[1]', 400],
      [JSON.stringify({ ...good, backupName: '../x' }), 400],
      [JSON.stringify({ ...good, credentials: { AWS_SECRET_ACCESS_KEY: 5 } }), 400],
      [JSON.stringify({ ...good, snapshotName: 'nope' }), 404],
      ['x'.repeat(100_000), 413],
    ] as const) {
      const answer = await call('POST', '/v1/backups', body);
      assert.equal(answer.status, status, `${body.slice(0, 60)}: ${JSON.stringify(answer.json)}`);
      assert.equal(typeof answer.json['code'], 'string');
      assert.ok(!JSON.stringify(answer.json).includes(secret));
    }
    const accepted = await call('POST', '/v1/backups', JSON.stringify(good));
    assert.equal(accepted.status, 202);
    assert.deepEqual(accepted.json, { backupName: 'bk-1' });
    assert.equal((await call('POST', '/v1/backups', JSON.stringify(good))).status, 409);
    const listed = await call('GET', '/v1/backups');
    assert.ok(!JSON.stringify(listed.json).includes(secret));
    assert.equal((await call('GET', '/v1/backups/bk-1')).json['state'], 'in_progress');
    assert.equal((await call('GET', '/v1/backups/unknown')).status, 404);
    assert.equal((await call('GET', '/v1/backups/%E0%A4%A')).status, 400);
    assert.equal((await call('GET', '/v1/backups/..%2Fx')).status, 400);
    assert.equal((await call('POST', '/v1/snapshots/purge')).status, 409, 'purge refused while the backup reads');
    assert.equal((await call('POST', '/v1/restore', JSON.stringify({ targetURL: 'vfs:///x', backupVolumeName: 'vol', backupName: 'bk-1', extra: true }))).status, 400);
    assert.equal((await call('GET', '/v1/restore')).json['state'], 'idle');
    runner.pending[0]!.resolve();
    await jobs.settled();
    assert.equal((await call('GET', '/v1/backups/bk-1')).json['state'], 'completed');
  } finally {
    await new Promise((resolve) => server.close(resolve));
    await engine.close();
  }
});
