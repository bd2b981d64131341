// The engine's backup jobs and its one restore, in memory: a backup pins and resolves its
// snapshot before it is accepted (so 404 and 409 come back at once), then runs in the background
// through a BackupRunner (bin/ wires src/backup in; engine/ may not import it). Jobs are bounded
// (backupJobsMax; finished ones go oldest first) and die with the process: the controller treats
// a job the engine no longer knows as failed. While a restore writes the volume, NBD clients are
// refused (refuseClients), and a restore is refused while any client is connected.
import { ShorthornError, toError } from '../lib/errors.ts';
import { backupJobsMax } from '../lib/limits.ts';
import type { Clock } from '../lib/clock.ts';
import type { BackupRequest, RestoreRequest } from './backup-requests.ts';
import type { Engine } from './engine.ts';
import { ReplicaSnapshotReader } from './replica-snapshot-reader.ts';

export class BackupJobError extends ShorthornError<'conflict' | 'not_found'> {}

/** Progress as src/backup reports it. */
export interface JobProgress {
  readonly blocksDone: number;
  readonly blocksTotal: number;
  readonly dataBytes: number;
  readonly transferBytes: number;
  readonly bytesPerSecond: number;
}

export interface BackupOutcome {
  readonly backupURL: string;
  readonly mode: 'full' | 'incremental';
  /** Compressed bytes of blocks the target did not hold before (the backup's NewlyUploadedDataSize). */
  readonly newlyUploadedBytes: number;
  readonly blocksUploaded: number;
}

/** What bin/ plugs in: the backup library and the targets, with the request's credentials. */
export interface BackupRunner {
  backup(args: { volumeName: string; reader: ReplicaSnapshotReader; request: BackupRequest; onProgress: (p: JobProgress) => void }): Promise<BackupOutcome>;
  restore(args: { writer: Engine; targetIsZeroed: boolean; request: RestoreRequest; onProgress: (p: JobProgress) => void }): Promise<RestoreOutcome>;
}

/** What a finished restore wrote: a DR volume's incremental restore writes only the delta. */
export interface RestoreOutcome {
  readonly mode: 'full' | 'incremental';
  readonly blocksFetched: number;
  readonly blocksZeroed: number;
}

export type JobState = 'in_progress' | 'completed' | 'error';

export interface BackupJob {
  readonly backupName: string;
  readonly snapshotName: string;
  readonly volumeName: string;
  state: JobState;
  blocksDone: number;
  blocksTotal: number;
  dataBytes: number;
  transferBytes: number;
  bytesPerSecond: number;
  progressPercent: number;
  error?: string;
  backupURL?: string;
  mode?: 'full' | 'incremental';
  newlyUploadedBytes?: number;
  blocksUploaded?: number;
  /** The replica the snapshot is read from. */
  sourceReplica?: string;
  readonly startedAt: string;
  finishedAt?: string;
}

export interface RestoreStatus {
  state: 'idle' | JobState;
  backupName?: string;
  backupVolumeName?: string;
  /** The base of an incremental restore, as asked. */
  fromBackupName?: string;
  /** Set once completed: what ran and how many backup blocks it wrote with data and with zeros. */
  mode?: 'full' | 'incremental';
  blocksFetched?: number;
  blocksZeroed?: number;
  blocksDone: number;
  blocksTotal: number;
  dataBytes: number;
  transferBytes: number;
  bytesPerSecond: number;
  progressPercent: number;
  error?: string;
  lastRestoredBackup?: string;
  startedAt?: string;
  finishedAt?: string;
}

export interface BackupJobsOptions {
  readonly engine: Engine;
  readonly runner: BackupRunner;
  readonly clock: Clock;
  readonly log: (message: string) => void;
  readonly jobsMax?: number;
}

