// Disaster-recovery (standby) volumes, pure (Longhorn's DR volume, reference §2.11, §6.2): a
// volume created with fromBackup and standby stays attached to a node holding one of its replicas
// by the volume-restore-controller ticket (no frontend; users cannot attach it), restores the
// newest backup of its backup volume, and then each newer backup incrementally: only the blocks
// that differ from the backup it holds. `activate` (spec.standby false) restores the newest
// backup after a fresh listing of the target, then makes it a normal volume and detaches it.
//
// Crash safety rests on one order: status.restoringBackup is stored *before* the engine is asked
// to restore, and never changes until that restore completes (or its backup is deleted from the
// target, which makes the next restore a full one). After a crash of the manager or the engine the
// volume holds lastRestoredBackup with part of the delta to restoringBackup written; restoring the
// same delta again gives exactly restoringBackup. A different target (a newer backup) over a
// half-written delta would not: a block changed in the half-written delta and changed back in the
// newer backup would keep the wrong data. lastRestoredBackup advances only on a completed report
// for exactly that backup from exactly that base.
import type { BackupVolume } from '../resources/backup-volume.ts';
import type { Backup } from '../resources/backup.ts';
import type { Engine } from '../resources/engine.ts';
import type { Node } from '../resources/node.ts';
import type { Replica } from '../resources/replica.ts';
import type { VolumeAttachment } from '../resources/volume-attachment.ts';
import type { Volume, VolumeStatus } from '../resources/volume.ts';
import { engineAddress } from './backup-reconcile.ts';
import { parseBackupUrl } from './backup-url.ts';
import type { EngineRestoreReport, EngineRestoreRequest } from './engine-backup-client.ts';
import { restoreConditionType, restoreTicketId, withCondition } from './restore-reconcile.ts';

export interface StandbyContext {
  readonly attachment: VolumeAttachment | undefined;
  readonly engine: Engine | undefined;
  readonly replicas: readonly Replica[];
  readonly nodes: readonly Node[];
  /** The backup volume the standby follows (named in fromBackup), as mirrored. */
  readonly backupVolume: BackupVolume | undefined;
  /** The mirrored Backup resources of that backup volume. */
  readonly backups: readonly Backup[];
  readonly concurrency: number;
  readonly nowText: string;
}

export type StandbyStep =
  | { readonly kind: 'none' }
  | { readonly kind: 'status'; readonly status: VolumeStatus; readonly note?: string }
  | { readonly kind: 'ticket'; readonly attachment: VolumeAttachment; readonly note: string }
  /** Store `status` first (it names the backup being restored), then ask the engine. */
  | { readonly kind: 'start'; readonly address: string; readonly request: Omit<EngineRestoreRequest, 'credentials'>; readonly status: VolumeStatus; readonly note: string }
  | { readonly kind: 'poll'; readonly address: string }
  /** Activated: store `status` first (restoreRequired false), then drop the ticket. */
  | { readonly kind: 'activated'; readonly status: VolumeStatus; readonly attachment: VolumeAttachment | undefined; readonly note: string };

/** A standby volume, or one being activated (spec.standby cleared, status.isStandby not yet). */
export function isStandbyVolume(volume: Volume): boolean {
  return volume.spec.fromBackup !== undefined && (volume.spec.standby || volume.status?.isStandby === true);
}

function completedBackup(context: StandbyContext, name: string | undefined): Backup | undefined {
  if (name === undefined) return undefined;
  return context.backups.find((b) => b.metadata.name === name && b.status?.state === 'Completed');
}

