// The manager's backup driver: the BackupTarget `default` kept equal to the backup settings, the
// target polled and mirrored into BackupVolume and Backup resources (backup-mirror.ts), user
// backups run on the volume's engine (backup-reconcile.ts), volumes created with fromBackup
// restored (restore-reconcile.ts), and deleted Backup and BackupVolume resources deleted from the
// target before their finalizers go. Decisions are pure; this file does the I/O, once a second
// and on every change of a watched kind. One manager does all of it: the owner of the
// BackupTarget (status.ownerID, moved when its lease expires).
import type { Clock } from '../../lib/clock.ts';
import { toError } from '../../lib/errors.ts';
import type { BackupTarget, BackupTargetSpec, BackupTargetStatus } from '../resources/backup-target.ts';
import type { BackupVolume } from '../resources/backup-volume.ts';
import type { Backup } from '../resources/backup.ts';
import type { Engine } from '../resources/engine.ts';
import type { Node } from '../resources/node.ts';
import { apiVersion, type Resource } from '../resources/object-meta.ts';
import type { Replica } from '../resources/replica.ts';
import type { Snapshot } from '../resources/snapshot.ts';
import type { VolumeAttachment } from '../resources/volume-attachment.ts';
import type { Volume } from '../resources/volume.ts';
import type { Action } from '../runtime/controller.ts';
import { Informer } from '../runtime/informer.ts';
import { leaseLiveness } from '../runtime/ownership.ts';
import type { Timers } from '../runtime/timers.ts';
import { Settings, type SettingValues } from '../settings/settings.ts';
import { isStoreError, type ResourceStore } from '../store/resource-store.ts';
import { resolveCredentials, type CredentialSource } from './backup-credentials.ts';
import { backupFinalizer, backupVolumeFinalizer, backupVolumeLabel, planMirror, volumeOfBackup, type TargetListing } from './backup-mirror.ts';
import { planBackup, statusFromReport } from './backup-reconcile.ts';
import { portErrorCode, type BackupStoreSession, type BackupVolumeEntry, type OpenBackupStore } from './backup-store-port.ts';
import { parseBackupUrl, targetUrlOfSetting } from './backup-url.ts';
import type { EngineBackupApi } from './engine-backup-client.ts';
import { planRestore, restoreFromReport } from './restore-reconcile.ts';
import { isStandbyVolume, planStandby, standbyFromReport, type StandbyStep } from './standby-reconcile.ts';

/** A standby volume whose restore failed is asked again after this long (doubling, up to the max). */
const standbyRetryMs = 5_000;
const standbyRetryMaxMs = 300_000;

export const defaultBackupTargetName = 'default';

export interface BackupControllerOptions {
  readonly store: ResourceStore;
  readonly managerId: string;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly log: (message: string) => void;
  readonly openBackupStore: OpenBackupStore;
  readonly engines: EngineBackupApi;
  readonly credentials: CredentialSource;
  /** How often everything is looked at even if nothing changed (default 1 s). */
  readonly tickMs?: number;
}

const kinds = ['Setting', 'BackupTarget', 'BackupVolume', 'Backup', 'Volume', 'Engine', 'VolumeAttachment', 'Node', 'Replica', 'Snapshot'] as const;
type Kind = (typeof kinds)[number];

/** The BackupTarget spec the settings ask for (pure). */
export function targetSpecOf(settings: SettingValues, previous: BackupTargetSpec | undefined): BackupTargetSpec {
  return {
    backupTargetURL: settings['backup-target'],
    credentialSecret: settings['backup-target-credential-secret'],
    pollInterval: settings['backupstore-poll-interval'],
    ...(previous?.syncRequestedAt === undefined ? {} : { syncRequestedAt: previous.syncRequestedAt }),
  };
}

export class BackupController {
  private readonly options: BackupControllerOptions;
  private readonly informers: Map<Kind, Informer>;
  private readonly isLive: (id: string) => Promise<boolean>;
  private cancelTick: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private lastPollMs: number | undefined;
  private lastPollKey = '';
  /** Deletions from the target in flight, by resource kind/name: they can wait minutes for a lock. */
  private readonly deletions = new Map<string, Promise<void>>();
  /** Standby volumes whose last restore failed: when to ask again, and the current wait. */
  private readonly standbyRetries = new Map<string, { atMs: number; waitMs: number }>();

