// The pure cores of backups in the manager: the target mirror, a backup's states, the restore
// steps, backup URLs, secret files and the engine client's answer checks. Every object an action
// writes is checked against its kind's schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backup } from '../resources/backup.ts';
import type { BackupVolume } from '../resources/backup-volume.ts';
import type { Engine } from '../resources/engine.ts';
import type { Node } from '../resources/node.ts';
import type { Replica } from '../resources/replica.ts';
import { validateResource } from '../resources/validate-resource.ts';
import type { VolumeAttachment } from '../resources/volume-attachment.ts';
import type { Volume } from '../resources/volume.ts';
import type { Action } from '../runtime/controller.ts';
import { CredentialError, parseSecretText, resolveCredentials, secretPath } from './backup-credentials.ts';
import { backupFinalizer, backupVolumeFinalizer, backupVolumeLabel, planMirror, type TargetListing } from './backup-mirror.ts';
import { planBackup, statusFromReport } from './backup-reconcile.ts';
import type { BackupVolumeEntry } from './backup-store-port.ts';
import { parseBackupUrl, targetUrlOfSetting } from './backup-url.ts';
import { EngineBackupError, parseBackupReport, parseRestoreReport } from './engine-backup-client.ts';
import { planRestore, restoreFromReport, restorePending, restoreTicketId } from './restore-reconcile.ts';

const now = '2026-11-28T00:00:00Z';
const target = 'vfs:///backups';

function valid(actions: readonly Action[]): void {
  for (const action of actions) {
    if (action.type !== 'create' && action.type !== 'update' && action.type !== 'updateStatus') continue;
    const checked = validateResource(action.object.kind, action.object);
    assert.ok(checked.ok, `${action.object.kind} ${action.object.metadata.name}: ${checked.ok ? '' : JSON.stringify(checked.problems)}`);
  }
}

function entry(name: string, backups: string[], extra: Partial<BackupVolumeEntry> = {}): BackupVolumeEntry {
  return {
    name, sizeBytes: 32 << 20, labels: {}, createdAt: now, lastBackupName: backups.at(-1) ?? '', lastBackupAt: now,
    backups: backups.map((b) => ({ name: b, state: 'complete', url: `${target}?backup=${b}&volume=${name}`, snapshotName: 'snap-1', snapshotCreatedAt: now, createdAt: now, sizeBytes: 4 << 20, volumeSizeBytes: 32 << 20, compressionMethod: 'lz4', newlyUploadedBytes: 100 })),
    ...extra,
  };
}

const backupOf = (name: string, volume: string, extra: Partial<Backup> = {}): Backup => ({
  apiVersion: 'shorthorn.io/v1', kind: 'Backup', metadata: { name, resourceVersion: '1', labels: { [backupVolumeLabel]: volume }, finalizers: [backupFinalizer] },
  spec: { backupMode: 'incremental' }, ...extra,
});

test('mirror: new volumes and backups (also foreign ones) become resources; names resources cannot have are skipped', () => {
  const listing: TargetListing = new Map<string, BackupVolumeEntry | 'failed'>([
    ['vol-a', entry('vol-a', ['backup-1', 'backup-2'])],
    ['Odd_Name', entry('Odd_Name', ['backup-3'])],
  ]);
  const plan = planMirror({ listing, backupVolumes: [], backups: [], nowText: now });
  valid(plan.actions);
  const created = plan.actions.filter((a) => a.type === 'create').map((a) => (a.type === 'create' ? `${a.object.kind}/${a.object.metadata.name}` : ''));
  assert.deepEqual(created, ['BackupVolume/vol-a', 'Backup/backup-1', 'Backup/backup-2']);
  assert.ok(plan.notes.some((n) => n.includes('Odd_Name')));
  const b1 = plan.actions.find((a) => a.type === 'create' && a.object.metadata.name === 'backup-1');
  assert.equal(b1?.type === 'create' ? (b1.object as Backup).status?.state : undefined, 'Completed');
});

