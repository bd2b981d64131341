// The recurring-job controller's driver: it watches RecurringJob, Volume and Setting resources,
// asks the pure scheduler (recurring/job-schedule.ts) whether a job is due, records the run in
// the job's status BEFORE doing anything (the slot, the run number, currentRun), runs the task
// on the job's volumes at most `concurrency` at a time, and records the outcome. A manager that
// dies mid-run finds currentRun on restart and resumes that same run: the task steps are
// idempotent per run, so nothing is done twice. One manager owns each job (status.ownerID).
import type { Clock } from '../../lib/clock.ts';
import { toError } from '../../lib/errors.ts';
import { freeTextLengthMax, recurringJobRecheckMs, recurringJobTaskTimeoutMs, recurringJobVolumeReportMax } from '../../lib/limits.ts';
import type { Resource } from '../resources/object-meta.ts';
import type { RecurringJob, RecurringJobRun, RecurringJobStatus } from '../resources/recurring-job.ts';
import { validateResource } from '../resources/validate-resource.ts';
import type { Volume } from '../resources/volume.ts';
import { parseCronSchedule } from '../recurring/cron-schedule.ts';
import { forEachLimited } from '../recurring/for-each-limited.ts';
import { decideSchedule } from '../recurring/job-schedule.ts';
import { volumesOfJob } from '../recurring/job-targets.ts';
import { Informer } from '../runtime/informer.ts';
import { decideOwnership, leaseLiveness, ownerIdOf } from '../runtime/ownership.ts';
import type { Timers } from '../runtime/timers.ts';
import { isStoreError, type ResourceStore } from '../store/resource-store.ts';
import type { Engine } from '../resources/engine.ts';
import { EngineControlClient } from './engine-control-client.ts';
import { runTask, TaskAbortedError, type TaskContext } from './recurring-job-tasks.ts';
import { CoalescedRun } from '../runtime/coalesced-run.ts';

/** Annotation the API's runNow action sets (to the request time): run once now, off schedule. */
export const runNowAnnotation = 'shorthorn.io/recurring-job-run-requested-at';

export interface RecurringJobControllerOptions {
  readonly store: ResourceStore;
  readonly managerId: string;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly log: (message: string) => void;
  readonly taskTimeoutMs?: number;
  readonly pollMs?: number;
  readonly recheckMs?: number;
  /** The engine's head size (bytes written since the last snapshot); default: ask the engine. */
  readonly headSizeBytes?: (volume: Volume) => Promise<number | undefined>;
  /** fstrim of a volume's mounted filesystem, where this manager can reach it. */
  readonly trimFilesystem?: (volume: Volume) => Promise<string>;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const statusOf = (job: RecurringJob): RecurringJobStatus => job.status ?? {};

export class RecurringJobController {
  private readonly options: RecurringJobControllerOptions;
  private readonly jobs: Informer;
  private readonly volumes: Informer;
  private readonly settings: Informer;
  private readonly running = new Map<string, Promise<void>>();
  /**
   * The slot and monotonic start time of the last scheduled run this process started, by job: after
   * a wall clock steps back, real time since that run decides when the next one is due
   * (job-schedule.ts). Lost on restart, which falls back to the wall-clock rule.
   */
  private readonly scheduledStarts = new Map<string, { readonly slot: string; readonly monotonicMs: number }>();
  private readonly isLive: (managerId: string) => Promise<boolean>;
  private cancelTimer: (() => void) | undefined;
  private readonly evaluation = new CoalescedRun(() => this.evaluateAll(), () => this.stopped);
  private stopped = false;
  private readonly abort = new AbortController();
  /** Runs started and finished and looks taken by this process, for tests and metrics. */
  readonly stats = { runsStarted: 0, runsFinished: 0, looks: 0 };

  constructor(options: RecurringJobControllerOptions) {
    this.options = options;
    const onError = (error: Error): void => options.log(`store: ${error.message}`);
    this.jobs = new Informer(options.store, 'RecurringJob', { timers: options.timers, onError });
    this.volumes = new Informer(options.store, 'Volume', { timers: options.timers, onError });
    this.settings = new Informer(options.store, 'Setting', { timers: options.timers, onError });
    this.isLive = leaseLiveness(options.store);
    this.jobs.addHandler(() => this.kick());
  }