export class BackupJobs {
  private readonly options: BackupJobsOptions;
  private readonly jobs = new Map<string, BackupJob>();
  private restoreStatus: RestoreStatus = { state: 'idle', blocksDone: 0, blocksTotal: 0, dataBytes: 0, transferBytes: 0, bytesPerSecond: 0, progressPercent: 0 };
  /** Settles when the background work started last settles (tests and shutdown wait on it). */
  private running = new Set<Promise<void>>();

  constructor(options: BackupJobsOptions) {
    this.options = options;
  }

  list(): BackupJob[] {
    return [...this.jobs.values()].map((j) => ({ ...j }));
  }

  get(backupName: string): BackupJob {
    const job = this.jobs.get(backupName);
    if (job === undefined) throw new BackupJobError('not_found', `No backup job ${backupName} in this engine (jobs do not survive an engine restart)`);
    return { ...job };
  }

  restore(): RestoreStatus {
    return { ...this.restoreStatus };
  }

  /** Why NBD clients are refused now, or null. */
  refuseClients(): string | null {
    return this.restoreStatus.state === 'in_progress' ? `a restore of backup ${this.restoreStatus.backupName ?? '?'} is writing volume ${this.options.engine.volumeName}` : null;
  }

  /** Wait for every background job to settle. */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Pin and resolve the snapshot, then run the backup in the background. */
  async startBackup(request: BackupRequest): Promise<BackupJob> {
    const { engine, clock, log } = this.options;
    if (this.jobs.get(request.backupName)?.state === 'in_progress') throw new BackupJobError('conflict', `Backup ${request.backupName} is already running`);
    if (this.restoreStatus.state === 'in_progress') throw new BackupJobError('conflict', `Cannot back up while a restore writes volume ${engine.volumeName}`);
    this.makeRoom();
    const reader = await ReplicaSnapshotReader.open(engine, request.snapshotName, { holder: `backup ${request.backupName}` });
    // Checked again after the await: another request for the same name may have started meanwhile.
    if (this.jobs.get(request.backupName)?.state === 'in_progress') {
      reader.close();
      throw new BackupJobError('conflict', `Backup ${request.backupName} is already running`);
    }
    const job: BackupJob = {
      backupName: request.backupName, snapshotName: request.snapshotName, volumeName: engine.volumeName, state: 'in_progress',
      blocksDone: 0, blocksTotal: 0, dataBytes: 0, transferBytes: 0, bytesPerSecond: 0, progressPercent: 0,
      sourceReplica: reader.sourceAddress, startedAt: new Date(clock.nowMs()).toISOString(),
    };
    this.jobs.delete(request.backupName);
    this.jobs.set(request.backupName, job);
    log(`backup ${job.backupName} of snapshot ${job.snapshotName} started (reading from ${reader.sourceAddress})`);
    this.track(
      this.options.runner
        .backup({
          volumeName: engine.volumeName,
          reader,
          request,
          onProgress: (p) => {
            applyProgress(job, p);
            job.sourceReplica = reader.sourceAddress; // it changes when the reader fails over
          },
        })
        .then(
          (outcome) => {
            job.state = 'completed';
            job.progressPercent = 100;
            job.backupURL = outcome.backupURL;
            job.mode = outcome.mode;
            job.newlyUploadedBytes = outcome.newlyUploadedBytes;
            job.blocksUploaded = outcome.blocksUploaded;
            log(`backup ${job.backupName} completed (${outcome.mode}, ${job.blocksDone} blocks read, ${outcome.newlyUploadedBytes} new bytes uploaded)`);
          },
          (error: unknown) => {
            job.state = 'error';
            job.error = toError(error).message;
            log(`backup ${job.backupName} failed: ${job.error}`);
          },
        )
        .finally(() => {
          job.finishedAt = new Date(clock.nowMs()).toISOString();
          reader.close();
        }),
    );
    return { ...job };
  }