  constructor(options: BackupControllerOptions) {
    this.options = options;
    const onError = (error: Error): void => options.log(`store: ${error.message}`);
    this.informers = new Map(kinds.map((kind) => [kind, new Informer(options.store, kind, { timers: options.timers, onError })]));
    this.isLive = leaseLiveness(options.store);
    for (const kind of ['Setting', 'BackupTarget', 'Backup', 'BackupVolume', 'Volume', 'Engine'] as const) this.informer(kind).addHandler(() => this.kick());
  }

  private informer(kind: Kind): Informer {
    return this.informers.get(kind)!;
  }

  private list<R extends Resource>(kind: Kind): R[] {
    return this.informer(kind).list() as R[];
  }

  async start(): Promise<void> {
    for (const informer of this.informers.values()) informer.start();
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync()));
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTick?.();
    await this.running;
    await Promise.allSettled([...this.deletions.values()]);
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
  }

  /** Run a pass now (or right after the one running). */
  kick(): void {
    if (this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.cancelTick?.();
    this.running = this.pass()
      .catch((error: unknown) => this.options.log(`backup controller: pass failed (retrying): ${toError(error).message}`))
      .finally(() => {
        this.running = undefined;
        if (this.stopped) return;
        if (this.again) {
          this.again = false;
          this.kick();
        } else {
          this.cancelTick = this.options.timers.after(this.options.tickMs ?? 1000, () => this.kick());
        }
      });
  }

  private settings(): SettingValues {
    const stored: Record<string, string> = {};
    for (const setting of this.list('Setting')) {
      const value = (setting.spec as { value?: unknown }).value;
      if (typeof value === 'string') stored[setting.metadata.name] = value;
    }
    return Settings.fromStrings(stored).settings.values;
  }

  private nowText(): string {
    return new Date(this.options.clock.nowMs()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  private async apply(actions: readonly Action[]): Promise<void> {
    const { store } = this.options;
    for (const action of actions) {
      try {
        switch (action.type) {
          case 'create':
            await store.create(action.object);
            break;
          case 'update':
            await store.update(action.object);
            break;
          case 'updateStatus':
            await store.updateStatus(action.object);
            break;
          case 'delete':
            await store.delete(action.kind, action.name);
            break;
          case 'requeueAfter':
            break;
        }
      } catch (error) {
        // Someone else wrote first, or it is gone: the next pass sees the new state.
        if (isStoreError(error, 'conflict') || isStoreError(error, 'not_found') || isStoreError(error, 'already_exists')) continue;
        throw error;
      }
    }
  }

  private async pass(): Promise<void> {
    const settings = this.settings();
    const target = await this.syncTargetResource(settings);
    if (target === undefined) return;
    const owner = target.status?.ownerID;
    if (owner !== this.options.managerId) {
      if (owner !== undefined && (await this.isLive(owner))) return;
      // Unowned, or its owner's lease expired: take it; the watch event brings the next pass.
      await this.apply([{ type: 'updateStatus', object: { ...target, status: { ...target.status, ownerID: this.options.managerId } } }]);
      return;
    }
    const targetURL = targetUrlOfSetting(target.spec.backupTargetURL);
    await this.pollIfDue(target, targetURL);
    await this.runBackups(settings, targetURL);
    this.startDeletions(targetURL, target.spec.credentialSecret);
    await this.runRestores(settings, target.spec.credentialSecret);
  }

  private async syncTargetResource(settings: SettingValues): Promise<BackupTarget | undefined> {
    const current = this.informer('BackupTarget').get(defaultBackupTargetName) as BackupTarget | undefined;
    const spec = targetSpecOf(settings, current?.spec);
    if (current === undefined) {
      await this.apply([{ type: 'create', object: { apiVersion, kind: 'BackupTarget', metadata: { name: defaultBackupTargetName }, spec, status: { ownerID: this.options.managerId } } }]);
      return undefined;
    }
    if (JSON.stringify(spec) !== JSON.stringify(current.spec)) {
      await this.apply([{ type: 'update', object: { ...current, spec } }]);
      return undefined;
    }
    return current;
  }

  private async credentials(secretName: string): Promise<Record<string, string>> {
    return resolveCredentials(this.options.credentials, secretName);
  }

  private async pollIfDue(target: BackupTarget, targetURL: string): Promise<void> {
    const nowMs = this.options.clock.nowMs();
    const key = `${target.spec.backupTargetURL}\n${target.spec.credentialSecret}`;
    const requested = target.spec.syncRequestedAt !== undefined && target.spec.syncRequestedAt > (target.status?.lastSyncedAt ?? '');
    const bvRequested = this.list<BackupVolume>('BackupVolume').some((bv) => bv.spec.syncRequestedAt !== undefined && bv.spec.syncRequestedAt > (bv.status?.lastSyncedAt ?? ''));
    const intervalMs = target.spec.pollInterval * 1000;
    const due = this.lastPollMs === undefined || key !== this.lastPollKey || (intervalMs > 0 && nowMs - this.lastPollMs >= intervalMs);
    if (!due && !requested && !bvRequested) return;
    this.lastPollMs = nowMs;
    this.lastPollKey = key;
    const nowText = this.nowText();
    let status: BackupTargetStatus;
    if (targetURL === '') {
      status = { ...target.status, available: false, conditions: [{ type: 'Unavailable', status: 'True', reason: 'NoTarget', message: 'the backup-target setting is empty', lastTransitionTime: nowText }] };
      await this.apply(planMirror({ listing: new Map(), backupVolumes: this.list('BackupVolume'), backups: this.list('Backup'), nowText }).actions);
    } else {
      try {
        const listing = await this.withSession(targetURL, target.spec.credentialSecret, async (session) => this.listTarget(session));
        const plan = planMirror({ listing, backupVolumes: this.list('BackupVolume'), backups: this.list('Backup'), nowText });
        for (const note of plan.notes) this.options.log(note);
        await this.apply(plan.actions);
        status = { ...target.status, available: true, conditions: [{ type: 'Unavailable', status: 'False', reason: 'Available', lastTransitionTime: nowText }], lastSyncedAt: nowText };
      } catch (error) {
        const message = toError(error).message;
        if (portErrorCode(error) === undefined && !(error instanceof Error && error.name === 'CredentialError')) throw error;
        this.options.log(`backup target ${targetURL}: unavailable: ${message}`);
        status = { ...target.status, available: false, conditions: [{ type: 'Unavailable', status: 'True', reason: 'Unreachable', message: message.slice(0, 4000), lastTransitionTime: nowText }] };
      }
    }
    await this.apply([{ type: 'updateStatus', object: { ...target, status } }]);
  }

  private async withSession<T>(targetURL: string, secretName: string, work: (session: BackupStoreSession) => Promise<T>): Promise<T> {
    const session = await this.options.openBackupStore(targetURL, await this.credentials(secretName));
    try {
      return await work(session);
    } finally {
      await session.close();
    }
  }

  private async listTarget(session: BackupStoreSession): Promise<TargetListing> {
    const listing = new Map<string, BackupVolumeEntry | 'failed'>();
    for (const name of await session.listVolumeNames()) {
      try {
        listing.set(name, await session.readVolume(name));
      } catch (error) {
        if (portErrorCode(error) === undefined) throw error;
        this.options.log(`backup volume ${name}: cannot be listed: ${toError(error).message}`);
        listing.set(name, 'failed');
      }
    }
    return listing;
  }

  private async runBackups(settings: SettingValues, targetURL: string): Promise<void> {
    const volumes = new Map(this.list<Volume>('Volume').map((v) => [v.metadata.name, v]));
    const engines = this.list<Engine>('Engine');
    const snapshots = new Map(this.list<Snapshot>('Snapshot').map((s) => [s.metadata.name, s]));
    const secret = settings['backup-target-credential-secret'];
    for (const backup of this.list<Backup>('Backup')) {
      const volumeName = volumeOfBackup(backup);
      if (volumeName === undefined || backup.spec.snapshotName === undefined) continue;
      if (backup.metadata.deletionTimestamp === undefined && !(backup.metadata.finalizers ?? []).includes(backupFinalizer)) {
        // Made by another writer (a recurring job) without it: deleting the resource must delete
        // the backup from the target too.
        await this.apply([{ type: 'update', object: { ...backup, metadata: { ...backup.metadata, finalizers: [...(backup.metadata.finalizers ?? []), backupFinalizer] } } }]);
        continue;
      }
      const engine = engines.find((e) => e.spec.volumeName === volumeName && e.spec.active);
      const snapshot = snapshots.get(backup.spec.snapshotName);
      const step = planBackup(backup, volumeName, {
        volume: volumes.get(volumeName), engine, snapshot: snapshot?.spec.volume === volumeName ? snapshot : undefined,
        targetURL, concurrency: settings['backup-concurrent-limit'], nowText: this.nowText(),
      });
      switch (step.kind) {
        case 'none':
          break;
        case 'status':
          if (step.note !== undefined) this.options.log(step.note);
          await this.apply([{ type: 'updateStatus', object: { ...backup, status: step.status } }]);
          break;
        case 'start': {
          let status = step.status;
          try {
            await this.options.engines.startBackup(step.address, { ...step.request, credentials: await this.credentials(secret) });
            this.options.log(`backup ${backup.metadata.name}: started on the engine of ${volumeName} (snapshot ${step.request.snapshotName})`);
          } catch (error) {
            const message = toError(error).message;
            this.options.log(`backup ${backup.metadata.name}: the engine refused it: ${message}`);
            status = { ...backup.status, state: 'Error', volumeName, snapshotName: step.request.snapshotName, error: message.slice(0, 4000) };
          }
          await this.apply([{ type: 'updateStatus', object: { ...backup, status } }]);
          break;
        }
        case 'poll': {
          let report;
          try {
            report = await this.options.engines.backupStatus(step.address, backup.metadata.name);
          } catch (error) {
            this.options.log(`backup ${backup.metadata.name}: cannot read progress: ${toError(error).message}`);
            break;
          }
          const status = statusFromReport(backup, report, this.nowText());
          if (status.state !== backup.status?.state) this.options.log(`backup ${backup.metadata.name}: ${status.state ?? '?'}${status.error === undefined ? '' : `: ${status.error}`}`);
          if (JSON.stringify(status) !== JSON.stringify(backup.status)) await this.apply([{ type: 'updateStatus', object: { ...backup, status } }]);
          break;
        }
        default: {
          const unknown: never = step;
          throw new Error(`unknown backup step ${JSON.stringify(unknown)}`);
        }
      }
    }
  }

  /** Deleted Backup and BackupVolume resources: delete them from the target, then the finalizer. */
  private startDeletions(targetURL: string, secretName: string): void {
    const doomed: (Backup | BackupVolume)[] = [...this.list<BackupVolume>('BackupVolume'), ...this.list<Backup>('Backup')];
    for (const object of doomed) {
      const finalizer = object.kind === 'Backup' ? backupFinalizer : backupVolumeFinalizer;
      if (object.metadata.deletionTimestamp === undefined || !(object.metadata.finalizers ?? []).includes(finalizer)) continue;
      const key = `${object.kind}/${object.metadata.name}`;
      if (this.deletions.has(key)) continue;
      const work = this.deleteFromTarget(object, targetURL, secretName)
        .then(() => this.dropFinalizer(object.kind, object.metadata.name, finalizer))
        .catch((error: unknown) => this.options.log(`${key}: deleting from the backup target failed (retrying): ${toError(error).message}`))
        .finally(() => this.deletions.delete(key));
      this.deletions.set(key, work);
    }
  }

  private async deleteFromTarget(object: Backup | BackupVolume, targetURL: string, secretName: string): Promise<void> {
    if (object.kind === 'Backup') {
      const backup = object as Backup;
      const volumeName = volumeOfBackup(backup);
      // Never reached the target (refused, or failed before the placeholder): nothing to delete there.
      if (volumeName === undefined || targetURL === '' || (backup.status?.url === undefined && backup.status?.lastSyncedAt === undefined && backup.status?.state !== 'InProgress')) return;
      await this.withSession(targetURL, secretName, async (session) => {
        try {
          const result = await session.deleteBackup(volumeName, backup.metadata.name);
          this.options.log(`backup ${backup.metadata.name} of ${volumeName} deleted from the target; ${result.blocksDeleted} blocks freed${result.skipped === undefined ? '' : ` (collection skipped: ${result.skipped})`}`);
        } catch (error) {
          if (portErrorCode(error) !== 'not_found') throw error;
          this.options.log(`backup ${backup.metadata.name} of ${volumeName} was not in the target`);
        }
      });
      return;
    }
    const name = object.metadata.name;
    if (targetURL !== '') {
      await this.withSession(targetURL, secretName, async (session) => {
        if ((await session.listVolumeNames()).includes(name)) await session.deleteBackupVolume(name);
      });
      this.options.log(`backup volume ${name} deleted from the target`);
    }
    // Its backups' resources go too, without touching the target again.
    for (const backup of this.list<Backup>('Backup')) {
      if (volumeOfBackup(backup) !== name || backup.metadata.labels?.[backupVolumeLabel] === undefined) continue;
      await this.dropFinalizer('Backup', backup.metadata.name, backupFinalizer);
      if (backup.metadata.deletionTimestamp === undefined) await this.apply([{ type: 'delete', kind: 'Backup', name: backup.metadata.name }]);
    }
  }

  private async dropFinalizer(kind: string, name: string, finalizer: string): Promise<void> {
    const { store } = this.options;
    for (let attempt = 0; attempt < 8; attempt++) {
      let current: Resource;
      try {
        current = await store.get(kind, name);
      } catch (error) {
        if (isStoreError(error, 'not_found')) return;
        throw error;
      }
      const finalizers = (current.metadata.finalizers ?? []).filter((f) => f !== finalizer);
      if (finalizers.length === (current.metadata.finalizers ?? []).length) return;
      try {
        await store.update({ ...current, metadata: { ...current.metadata, finalizers } });
        return;
      } catch (error) {
        if (!isStoreError(error, 'conflict')) throw error;
      }
    }
  }

  private async runRestores(settings: SettingValues, secretName: string): Promise<void> {
    const attachments = this.informer('VolumeAttachment');
    const engines = this.list<Engine>('Engine');
    const replicas = this.list<Replica>('Replica');
    const nodes = this.list<Node>('Node');
    for (const volume of this.list<Volume>('Volume')) {
      if (volume.spec.fromBackup === undefined) continue;
      const name = volume.metadata.name;
      const attachment = attachments.get(name) as VolumeAttachment | undefined;
      if (isStandbyVolume(volume)) {
        const parsed = parseBackupUrl(volume.spec.fromBackup);
        const backupVolumeName = typeof parsed === 'string' ? undefined : parsed.volumeName;
        const step = planStandby(volume, {
          attachment, engine: engines.find((e) => e.spec.volumeName === name && e.spec.active),
          replicas: replicas.filter((r) => r.spec.volumeName === name), nodes,
          backupVolume: backupVolumeName === undefined ? undefined : (this.informer('BackupVolume').get(backupVolumeName) as BackupVolume | undefined),
          backups: this.list<Backup>('Backup').filter((b) => volumeOfBackup(b) === backupVolumeName),
          concurrency: settings['restore-concurrent-limit'], nowText: this.nowText(),
        });
        await this.runStandbyStep(volume, step, secretName);
        continue;
      }
      const step = planRestore(volume, {
        attachment, engine: engines.find((e) => e.spec.volumeName === name && e.spec.active),
        replicas: replicas.filter((r) => r.spec.volumeName === name), nodes,
        concurrency: settings['restore-concurrent-limit'], nowText: this.nowText(),
      });
      switch (step.kind) {
        case 'none':
          break;
        case 'status':
          if (step.note !== undefined) this.options.log(step.note);
          await this.apply([{ type: 'updateStatus', object: { ...volume, status: step.status } }]);
          break;
        case 'ticket':
          this.options.log(step.note);
          await this.apply([{ type: 'update', object: step.attachment }]);
          break;
        case 'start': {
          try {
            await this.options.engines.startRestore(step.address, { ...step.request, credentials: await this.credentials(secretName) });
            this.options.log(`volume ${name}: restore of ${step.request.backupName} started`);
            await this.apply([{ type: 'updateStatus', object: { ...volume, status: step.status } }]);
          } catch (error) {
            this.options.log(`volume ${name}: the engine refused the restore (retrying): ${toError(error).message}`);
          }
          break;
        }
        case 'poll': {
          let report;
          try {
            report = await this.options.engines.restoreStatus(step.address);
          } catch (error) {
            this.options.log(`volume ${name}: cannot read restore progress: ${toError(error).message}`);
            break;
          }
          const next = restoreFromReport(volume, attachment, report, this.nowText());
          if (next.note !== undefined) this.options.log(next.note);
          if (JSON.stringify(next.status) !== JSON.stringify(volume.status)) await this.apply([{ type: 'updateStatus', object: { ...volume, status: next.status } }]);
          // The status first: a ticket removed before restoreRequired is cleared would let the
          // volume look detached-and-done to a reader in between.
          if (next.attachment !== undefined) await this.apply([{ type: 'update', object: next.attachment }]);
          break;
        }
        default: {
          const unknown: never = step;
          throw new Error(`unknown restore step ${JSON.stringify(unknown)}`);
        }
      }
    }
  }

  private async runStandbyStep(volume: Volume, step: StandbyStep, secretName: string): Promise<void> {
    const name = volume.metadata.name;
    switch (step.kind) {
      case 'none':
        return;
      case 'status':
        if (step.note !== undefined) this.options.log(step.note);
        await this.apply([{ type: 'updateStatus', object: { ...volume, status: step.status } }]);
        return;
      case 'ticket':
        this.options.log(step.note);
        await this.apply([{ type: 'update', object: step.attachment }]);
        return;
      case 'start': {
        const retry = this.standbyRetries.get(name);
        if (retry !== undefined && this.options.clock.nowMs() < retry.atMs) return;
        // The backup being restored is stored before the engine hears of it: a crash after the
        // request finds it named, and restores that same backup from the same base again.
        try {
          await this.options.store.updateStatus({ ...volume, status: step.status });
        } catch (error) {
          if (isStoreError(error, 'conflict') || isStoreError(error, 'not_found')) return;
          throw error;
        }
        this.options.log(step.note);
        try {
          await this.options.engines.startRestore(step.address, { ...step.request, credentials: await this.credentials(secretName) });
        } catch (error) {
          // Stored as initiated: the next poll finds the engine not restoring it and asks again.
          this.options.log(`volume ${name}: the engine refused the restore of ${step.request.backupName} (retrying): ${toError(error).message}`);
        }
        return;
      }
      case 'poll': {
        let report;
        try {
          report = await this.options.engines.restoreStatus(step.address);
        } catch (error) {
          this.options.log(`volume ${name}: cannot read restore progress: ${toError(error).message}`);
          return;
        }
        const next = standbyFromReport(volume, report, this.nowText());
        if (next.note !== undefined) this.options.log(next.note);
        if (next.failed === true) {
          const waitMs = Math.min(standbyRetryMaxMs, (this.standbyRetries.get(name)?.waitMs ?? standbyRetryMs / 2) * 2);
          this.standbyRetries.set(name, { atMs: this.options.clock.nowMs() + waitMs, waitMs });
        } else if (report.state === 'completed') {
          this.standbyRetries.delete(name);
        }
        if (JSON.stringify(next.status) !== JSON.stringify(volume.status)) await this.apply([{ type: 'updateStatus', object: { ...volume, status: next.status } }]);
        return;
      }
      case 'activated':
        this.options.log(step.note);
        this.standbyRetries.delete(name);
        // Status first, and the ticket only once it is stored: users may attach once
        // restoreRequired is false, and a standby must never lose its ticket while it is one.
        try {
          await this.options.store.updateStatus({ ...volume, status: step.status });
        } catch (error) {
          if (isStoreError(error, 'conflict') || isStoreError(error, 'not_found')) return;
          throw error;
        }
        if (step.attachment !== undefined) await this.apply([{ type: 'update', object: step.attachment }]);
        return;
      default: {
        const unknown: never = step;
        throw new Error(`unknown standby step ${JSON.stringify(unknown)}`);
      }
    }
  }
}