  async start(): Promise<void> {
    for (const informer of [this.jobs, this.volumes, this.settings]) informer.start();
    await Promise.all([this.jobs, this.volumes, this.settings].map((i) => i.waitForSync()));
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.cancelTimer?.();
    await this.evaluation.idle();
    await Promise.all(this.running.values());
    await Promise.all([this.jobs, this.volumes, this.settings].map((i) => i.stop()));
  }

  /** Look at every one soon; looks never overlap, and a kick during one brings another. */
  private kick(): void {
    this.evaluation.kick();
  }

  private async evaluateAll(): Promise<void> {
    const { clock, timers, log } = this.options;
    this.stats.looks++;
    let wakeMs = clock.nowMs() + (this.options.recheckMs ?? recurringJobRecheckMs);
    const listed = this.jobs.list();
    // Forget the run starts of jobs that are gone (the map holds at most one entry per live job).
    const names = new Set(listed.map((o) => o.metadata.name));
    for (const name of this.scheduledStarts.keys()) if (!names.has(name)) this.scheduledStarts.delete(name);
    for (const object of listed) {
      const name = object.metadata.name;
      if (this.running.has(name)) continue;
      try {
        // Decide on the stored object, not the cache: the cache may not show yet the run this
        // process just recorded or finished, and acting on it would run a slot twice.
        let job: RecurringJob;
        try {
          job = (await this.options.store.get('RecurringJob', name)) as RecurringJob;
        } catch (error) {
          if (isStoreError(error, 'not_found')) continue;
          throw error;
        }
        const nextMs = await this.evaluate(job);
        if (nextMs !== undefined) wakeMs = Math.min(wakeMs, nextMs);
      } catch (error) {
        // Conflicts and an unreachable store are retried at the next look.
        log(`recurring job ${name}: ${toError(error).message}`);
      }
    }
    if (this.stopped) return;
    this.cancelTimer?.();
    this.cancelTimer = timers.after(Math.max(0, wakeMs - clock.nowMs()), () => this.kick());
  }

  /** Decide about one job; returns when to look at it again. */
  private async evaluate(job: RecurringJob): Promise<number | undefined> {
    const { managerId, clock } = this.options;
    if (job.metadata.deletionTimestamp !== undefined) return undefined;
    const owner = ownerIdOf(job);
    const ownerLive = owner !== undefined && owner !== managerId && (await this.isLive(owner));
    const ownership = decideOwnership(job, { self: managerId, preferredOwner: undefined, isLive: (id) => id === owner && ownerLive });
    if (ownership.kind === 'skip') return undefined;
    if (ownership.kind === 'claim') {
      await this.writeStatus(ownership.object as RecurringJob, statusOf(ownership.object as RecurringJob));
      return undefined;
    }
    const status = statusOf(job);
    const nowMs = clock.nowMs();
    if (status.currentRun !== undefined) {
      this.options.log(`recurring job ${job.metadata.name}: resuming run ${status.currentRun.number} (slot ${status.currentRun.slot}) left unfinished`);
      this.launch(job, status.currentRun);
      return undefined;
    }
    const request = job.metadata.annotations?.[runNowAnnotation]?.slice(0, 64);
    const count = status.executionCount ?? 0;
    if (request !== undefined && request !== status.lastRunNowRequest) {
      const run: RecurringJobRun = { number: count + 1, slot: iso(nowMs), trigger: 'runNow', startedAt: iso(nowMs) };
      await this.startRun(job, run, { lastRunNowRequest: request });
      return undefined;
    }
    const schedule = parseCronSchedule(job.spec.cron);
    if (typeof schedule === 'string') {
      await this.patchStatus(job, { message: `not scheduled: ${schedule}` });
      return undefined;
    }
    const lastSlotMs = status.lastScheduledAt === undefined ? undefined : Date.parse(status.lastScheduledAt);
    const createdAtMs = Date.parse(job.metadata.creationTimestamp ?? '') || nowMs;
    const started = this.scheduledStarts.get(job.metadata.name);
    const realSinceLastRunMs = started !== undefined && started.slot === status.lastScheduledAt ? clock.monotonicMs() - started.monotonicMs : undefined;
    const decision = decideSchedule({ schedule, lastSlotMs, createdAtMs, nowMs, ...(realSinceLastRunMs === undefined ? {} : { realSinceLastRunMs }) });
    switch (decision.kind) {
      case 'never':
        await this.patchStatus(job, { message: `cron ${job.spec.cron} fires no more` });
        return undefined;
      case 'wait': {
        const patch: RecurringJobStatus = {
          nextRunAt: iso(decision.nextMs),
          ...(decision.resetAnchorMs === undefined ? {} : {
            lastScheduledAt: iso(decision.resetAnchorMs),
            message: `the clock was ${Math.round((decision.clockBehindMs ?? 0) / 1000)} s behind the last run's slot; the schedule restarted from ${iso(decision.resetAnchorMs)}`,
          }),
          ...(decision.clockBehindMs !== undefined && decision.resetAnchorMs === undefined
            ? { message: `the clock is ${Math.round(decision.clockBehindMs / 1000)} s behind the last run's slot; slots that ran are not run again` }
            : {}),
        };
        await this.patchStatus(job, patch);
        return decision.nextMs;
      }
      case 'run': {
        const run: RecurringJobRun = { number: count + 1, slot: iso(decision.slotMs), trigger: 'schedule', startedAt: iso(nowMs) };
        const folded = decision.collapsedSlots > 1 ? `; ${decision.collapsedSlots} slots since the last run folded into this one` : '';
        await this.startRun(job, run, {
          lastScheduledAt: run.slot,
          ...(decision.nextMs === null ? {} : { nextRunAt: iso(decision.nextMs) }),
          message: `run ${run.number} for slot ${run.slot}${folded}`,
        });
        return undefined;
      }
      default: {
        const unknown: never = decision;
        throw new Error(`unknown schedule decision ${JSON.stringify(unknown)}`);
      }
    }
  }

