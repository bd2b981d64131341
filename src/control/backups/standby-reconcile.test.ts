// The standby (DR) volume core: follows the newest backup incrementally, names the backup it
// restores before asking the engine, restores that same backup from the same base after any
// interruption (never a newer one over a half-written delta), advances lastRestoredBackup only on
// the engine's word for exactly that restore, and activates only after a fresh listing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backup } from '../resources/backup.ts';
import type { BackupVolume } from '../resources/backup-volume.ts';
import type { Engine } from '../resources/engine.ts';
import type { Node } from '../resources/node.ts';
import type { Replica } from '../resources/replica.ts';
import { validateResource } from '../resources/validate-resource.ts';
import type { VolumeAttachment } from '../resources/volume-attachment.ts';
import type { Volume, VolumeStatus } from '../resources/volume.ts';
import { restoreTicketId } from './restore-reconcile.ts';
import { isStandbyVolume, planStandby, standbyFromReport, type StandbyContext, type StandbyStep } from './standby-reconcile.ts';

const now = '2026-11-28T01:00:00Z';
const target = 'vfs:///backups';

const dr: Volume = {
  apiVersion: 'shorthorn.io/v1', kind: 'Volume', metadata: { name: 'vol-dr', resourceVersion: '1' },
  spec: {
    size: 64 << 20, numberOfReplicas: 1, minimumWriteReplicas: 1, frontend: 'blockdev', accessMode: 'rwo', dataLocality: 'disabled', standby: true,
    fromBackup: `${target}?backup=backup-1&volume=vol-a`,
    staleReplicaTimeout: 2880, nodeSelector: [], diskSelector: [], replicaSoftAntiAffinity: 'ignored', replicaZoneSoftAntiAffinity: 'ignored',
    replicaDiskSoftAntiAffinity: 'ignored', replicaAutoBalance: 'ignored', snapshotDataIntegrity: 'ignored', unmapMarkSnapChainRemoved: 'ignored',
    freezeFilesystemForSnapshot: 'ignored', backupCompressionMethod: 'lz4',
  },
  status: {},
};
const node: Node = {
  apiVersion: 'shorthorn.io/v1', kind: 'Node', metadata: { name: 'node-1' }, spec: { disks: {}, allowScheduling: true, evictionRequested: false, tags: [] },
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
};
const replica: Replica = {
  apiVersion: 'shorthorn.io/v1', kind: 'Replica', metadata: { name: 'vol-dr-r-1' },
  spec: { volumeName: 'vol-dr', volumeSize: 64 << 20, nodeID: 'node-1', desireState: 'running', active: true, rebuildRetryCount: 0, evictionRequested: false, engineName: 'vol-dr-e-0', diskID: 'd', diskPath: '/d', dataDirectoryName: 'r1' },
};
const engine: Engine = {
  apiVersion: 'shorthorn.io/v1', kind: 'Engine', metadata: { name: 'vol-dr-e-0' },
  spec: { volumeName: 'vol-dr', volumeSize: 64 << 20, desireState: 'running', frontend: 'blockdev', epoch: 2, minimumWriteReplicas: 1, replicaAddressMap: {}, active: true },
  status: { currentState: 'running', ip: '127.0.0.1', port: 10001, pid: 7 },
};
const backup = (name: string, minute: number): Backup => ({
  apiVersion: 'shorthorn.io/v1', kind: 'Backup', metadata: { name, labels: { 'shorthorn.io/backup-volume': 'vol-a' } },
  spec: { backupMode: 'incremental' }, status: { state: 'Completed', volumeName: 'vol-a', snapshotCreatedAt: `2026-11-28T00:${String(minute).padStart(2, '0')}:00Z`, url: `${target}?backup=${name}&volume=vol-a` },
});
const backupVolume = (last: string, minute: number, sync: { requested?: string; synced?: string } = {}): BackupVolume => ({
  apiVersion: 'shorthorn.io/v1', kind: 'BackupVolume', metadata: { name: 'vol-a' },
  spec: sync.requested === undefined ? {} : { syncRequestedAt: sync.requested },
  status: { lastBackupName: last, lastBackupAt: `2026-11-28T00:${String(minute).padStart(2, '0')}:00Z`, lastSyncedAt: sync.synced ?? now },
});
const emptyAttachment: VolumeAttachment = { apiVersion: 'shorthorn.io/v1', kind: 'VolumeAttachment', metadata: { name: 'vol-dr' }, spec: { volume: 'vol-dr', attachmentTickets: {} } };