test('mirror: gone from the target → resource removed without touching the target; running and never-seen backups stay', () => {
  const listing: TargetListing = new Map([['vol-a', entry('vol-a', ['backup-1'])]]);
  const seen = backupOf('backup-2', 'vol-a', { status: { state: 'Completed', lastSyncedAt: now } });
  const running = backupOf('backup-3', 'vol-a', { spec: { snapshotName: 'snap-1', backupMode: 'incremental' }, status: { state: 'InProgress' } });
  const justDone = backupOf('backup-4', 'vol-a', { spec: { snapshotName: 'snap-1', backupMode: 'incremental' }, status: { state: 'Completed' } });
  const goneVolume: BackupVolume = { apiVersion: 'shorthorn.io/v1', kind: 'BackupVolume', metadata: { name: 'vol-z', resourceVersion: '1', finalizers: [backupVolumeFinalizer] }, spec: {}, status: { lastSyncedAt: now } };
  const plan = planMirror({ listing, backupVolumes: [goneVolume], backups: [seen, running, justDone], nowText: now });
  valid(plan.actions);
  const touched = plan.actions.map((a) => `${a.type}:${a.type === 'delete' ? a.name : a.type === 'requeueAfter' ? '' : a.object.metadata.name}`);
  assert.ok(touched.includes('update:backup-2') && touched.includes('delete:backup-2'), touched.join(' '));
  assert.ok(touched.includes('update:vol-z') && touched.includes('delete:vol-z'));
  const update = plan.actions.find((a) => a.type === 'update' && a.object.metadata.name === 'backup-2');
  assert.deepEqual(update?.type === 'update' ? update.object.metadata.finalizers : undefined, []);
  assert.ok(!touched.some((t) => t.endsWith(':backup-3') || t.endsWith(':backup-4')), 'a running or never-mirrored backup is kept');
});

test('mirror: a failed listing of one volume changes nothing of it; hostile labels and times are fitted to the schema', () => {
  const listing: TargetListing = new Map<string, BackupVolumeEntry | 'failed'>([
    ['vol-a', 'failed'],
    ['vol-b', entry('vol-b', ['backup-9'], { labels: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, 'x'.repeat(i % 2 === 0 ? 10 : 5000)])), createdAt: 'yesterday' })],
  ]);
  const kept = backupOf('backup-1', 'vol-a', { status: { state: 'Completed', lastSyncedAt: now } });
  const plan = planMirror({ listing, backupVolumes: [], backups: [kept], nowText: now });
  valid(plan.actions);
  assert.ok(!plan.actions.some((a) => a.type === 'delete'));
});

const volume: Volume = {
  apiVersion: 'shorthorn.io/v1', kind: 'Volume', metadata: { name: 'vol-a', resourceVersion: '3' },
  spec: {
    size: 32 << 20, numberOfReplicas: 2, minimumWriteReplicas: 1, frontend: 'blockdev', accessMode: 'rwo', dataLocality: 'disabled', standby: false,
    staleReplicaTimeout: 2880, nodeSelector: [], diskSelector: [], replicaSoftAntiAffinity: 'ignored', replicaZoneSoftAntiAffinity: 'ignored',
    replicaDiskSoftAntiAffinity: 'ignored', replicaAutoBalance: 'ignored', snapshotDataIntegrity: 'ignored', unmapMarkSnapChainRemoved: 'ignored',
    freezeFilesystemForSnapshot: 'ignored', backupCompressionMethod: 'lz4',
  },
  status: { state: 'attached' },
};
const engine = (pid: number, state: 'running' | 'stopped' = 'running'): Engine => ({
  apiVersion: 'shorthorn.io/v1', kind: 'Engine', metadata: { name: 'vol-a-e-0' },
  spec: { volumeName: 'vol-a', volumeSize: 32 << 20, desireState: 'running', frontend: 'blockdev', epoch: 2, minimumWriteReplicas: 1, replicaAddressMap: {}, active: true },
  status: { currentState: state, ip: '127.0.0.1', port: 10001, pid },
});
const context = { volume, engine: engine(100), snapshot: undefined, targetURL: target, concurrency: 2, nowText: now };

test('backup: Pending while nothing can run; started on the engine; Completed only on the engine\'s word', () => {
  const user = backupOf('backup-a', 'vol-a', { spec: { snapshotName: 'snap-1', backupMode: 'full' } });
  assert.equal(planBackup(user, 'vol-a', { ...context, targetURL: '' }).kind, 'status');
  const detached = planBackup(user, 'vol-a', { ...context, engine: engine(100, 'stopped') });
  assert.ok(detached.kind === 'status' && detached.status.state === 'Pending' && /not attached/.test(detached.status.messages?.['waiting'] ?? ''));
  const start = planBackup(user, 'vol-a', context);
  assert.ok(start.kind === 'start');
  assert.equal(start.address, '127.0.0.1:10001');
  assert.equal(start.request.mode, 'full');
  assert.equal(start.request.compression, 'lz4');
  const running = { ...user, status: start.status };
  assert.equal(planBackup(running, 'vol-a', context).kind, 'poll');
  const done = statusFromReport(running, { backupName: 'backup-a', state: 'completed', progressPercent: 100, backupURL: `${target}?backup=backup-a&volume=vol-a`, dataBytes: 4096, newlyUploadedBytes: 10 }, now);
  assert.equal(done.state, 'Completed');
  assert.equal(done.newlyUploadDataSize, 10);
  valid([{ type: 'updateStatus', object: { ...running, status: done } }]);
  assert.equal(statusFromReport(running, { backupName: 'backup-a', state: 'in_progress', progressPercent: 100 }, now).progress, 99, 'never 100 before completed');
});