  /** Record the run (durably, before any work), then run it. */
  private async startRun(job: RecurringJob, run: RecurringJobRun, patch: RecurringJobStatus): Promise<void> {
    const stored = await this.writeStatus(job, {
      ...statusOf(job),
      ...patch,
      executionCount: run.number,
      currentRun: run,
      lastRunStartedAt: run.startedAt,
    });
    if (run.trigger === 'schedule') this.scheduledStarts.set(job.metadata.name, { slot: run.slot, monotonicMs: this.options.clock.monotonicMs() });
    this.options.log(`recurring job ${job.metadata.name}: run ${run.number} started (${run.trigger}, slot ${run.slot})`);
    this.launch(stored, run);
  }

  private launch(job: RecurringJob, run: RecurringJobRun): void {
    const name = job.metadata.name;
    this.stats.runsStarted++;
    const done = this.execute(job, run)
      .catch((error: unknown) => this.options.log(`recurring job ${name}: run ${run.number} not recorded (retried at the next look): ${toError(error).message}`))
      .finally(() => {
        this.running.delete(name);
        this.kick();
      });
    this.running.set(name, done);
  }

  private taskContext(): TaskContext {
    const { store, clock, timers } = this.options;
    return {
      store,
      clock,
      timers,
      timeoutMs: this.options.taskTimeoutMs ?? recurringJobTaskTimeoutMs,
      pollMs: this.options.pollMs ?? 500,
      signal: this.abort.signal,
      backupSnapshotCleanup: () => {
        const setting = this.settings.get('auto-cleanup-recurring-job-backup-snapshot') as Resource<{ value?: string }> | undefined;
        return (setting?.spec.value ?? 'true') === 'true';
      },
      headSizeBytes: (volume) => this.headSizeBytes(volume),
      ...(this.options.trimFilesystem === undefined ? {} : { trimFilesystem: this.options.trimFilesystem }),
    };
  }

