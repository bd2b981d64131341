// A Backup the user asked for (spec.snapshotName set) through its states, pure (Longhorn's backup
// controller, reference §1.9): Pending until the volume's engine runs and the snapshot is ready,
// then the engine is asked to back it up (InProgress), then its report decides Completed or
// Error. An engine that stopped, restarted (it no longer knows the backup) or changed process
// while the backup ran makes it Error: a backup is only Completed on the engine's word.
import { freeTextLengthMax } from '../../lib/limits.ts';
import type { Engine } from '../resources/engine.ts';
import type { Backup, BackupStatus } from '../resources/backup.ts';
import type { Snapshot } from '../resources/snapshot.ts';
import type { Volume } from '../resources/volume.ts';
import type { EngineBackupReport, EngineBackupRequest } from './engine-backup-client.ts';

/** What the backup controller needs to know about the backup's surroundings. */
export interface BackupContext {
  readonly volume: Volume | undefined;
  readonly engine: Engine | undefined;
  /** The Snapshot resource of that name, when there is one. */
  readonly snapshot: Snapshot | undefined;
  /** The library URL of the backup target; '' when none is set. */
  readonly targetURL: string;
  readonly concurrency: number;
  readonly nowText: string;
}

export type BackupStep =
  | { readonly kind: 'none' }
  /** Write this status (Pending with a reason, or a final Error). */
  | { readonly kind: 'status'; readonly status: BackupStatus; readonly note?: string }
  /** Ask the engine to start; on success write `status`. Credentials are added by the driver. */
  | { readonly kind: 'start'; readonly address: string; readonly request: Omit<EngineBackupRequest, 'credentials'>; readonly status: BackupStatus }
  /** Read the engine's report and pass it to statusFromReport. */
  | { readonly kind: 'poll'; readonly address: string };

/** The engine's control address while it runs, and which process it is. */
export function engineAddress(engine: Engine | undefined): { address: string; identity: string } | undefined {
  const status = engine?.status;
  if (engine === undefined || status?.currentState !== 'running' || status.ip === undefined || status.port === undefined) return undefined;
  return { address: `${status.ip}:${status.port}`, identity: `${engine.metadata.name} pid ${status.pid ?? '?'} epoch ${engine.spec.epoch}` };
}

const engineMessage = 'engine';

export function backupVolumeName(backup: Backup, labelKey: string): string | undefined {
  return backup.metadata.labels?.[labelKey] ?? backup.status?.volumeName;
}

function failed(status: BackupStatus, error: string): BackupStatus {
  return { ...status, state: 'Error', error: error.slice(0, freeTextLengthMax) };
}

export function planBackup(backup: Backup, volumeName: string, context: BackupContext): BackupStep {
  const status: BackupStatus = backup.status ?? {};
  const snapshotName = backup.spec.snapshotName;
  if (snapshotName === undefined || backup.metadata.deletionTimestamp !== undefined) return { kind: 'none' };
  const pending = (why: string): BackupStep => {
    const next: BackupStatus = { ...status, state: 'Pending', volumeName, snapshotName, messages: { ...status.messages, waiting: why } };
    return JSON.stringify(next) === JSON.stringify(status) ? { kind: 'none' } : { kind: 'status', status: next, note: `backup ${backup.metadata.name}: waiting: ${why}` };
  };
  const engine = engineAddress(context.engine);
  switch (status.state) {
    case undefined:
    case 'Pending': {
      if (context.volume === undefined) return { kind: 'status', status: failed({ ...status, volumeName, snapshotName }, `volume ${volumeName} does not exist`) };
      if (context.targetURL === '') return pending('no backup target: set the backup-target setting');
      if (engine === undefined) return pending(`volume ${volumeName} is not attached (its engine does not run)`);
      if (context.snapshot !== undefined && context.snapshot.status?.readyToUse !== true) {
        if (context.snapshot.status?.error !== undefined) return { kind: 'status', status: failed({ ...status, volumeName, snapshotName }, `snapshot ${snapshotName}: ${context.snapshot.status.error}`) };
        return pending(`snapshot ${snapshotName} is not ready yet`);
      }
      const { waiting: _waiting, ...messages } = status.messages ?? {};
      return {
        kind: 'start',
        address: engine.address,
        request: {
          backupName: backup.metadata.name,
          snapshotName,
          targetURL: context.targetURL,
          compression: context.volume.spec.backupCompressionMethod,
          mode: backup.spec.backupMode,
          concurrency: context.concurrency,
          labels: backup.spec.labels ?? {},
        },
        status: {
          ...status, state: 'InProgress', progress: 0, volumeName, snapshotName, volumeSize: context.volume.spec.size,
          compressionMethod: context.volume.spec.backupCompressionMethod, messages: { ...messages, [engineMessage]: engine.identity },
        },
      };
    }
    case 'InProgress': {
      const startedOn = status.messages?.[engineMessage];
      if (engine === undefined) return { kind: 'status', status: failed(status, `the engine of volume ${volumeName} stopped while the backup ran`), note: `backup ${backup.metadata.name}: engine stopped; failed` };
      if (startedOn !== undefined && startedOn !== engine.identity) {
        return { kind: 'status', status: failed(status, `the engine of volume ${volumeName} restarted while the backup ran (${startedOn} → ${engine.identity})`), note: `backup ${backup.metadata.name}: engine restarted; failed` };
      }
      return { kind: 'poll', address: engine.address };
    }
    case 'Completed':
    case 'Error':
    case 'Unknown':
      return { kind: 'none' };
    default: {
      const unknown: never = status.state;
      throw new Error(`unknown backup state ${String(unknown)}`);
    }
  }
}

/** The status after reading the engine's report (undefined: the engine does not know it). */
export function statusFromReport(backup: Backup, report: EngineBackupReport | undefined, nowText: string): BackupStatus {
  const status: BackupStatus = backup.status ?? {};
  if (report === undefined) return failed(status, 'the engine no longer knows this backup (it restarted); it did not complete');
  switch (report.state) {
    case 'in_progress':
      return { ...status, state: 'InProgress', progress: Math.min(99, report.progressPercent) };
    case 'error':
      return failed({ ...status, progress: report.progressPercent }, report.error ?? 'the engine reported an error without a message');
    case 'completed':
      return {
        ...status,
        state: 'Completed',
        progress: 100,
        ...(report.backupURL === undefined ? {} : { url: report.backupURL }),
        ...(report.dataBytes === undefined ? {} : { size: report.dataBytes }),
        ...(report.newlyUploadedBytes === undefined ? {} : { newlyUploadDataSize: report.newlyUploadedBytes }),
        backupCreatedAt: status.backupCreatedAt ?? nowText,
      };
    default: {
      const unknown: never = report.state;
      throw new Error(`unknown engine backup state ${String(unknown)}`);
    }
  }
}