  /** Restore a backup into this engine's volume, in the background. */
  startRestore(request: RestoreRequest, clientCount: number): RestoreStatus {
    const { engine, clock, log } = this.options;
    if (this.restoreStatus.state === 'in_progress') throw new BackupJobError('conflict', `A restore of backup ${this.restoreStatus.backupName ?? '?'} is already running`);
    if (clientCount > 0) throw new BackupJobError('conflict', `Cannot restore while ${clientCount} NBD clients are connected: detach them first`);
    const running = [...this.jobs.values()].find((j) => j.state === 'in_progress');
    if (running !== undefined) throw new BackupJobError('conflict', `Cannot restore while backup ${running.backupName} runs`);
    // From here on (synchronously after the client check) NBD clients are refused.
    const status: RestoreStatus = {
      state: 'in_progress', backupName: request.backupName, backupVolumeName: request.backupVolumeName,
      ...(request.fromBackupName === undefined ? {} : { fromBackupName: request.fromBackupName }),
      blocksDone: 0, blocksTotal: 0, dataBytes: 0, transferBytes: 0, bytesPerSecond: 0, progressPercent: 0,
      startedAt: new Date(clock.nowMs()).toISOString(),
      // No lastRestoredBackup: from the first block written the volume no longer holds the
      // backup restored before, and a restore that fails leaves it holding neither (S22).
    };
    this.restoreStatus = status;
    log(`restore of backup ${request.backupName} of ${request.backupVolumeName} started`);
    const work = (async () => {
      // A volume with no snapshot and nothing in its head reads as zeros everywhere: the restore
      // need not zero the ranges the backup does not map.
      const source = engine.rwLinks()[0];
      const chain = source === undefined ? undefined : await source.chain();
      const targetIsZeroed = chain !== undefined && chain.snapshots.length === 0 && chain.headSizeBytes === 0;
      return this.options.runner.restore({ writer: engine, targetIsZeroed, request, onProgress: (p) => applyProgress(status, p) });
    })();
    this.track(
      work
        .then(
          (outcome) => {
            status.state = 'completed';
            status.progressPercent = 100;
            status.lastRestoredBackup = request.backupName;
            status.mode = outcome.mode;
            status.blocksFetched = outcome.blocksFetched;
            status.blocksZeroed = outcome.blocksZeroed;
            log(`restore of backup ${request.backupName} completed (${outcome.mode}${request.fromBackupName === undefined ? '' : ` from ${request.fromBackupName}`}: ${outcome.blocksFetched} blocks written, ${outcome.blocksZeroed} zeroed)`);
          },
          (error: unknown) => {
            status.state = 'error';
            status.error = toError(error).message;
            log(`restore of backup ${request.backupName} failed: ${status.error}`);
          },
        )
        .finally(() => {
          status.finishedAt = new Date(clock.nowMs()).toISOString();
        }),
    );
    return { ...status };
  }

  private track(work: Promise<void>): void {
    this.running.add(work);
    void work.finally(() => this.running.delete(work));
  }

  /** Drop the oldest finished jobs so that a new one fits; refuse when every slot runs. */
  private makeRoom(): void {
    const max = this.options.jobsMax ?? backupJobsMax;
    for (const [name, job] of this.jobs) {
      if (this.jobs.size < max) return;
      if (job.state !== 'in_progress') this.jobs.delete(name);
    }
    if (this.jobs.size >= max) throw new BackupJobError('conflict', `${this.jobs.size} backups are running, the most this engine runs at once`);
  }
}

function applyProgress(target: { blocksDone: number; blocksTotal: number; dataBytes: number; transferBytes: number; bytesPerSecond: number; progressPercent: number }, p: JobProgress): void {
  target.blocksDone = p.blocksDone;
  target.blocksTotal = p.blocksTotal;
  target.dataBytes = p.dataBytes;
  target.transferBytes = p.transferBytes;
  target.bytesPerSecond = Math.round(p.bytesPerSecond);
  target.progressPercent = p.blocksTotal === 0 ? 0 : Math.min(99, Math.floor((p.blocksDone * 100) / p.blocksTotal));
}