  /** The live head's size from the volume's running engine; undefined when it cannot be asked. */
  private async headSizeBytes(volume: Volume): Promise<number | undefined> {
    if (this.options.headSizeBytes !== undefined) return this.options.headSizeBytes(volume);
    const { items } = await this.options.store.list('Engine');
    const engine = (items as Engine[]).find((e) => e.spec.volumeName === volume.metadata.name && e.status?.currentState === 'running');
    const ip = engine?.status?.ip;
    const port = engine?.status?.port;
    if (ip === undefined || port === undefined) return undefined;
    try {
      return (await new EngineControlClient(`${ip}:${port}`).snapshots()).head.sizeBytes;
    } catch (error) {
      this.options.log(`recurring jobs: volume ${volume.metadata.name}: cannot read the engine's head (snapshot taken anyway): ${toError(error).message}`);
      return undefined;
    }
  }

  private async execute(job: RecurringJob, run: RecurringJobRun): Promise<void> {
    const { log, clock } = this.options;
    const name = job.metadata.name;
    const volumes = volumesOfJob({ name, groups: job.spec.groups }, this.volumes.list() as Volume[]);
    const outcomes: Record<string, string> = {};
    const failures: string[] = [];
    let aborted = false;
    const context = this.taskContext();
    const ref = { number: run.number, slotMs: Date.parse(run.slot) };
    await forEachLimited(volumes, job.spec.concurrency, async (volume) => {
      const volumeName = volume.metadata.name;
      try {
        outcomes[volumeName] = await runTask(context, job, ref, volume);
      } catch (error) {
        if (error instanceof TaskAbortedError) {
          aborted = true;
          return;
        }
        const message = toError(error).message;
        outcomes[volumeName] = `failed: ${message}`;
        failures.push(`${volumeName}: ${message}`);
      }
      log(`recurring job ${name}: run ${run.number}: volume ${volumeName}: ${outcomes[volumeName]}`);
    });
    if (aborted) {
      log(`recurring job ${name}: run ${run.number} interrupted by shutdown; the next manager resumes it`);
      return;
    }
    const reported = Object.fromEntries(
      Object.entries(outcomes)
        .slice(0, recurringJobVolumeReportMax)
        .map(([volume, text]) => [volume, text.slice(0, freeTextLengthMax)]),
    );
    const finishedAt = iso(clock.nowMs());
    await this.finish(name, run, {
      lastRunFinishedAt: finishedAt,
      lastRunResult: failures.length === 0 ? 'Succeeded' : 'Failed',
      lastError: failures.join('; ').slice(0, freeTextLengthMax),
      volumes: reported,
    });
    this.stats.runsFinished++;
    log(`recurring job ${name}: run ${run.number} ${failures.length === 0 ? 'succeeded' : `failed on ${failures.length} volume(s)`} (${volumes.length} volume(s))`);
  }

  /** Clear currentRun and record the outcome, re-reading on conflict. */
  private async finish(name: string, run: RecurringJobRun, patch: RecurringJobStatus): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let job: RecurringJob;
      try {
        job = (await this.options.store.get('RecurringJob', name)) as RecurringJob;
      } catch (error) {
        if (isStoreError(error, 'not_found')) return; // deleted while it ran
        throw error;
      }
      if (job.status?.currentRun?.number !== run.number) return; // recorded already
      const { currentRun: _done, ...rest } = statusOf(job);
      try {
        await this.writeStatus(job, { ...rest, ...patch });
        return;
      } catch (error) {
        if (!isStoreError(error, 'conflict') || attempt >= 8) throw error;
      }
    }
  }

  /** Write changed status fields (no write when nothing changes). */
  private async patchStatus(job: RecurringJob, patch: RecurringJobStatus): Promise<void> {
    const status = statusOf(job);
    const next = { ...status, ...patch };
    if (JSON.stringify(next) === JSON.stringify(status)) return;
    await this.writeStatus(job, next);
  }

  private async writeStatus(job: RecurringJob, status: RecurringJobStatus): Promise<RecurringJob> {
    const next: RecurringJob = { ...job, status: { ...status, ownerID: this.options.managerId } };
    const checked = validateResource('RecurringJob', next);
    if (!checked.ok) throw new Error(`status of recurring job ${job.metadata.name} refused: ${checked.problems.map((p) => `${p.path}: ${p.reason}`).join('; ')}`);
    return (await this.options.store.updateStatus(next)) as RecurringJob;
  }
}