function backupTimeMs(backup: Backup | undefined): number | undefined {
  const text = backup?.status?.snapshotCreatedAt ?? backup?.status?.backupCreatedAt;
  const ms = text === undefined ? NaN : Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

function nodeReady(nodes: readonly Node[], name: string): boolean {
  return nodes.find((n) => n.metadata.name === name)?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
}

/** The status fields that follow the target: lastBackup (newest backup there) and the lag. */
function followed(status: VolumeStatus, context: StandbyContext, want: string): VolumeStatus {
  const next: VolumeStatus = { ...status, isStandby: true, restoreRequired: true, lastBackup: want };
  const lastAt = context.backupVolume?.status?.lastBackupAt ?? completedBackup(context, want)?.status?.snapshotCreatedAt;
  if (lastAt !== undefined) next.lastBackupAt = lastAt;
  const restored = completedBackup(context, status.lastRestoredBackup);
  const restoredMs = backupTimeMs(restored);
  const lastMs = lastAt === undefined ? NaN : Date.parse(lastAt);
  if (restored !== undefined && restoredMs !== undefined) {
    next.lastRestoredBackupAt = restored.status!.snapshotCreatedAt ?? restored.status!.backupCreatedAt!;
    if (Number.isFinite(lastMs)) next.restoreLagSeconds = Math.max(0, Math.round((lastMs - restoredMs) / 1000));
  }
  return next;
}

export function planStandby(volume: Volume, context: StandbyContext): StandbyStep {
  const name = volume.metadata.name;
  const status: VolumeStatus = volume.status ?? {};
  if (!isStandbyVolume(volume) || volume.metadata.deletionTimestamp !== undefined) return { kind: 'none' };
  const setStatus = (next: VolumeStatus, note?: string): StandbyStep =>
    JSON.stringify(next) === JSON.stringify(status) ? { kind: 'none' } : { kind: 'status', status: next, ...(note === undefined ? {} : { note }) };
  const parsed = parseBackupUrl(volume.spec.fromBackup!);
  if (typeof parsed === 'string') {
    return setStatus(withCondition({ ...status, isStandby: true, restoreRequired: true }, { type: restoreConditionType, status: 'False', reason: 'InvalidBackupURL', message: parsed }, context.nowText));
  }
  // The newest complete backup in the target; before the first listing, the one named in the URL.
  const newest = context.backupVolume?.status?.lastBackupName;
  const want = completedBackup(context, newest) !== undefined ? newest! : parsed.backupName;
  const base = followed(status, context, want);
  if (status.isStandby !== true) {
    return setStatus(
      withCondition(base, { type: restoreConditionType, status: 'False', reason: 'Pending', message: `standby: waiting to restore ${want}` }, context.nowText),
      `volume ${name}: standby volume following backup volume ${parsed.volumeName}`,
    );
  }

  const ticketId = restoreTicketId(name);
  const ticket = context.attachment?.spec.attachmentTickets[ticketId];
  if (ticket === undefined) {
    if (context.attachment === undefined) return setStatus(base);
    const node = context.replicas
      .filter((r) => r.metadata.deletionTimestamp === undefined && r.spec.nodeID !== undefined)
      .map((r) => r.spec.nodeID!)
      .sort()
      .find((n) => nodeReady(context.nodes, n));
    if (node === undefined) return setStatus(withCondition(base, { type: restoreConditionType, status: 'False', reason: 'Pending', message: 'no ready node holds a replica of the volume' }, context.nowText));
    const attachment: VolumeAttachment = {
      ...context.attachment,
      spec: {
        ...context.attachment.spec,
        attachmentTickets: { ...context.attachment.spec.attachmentTickets, [ticketId]: { id: ticketId, type: 'volume-restore-controller', nodeID: node, parameters: { disableFrontend: true }, generation: 1 } },
      },
    };
    return { kind: 'ticket', attachment, note: `volume ${name}: standby; attaching on ${node} (frontend off) to follow ${parsed.volumeName}` };
  }

  const engine = engineAddress(context.engine);
  if (status.state !== 'attached' || engine === undefined) return setStatus(base);

  if (status.restoringBackup !== undefined) {
    if (status.restoreInitiated === true) return { kind: 'poll', address: engine.address };
    // Asked before and not running now (the engine restarted, refused or failed): the same
    // backup from the same base again — unless that backup left the target, then in full.
    const again = completedBackup(context, status.restoringBackup) !== undefined;
    return startStep(volume, context, { status: again ? base : withoutRestored(base), backupName: again ? status.restoringBackup : want, address: engine.address });
  }
  if (status.lastRestoredBackup !== want) return startStep(volume, context, { status: base, backupName: want, address: engine.address });

  if (!volume.spec.standby) {
    // Activation: the newest backup must be known from a listing made after the request.
    const bv = context.backupVolume;
    const synced = bv?.status?.lastSyncedAt !== undefined && (bv.spec.syncRequestedAt ?? '') <= bv.status.lastSyncedAt;
    if (!synced) return setStatus(withCondition(base, { type: restoreConditionType, status: 'False', reason: 'Activating', message: `activating: waiting for a fresh listing of backup volume ${parsed.volumeName}` }, context.nowText));
    const done: VolumeStatus = withCondition(
      { ...base, isStandby: false, restoreRequired: false, restoreInitiated: false, restoreLagSeconds: 0 },
      { type: restoreConditionType, status: 'True', reason: 'Activated', message: `activated holding ${want}` },
      context.nowText,
    );
    const { [ticketId]: _dropped, ...tickets } = context.attachment!.spec.attachmentTickets;
    return { kind: 'activated', status: done, attachment: { ...context.attachment!, spec: { ...context.attachment!.spec, attachmentTickets: tickets } }, note: `volume ${name}: activated holding backup ${want}; detaching` };
  }
  return setStatus(withCondition(base, { type: restoreConditionType, status: 'True', reason: 'UpToDate', message: `standby: holds ${want}, the newest backup` }, context.nowText));
}

function startStep(volume: Volume, context: StandbyContext, next: { status: VolumeStatus; backupName: string; address: string }): StandbyStep {
  const { status, backupName, address } = next;
  const parsed = parseBackupUrl(volume.spec.fromBackup!);
  if (typeof parsed === 'string') return { kind: 'none' };
  // Incremental only from a backup the volume holds completely and the target still has.
  const from = completedBackup(context, status.lastRestoredBackup) === undefined ? undefined : status.lastRestoredBackup;
  const stored: VolumeStatus = withCondition(
    {
      // A full restore overwrites everything: from its start the volume holds no backup whole.
      ...(from === undefined ? withoutRestored(status) : status),
      restoringBackup: backupName,
      restoreInitiated: true,
      restoreProgress: 0,
    },
    { type: restoreConditionType, status: 'False', reason: 'InProgress', message: `restoring ${backupName}${from === undefined ? ' (full)' : ` (incremental from ${from})`}: 0%` },
    context.nowText,
  );
  return {
    kind: 'start',
    address,
    request: { targetURL: parsed.targetURL, backupVolumeName: parsed.volumeName, backupName, ...(from === undefined ? {} : { fromBackupName: from }), concurrency: context.concurrency },
    status: stored,
    note: `volume ${volume.metadata.name}: restoring ${backupName}${from === undefined ? ' in full' : ` incrementally from ${from}`}`,
  };
}

function withoutRestored(status: VolumeStatus): VolumeStatus {
  const { lastRestoredBackup: _b, lastRestoredBackupAt: _a, restoreLagSeconds: _l, ...rest } = status;
  return rest;
}

/** What the engine's restore report means for a standby volume that asked for restoringBackup. */
export function standbyFromReport(volume: Volume, report: EngineRestoreReport, nowText: string): { status: VolumeStatus; note?: string; failed?: boolean } {
  const status: VolumeStatus = volume.status ?? {};
  const name = volume.metadata.name;
  const wanted = status.restoringBackup;
  const base = status.lastRestoredBackup;
  const ours = wanted !== undefined && report.backupName === wanted && report.fromBackupName === base;
  if (!ours || report.state === 'idle') {
    // Another restore still running (asked by an earlier manager run) finishes first; anything
    // else means ours is not running: ask again, from the same base.
    if (report.state === 'in_progress') return { status };
    return { status: { ...status, restoreInitiated: false }, note: `volume ${name}: the engine is not restoring ${wanted ?? '?'} (it has ${report.state}${report.backupName === undefined ? '' : ` ${report.backupName}`}); asking again` };
  }
  switch (report.state) {
    case 'in_progress':
      return {
        status: withCondition({ ...status, restoreProgress: report.progressPercent }, { type: restoreConditionType, status: 'False', reason: 'InProgress', message: `restoring ${wanted}${base === undefined ? ' (full)' : ` (incremental from ${base})`}: ${report.progressPercent}%` }, nowText),
      };
    case 'completed': {
      const { restoringBackup: _done, restoreProgress: _progress, ...rest } = status;
      return {
        status: withCondition(
          {
            ...rest,
            lastRestoredBackup: wanted,
            restoreInitiated: false,
            lastRestore: {
              backupName: wanted,
              ...(base === undefined ? {} : { fromBackupName: base }),
              mode: report.mode ?? (base === undefined ? 'full' : 'incremental'),
              blocksFetched: report.blocksFetched ?? 0,
              blocksZeroed: report.blocksZeroed ?? 0,
              finishedAt: nowText,
            },
          },
          { type: restoreConditionType, status: 'True', reason: 'Restored', message: `standby: restored ${wanted}` },
          nowText,
        ),
        note: `volume ${name}: restored ${wanted} (${report.mode ?? '?'}${base === undefined ? '' : ` from ${base}`}: ${report.blocksFetched ?? '?'} blocks written, ${report.blocksZeroed ?? '?'} zeroed)`,
      };
    }
    case 'error':
      return {
        status: withCondition({ ...status, restoreInitiated: false }, { type: restoreConditionType, status: 'False', reason: 'RestoreFailed', message: `restore of ${wanted} failed (retrying): ${report.error ?? 'the engine reported an error'}` }, nowText),
        note: `volume ${name}: restore of ${wanted} failed (retrying): ${report.error ?? '?'}`,
        failed: true,
      };
    default: {
      const unknown: never = report.state;
      throw new Error(`unknown restore state ${String(unknown)}`);
    }
  }
}