function context(over: Partial<StandbyContext> = {}): StandbyContext {
  return {
    attachment: emptyAttachment, engine, replicas: [replica], nodes: [node],
    backupVolume: backupVolume('backup-1', 1), backups: [backup('backup-1', 1)], concurrency: 2, nowText: now, ...over,
  };
}

function validStatus(status: VolumeStatus): void {
  const checked = validateResource('Volume', { ...dr, status });
  assert.ok(checked.ok, JSON.stringify(checked.ok ? '' : checked.problems));
}

function expectStart(step: StandbyStep, backupName: string, from: string | undefined): VolumeStatus {
  assert.equal(step.kind, 'start', JSON.stringify(step));
  if (step.kind !== 'start') throw new Error('unreachable');
  assert.equal(step.request.backupName, backupName);
  assert.equal(step.request.fromBackupName, from);
  assert.equal(step.status.restoringBackup, backupName, 'the backup is named in the status stored before the engine is asked');
  assert.equal(step.status.restoreInitiated, true);
  validStatus(step.status);
  return step.status;
}

test('standby: marked, attached with a frontend-less restore ticket, full restore first, then only newer backups, incrementally', () => {
  assert.ok(isStandbyVolume(dr));
  const first = planStandby(dr, context());
  assert.ok(first.kind === 'status' && first.status.isStandby === true && first.status.restoreRequired === true);
  let volume: Volume = { ...dr, status: first.status };
  const ticket = planStandby(volume, context());
  assert.ok(ticket.kind === 'ticket');
  const t = ticket.attachment.spec.attachmentTickets[restoreTicketId('vol-dr')];
  assert.deepEqual([t?.nodeID, t?.type, t?.parameters?.disableFrontend], ['node-1', 'volume-restore-controller', true]);
  const ctx = (over: Partial<StandbyContext> = {}): StandbyContext => context({ attachment: ticket.attachment, ...over });
  assert.equal(planStandby(volume, ctx()).kind, 'none', 'not attached yet: nothing to start');

  volume = { ...volume, status: { ...volume.status, state: 'attached' } };
  volume = { ...volume, status: expectStart(planStandby(volume, ctx()), 'backup-1', undefined) };
  assert.equal(planStandby(volume, ctx()).kind, 'poll');
  const half = standbyFromReport(volume, { state: 'in_progress', backupName: 'backup-1', progressPercent: 40 }, now);
  assert.equal(half.status.restoreProgress, 40);
  assert.equal(half.status.lastRestoredBackup, undefined, 'nothing is claimed before the restore completes');
  const done = standbyFromReport(volume, { state: 'completed', backupName: 'backup-1', progressPercent: 100, mode: 'full', blocksFetched: 9, blocksZeroed: 0 }, now);
  assert.equal(done.status.lastRestoredBackup, 'backup-1');
  assert.equal(done.status.restoringBackup, undefined);
  assert.deepEqual(done.status.lastRestore, { backupName: 'backup-1', mode: 'full', blocksFetched: 9, blocksZeroed: 0, finishedAt: now });
  validStatus(done.status);
  volume = { ...volume, status: done.status };
  const upToDate = planStandby(volume, ctx());
  assert.ok(upToDate.kind === 'status' && upToDate.status.conditions?.find((c) => c.type === 'Restore')?.reason === 'UpToDate');
  volume = { ...volume, status: upToDate.status };
  assert.equal(planStandby(volume, ctx()).kind, 'none', 'nothing to do while it holds the newest backup');

  // backup-2 appears: incremental from backup-1; the lag counts from backup-1 to backup-2.
  const two = ctx({ backupVolume: backupVolume('backup-2', 6), backups: [backup('backup-1', 1), backup('backup-2', 6)] });
  const start2 = planStandby(volume, two);
  volume = { ...volume, status: expectStart(start2, 'backup-2', 'backup-1') };
  assert.equal(volume.status?.restoreLagSeconds, 300);
  assert.equal(volume.status?.lastBackup, 'backup-2');

  // The engine restarted (idle), and meanwhile backup-3 appeared: backup-2 again from backup-1.
  const three = ctx({ backupVolume: backupVolume('backup-3', 9), backups: [backup('backup-1', 1), backup('backup-2', 6), backup('backup-3', 9)] });
  const idle = standbyFromReport(volume, { state: 'idle', progressPercent: 0, lastRestoredBackup: 'backup-1' }, now);
  assert.equal(idle.status.restoreInitiated, false);
  volume = { ...volume, status: idle.status };
  volume = { ...volume, status: expectStart(planStandby(volume, three), 'backup-2', 'backup-1') };
  // A stale report (the previous restore) is not this one; another restore still running is waited for.
  assert.equal(standbyFromReport(volume, { state: 'completed', backupName: 'backup-1', progressPercent: 100 }, now).status.restoreInitiated, false);
  assert.equal(standbyFromReport(volume, { state: 'completed', backupName: 'backup-2', progressPercent: 100 }, now).status.restoreInitiated, false, 'same backup from another base is not ours');
  assert.deepEqual(standbyFromReport(volume, { state: 'in_progress', backupName: 'backup-9', progressPercent: 5 }, now).status, volume.status);
  const failed = standbyFromReport(volume, { state: 'error', backupName: 'backup-2', fromBackupName: 'backup-1', progressPercent: 5, error: 'ECONNREFUSED' }, now);
  assert.equal(failed.failed, true);
  assert.equal(failed.status.lastRestoredBackup, 'backup-1');
  assert.equal(failed.status.conditions?.find((c) => c.type === 'Restore')?.reason, 'RestoreFailed');
  const done2 = standbyFromReport(volume, { state: 'completed', backupName: 'backup-2', fromBackupName: 'backup-1', progressPercent: 100, mode: 'incremental', blocksFetched: 2, blocksZeroed: 1 }, now);
  assert.equal(done2.status.lastRestoredBackup, 'backup-2');
  volume = { ...volume, status: done2.status };
  volume = { ...volume, status: expectStart(planStandby(volume, three), 'backup-3', 'backup-2') };

  // backup-3 deleted from the target before it was restored, and the engine forgot it:
  // backup-2 is restored again in full, and the volume claims no backup meanwhile.
  volume = { ...volume, status: { ...volume.status, restoreInitiated: false } };
  const gone = ctx({ backupVolume: backupVolume('backup-2', 6), backups: [backup('backup-2', 6)] });
  const full = planStandby(volume, gone);
  const fullStatus = expectStart(full, 'backup-2', undefined);
  assert.equal(fullStatus.lastRestoredBackup, undefined);
});