test('backup: an engine that stops, restarts or forgets the backup makes it Error, never Completed', () => {
  const user = backupOf('backup-a', 'vol-a', { spec: { snapshotName: 'snap-1', backupMode: 'incremental' } });
  const start = planBackup(user, 'vol-a', context);
  assert.ok(start.kind === 'start');
  const running = { ...user, status: start.status };
  const stopped = planBackup(running, 'vol-a', { ...context, engine: engine(100, 'stopped') });
  assert.ok(stopped.kind === 'status' && stopped.status.state === 'Error');
  const restarted = planBackup(running, 'vol-a', { ...context, engine: engine(101) });
  assert.ok(restarted.kind === 'status' && restarted.status.state === 'Error' && /restarted/.test(restarted.status.error ?? ''));
  assert.equal(statusFromReport(running, undefined, now).state, 'Error');
  assert.equal(planBackup({ ...running, status: { state: 'Error' } }, 'vol-a', context).kind, 'none');
});

test('backup URLs and target URLs', () => {
  assert.equal(targetUrlOfSetting('/mnt/backups'), 'vfs:///mnt/backups');
  assert.equal(targetUrlOfSetting('s3://b@r/p/'), 's3://b@r/p/');
  assert.deepEqual(parseBackupUrl('s3://bucket@us-east-1/path/?backup=backup-1&volume=vol'), { targetURL: 's3://bucket@us-east-1/path/', backupName: 'backup-1', volumeName: 'vol' });
  for (const bad of ['s3://b/p', 'http://x?backup=a1&volume=v1', 'vfs:///x?backup=../a&volume=v1', 'vfs:///x?volume=v1', 'vfs:///a/../b?backup=b1&volume=v1']) {
    assert.equal(typeof parseBackupUrl(bad), 'string', bad);
  }
});

const nodes: Node[] = ['node-1', 'node-2'].map((name) => ({
  apiVersion: 'shorthorn.io/v1', kind: 'Node', metadata: { name }, spec: { disks: {}, allowScheduling: true, evictionRequested: false, tags: [] },
  status: { conditions: [{ type: 'Ready', status: name === 'node-2' ? 'True' : 'False' }] },
}));
const replica = (name: string, nodeID: string): Replica => ({
  apiVersion: 'shorthorn.io/v1', kind: 'Replica', metadata: { name },
  spec: { volumeName: 'vol-r', volumeSize: 32 << 20, nodeID, desireState: 'stopped', active: true, rebuildRetryCount: 0, evictionRequested: false, engineName: 'vol-r-e-0', diskID: 'd', diskPath: '/d', dataDirectoryName: name },
});

test('restore: required, attached on a ready replica node with a restore ticket, started, completed → ticket gone, attach allowed', () => {
  const restoring: Volume = { ...volume, metadata: { name: 'vol-r', resourceVersion: '1' }, spec: { ...volume.spec, fromBackup: `${target}?backup=backup-1&volume=vol-a` }, status: {} };
  assert.ok(restorePending(restoring));
  const attachment: VolumeAttachment = { apiVersion: 'shorthorn.io/v1', kind: 'VolumeAttachment', metadata: { name: 'vol-r', resourceVersion: '1' }, spec: { volume: 'vol-r', attachmentTickets: {} } };
  const ctx = { attachment, engine: undefined, replicas: [replica('r-1', 'node-1'), replica('r-2', 'node-2')], nodes, concurrency: 2, nowText: now };
  const first = planRestore(restoring, ctx);
  assert.ok(first.kind === 'status' && first.status.restoreRequired === true);
  const required = { ...restoring, status: first.status };
  const ticket = planRestore(required, ctx);
  assert.ok(ticket.kind === 'ticket');
  const t = ticket.attachment.spec.attachmentTickets[restoreTicketId('vol-r')];
  assert.equal(t?.nodeID, 'node-2', 'the ready node');
  assert.equal(t?.type, 'volume-restore-controller');
  valid([{ type: 'update', object: ticket.attachment }]);
  const attached = { ...required, status: { ...required.status, state: 'attached' as const } };
  const withTicket = { ...ctx, attachment: ticket.attachment, engine: { ...engine(7), spec: { ...engine(7).spec, volumeName: 'vol-r' } } };
  const start = planRestore(attached, withTicket);
  assert.ok(start.kind === 'start');
  assert.deepEqual(start.request, { targetURL: target, backupVolumeName: 'vol-a', backupName: 'backup-1', concurrency: 2 });
  const initiated = { ...attached, status: start.status };
  assert.equal(planRestore(initiated, withTicket).kind, 'poll');
  const progress = restoreFromReport(initiated, ticket.attachment, { state: 'in_progress', progressPercent: 42 }, now);
  assert.match(progress.status.conditions?.find((c) => c.type === 'Restore')?.message ?? '', /42%/);
  const done = restoreFromReport(initiated, ticket.attachment, { state: 'completed', progressPercent: 100, lastRestoredBackup: 'backup-1' }, now);
  assert.equal(done.status.restoreRequired, false);
  assert.deepEqual(done.attachment?.spec.attachmentTickets, {});
  assert.ok(!restorePending({ ...initiated, status: done.status }));
  valid([{ type: 'updateStatus', object: { ...initiated, status: done.status } }]);
  const failed = restoreFromReport(initiated, ticket.attachment, { state: 'error', progressPercent: 10, error: 'block missing' }, now);
  assert.equal(failed.status.restoreRequired, true);
  assert.ok(restorePending({ ...initiated, status: failed.status }), 'a failed restore keeps the volume from users');
  assert.equal(restoreFromReport(initiated, undefined, { state: 'idle', progressPercent: 0 }, now).status.restoreInitiated, false, 'an engine that forgot it is asked again');
});

test('secrets: KEY=VALUE files, refused when group or others can read them, names cannot leave the directory', async () => {
  assert.deepEqual(parseSecretText('# c\nAWS_ACCESS_KEY_ID = a\n\nAWS_SECRET_ACCESS_KEY=b=c\n', 'x'), { AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b=c' });
  assert.throws(() => parseSecretText('secret-value-without-key', 'x'), (e: unknown) => e instanceof CredentialError && !e.message.includes('secret-value'));
  for (const bad of ['../x', 'a/../b', '/etc/passwd', 'A', '']) assert.throws(() => secretPath('/s', bad), CredentialError, bad);
  const dir = await mkdtemp(join(tmpdir(), 'shorthorn-secret-'));
  try {
    await writeFile(join(dir, 's3'), 'AWS_ACCESS_KEY_ID=k\nAWS_SECRET_ACCESS_KEY=s\n');
    await chmod(join(dir, 's3'), 0o640);
    await assert.rejects(resolveCredentials({ secretsDir: dir, env: {} }, 's3'), (e: unknown) => e instanceof CredentialError && e.code === 'insecure');
    await chmod(join(dir, 's3'), 0o600);
    assert.deepEqual(await resolveCredentials({ secretsDir: dir, env: {} }, 's3'), { AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' });
    await assert.rejects(resolveCredentials({ secretsDir: dir, env: {} }, 'missing'), (e: unknown) => e instanceof CredentialError && e.code === 'not_found');
    assert.deepEqual(await resolveCredentials({ secretsDir: undefined, env: { AWS_ACCESS_KEY_ID: 'e', HOME: '/root' } }, ''), { AWS_ACCESS_KEY_ID: 'e' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('engine answers are checked field by field', () => {
  assert.deepEqual(parseBackupReport({ backupName: 'b', state: 'completed', progressPercent: 100, backupURL: 'u', blocksDone: 3 }), { backupName: 'b', state: 'completed', progressPercent: 100, backupURL: 'u' });
  for (const bad of [null, [], { state: 'completed' }, { backupName: 'b', state: 'done' }, { backupName: 'b', state: 'error', progressPercent: -1 }, { backupName: 1, state: 'error' }]) {
    assert.throws(() => parseBackupReport(bad), EngineBackupError, JSON.stringify(bad));
  }
  assert.deepEqual(parseRestoreReport({ state: 'idle', progressPercent: 0 }), { state: 'idle', progressPercent: 0 });
  assert.throws(() => parseRestoreReport({ state: 'maybe' }), EngineBackupError);
});