test('activate: waits for a listing newer than the request and for the newest backup, then a normal volume without the ticket', () => {
  const ticketId = restoreTicketId('vol-dr');
  const attachment: VolumeAttachment = { ...emptyAttachment, spec: { volume: 'vol-dr', attachmentTickets: { [ticketId]: { id: ticketId, type: 'volume-restore-controller', nodeID: 'node-1', parameters: { disableFrontend: true }, generation: 1 } } } };
  const holding: Volume = { ...dr, spec: { ...dr.spec, standby: false }, status: { isStandby: true, restoreRequired: true, state: 'attached', lastRestoredBackup: 'backup-1' } };
  assert.ok(isStandbyVolume(holding), 'still a standby until the manager has activated it');
  const pending = planStandby(holding, context({ attachment, backupVolume: backupVolume('backup-1', 1, { requested: '2026-11-28T01:00:05Z', synced: now }) }));
  assert.ok(pending.kind === 'status' && pending.status.conditions?.find((c) => c.type === 'Restore')?.reason === 'Activating');
  // The listing found a newer backup: it is restored first.
  const newer = context({ attachment, backupVolume: backupVolume('backup-2', 6, { requested: now, synced: now }), backups: [backup('backup-1', 1), backup('backup-2', 6)] });
  expectStart(planStandby(holding, newer), 'backup-2', 'backup-1');
  const synced = planStandby(holding, context({ attachment, backupVolume: backupVolume('backup-1', 1, { requested: now, synced: '2026-11-28T01:00:05Z' }) }));
  assert.equal(synced.kind, 'activated');
  if (synced.kind !== 'activated') return;
  assert.equal(synced.status.isStandby, false);
  assert.equal(synced.status.restoreRequired, false);
  assert.deepEqual(synced.attachment?.spec.attachmentTickets, {});
  validStatus(synced.status);
  assert.ok(!isStandbyVolume({ ...holding, status: synced.status }));
});
