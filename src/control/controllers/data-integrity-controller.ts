// The data-integrity controller's driver: informers for Volume, Engine and Setting; on every change
// and on a timer it asks decideIntegrity (data-integrity-reconcile.ts) about each volume this
// manager owns, writes the status fields it names (the next slot), and runs the checks it asks
// for through the engine's control API (POST /v1/scrub), ONE at a time per manager: a full check
// reads every sealed layer of every replica, and several at once would starve the volumes' I/O
// (Longhorn likewise hashes one snapshot per node at a time). The outcome goes into
// status.dataIntegrity (written with the slot, so a restart does not check the slot again) and
// the log. A replica the engine fails (markErr) is rebuilt by the volume controller as any other
// failed replica.
import { AssertionError } from '../../lib/assert.ts';
import type { Clock } from '../../lib/clock.ts';
import { toError } from '../../lib/errors.ts';
import type { Engine } from '../resources/engine.ts';
import type { Resource } from '../resources/object-meta.ts';
import { validateResource } from '../resources/validate-resource.ts';
import type { Volume, VolumeDataIntegrityStatus } from '../resources/volume.ts';
import { Informer } from '../runtime/informer.ts';
import type { Timers } from '../runtime/timers.ts';
import { isStoreError, type ResourceStore } from '../store/resource-store.ts';
import { decideIntegrity, recordCheck, type CheckOutcome, type CheckPlan, type IntegrityDecision } from './data-integrity-reconcile.ts';
import { EngineControlClient, EngineControlError, type EngineScrubReport, type EngineScrubRequest } from './engine-control-client.ts';
import { CoalescedRun } from '../runtime/coalesced-run.ts';

export interface DataIntegrityControllerOptions {
  readonly store: ResourceStore;
  readonly managerId: string;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly log: (message: string) => void;
  /** Longest wait between two looks at every volume (the settings and slots are read then). */
  readonly recheckMs?: number;
  /** Wait before trying again a check the engine refused (busy) or did not answer. */
  readonly retryMs?: number;
  /** The scrub call; default: the engine's control API at `address`. Tests pass their own. */
  readonly scrub?: (address: string, request: EngineScrubRequest) => Promise<EngineScrubReport>;
}

const defaultRecheckMs = 60_000;
const defaultRetryMs = 60_000;
/** Read-modify-write attempts of one status write before the look fails (and is retried). */
const writeAttemptsMax = 8;
const defaultSettings = { mode: 'fast-check', cron: '0 0 */7 * *' } as const;

export class DataIntegrityController {
  private readonly options: DataIntegrityControllerOptions;
  private readonly volumes: Informer;
  private readonly engines: Informer;
  private readonly settings: Informer;
  /** The volume whose check runs now, and the check. */
  private running: { readonly volume: string; readonly done: Promise<void> } | undefined;
  /** Volumes whose check the engine refused or did not answer: not before this monotonic time. */
  private readonly retryAt = new Map<string, number>();
  /**
   * The slot and monotonic start of the last scheduled check this process started, by volume: after
   * the wall clock steps back, real time since that check decides when the next is due
   * (recurring/job-schedule.ts). Lost on restart, which falls back to the wall-clock rule.
   */
  private readonly scheduledStarts = new Map<string, { readonly slot: string; readonly monotonicMs: number }>();
  /** Last note logged per volume, so a standing one (a due check waiting for an attach) is logged once. */
  private readonly lastNotes = new Map<string, string>();
  private cancelTimer: (() => void) | undefined;
  private readonly evaluation = new CoalescedRun(() => this.evaluateAll(), () => this.stopped);
  private stopped = false;
  readonly stats = { looks: 0, checksStarted: 0, checksRecorded: 0, checksRetried: 0 };

  constructor(options: DataIntegrityControllerOptions) {
    this.options = options;
    const onError = (error: Error): void => options.log(`store: ${error.message}`);
    this.volumes = new Informer(options.store, 'Volume', { timers: options.timers, onError });
    this.engines = new Informer(options.store, 'Engine', { timers: options.timers, onError });
    this.settings = new Informer(options.store, 'Setting', { timers: options.timers, onError });
    for (const informer of [this.volumes, this.engines, this.settings]) informer.addHandler(() => this.kick());
  }

  async start(): Promise<void> {
    for (const informer of [this.volumes, this.engines, this.settings]) informer.start();
    await Promise.all([this.volumes, this.engines, this.settings].map((i) => i.waitForSync()));
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    await this.evaluation.idle();
    // A check in flight (it may take hours) is not waited for: its answer, if it comes, is not
    // recorded, so the slot stays due and the next manager to own the volume checks it again.
    await Promise.all([this.volumes, this.engines, this.settings].map((i) => i.stop()));
  }

  /** Resolves when no check is in flight (tests). */
  async whenIdle(): Promise<void> {
    while (this.running !== undefined) await this.running.done;
  }

  /** Look at every one soon; looks never overlap, and a kick during one brings another. */
  private kick(): void {
    this.evaluation.kick();
  }

  private setting(name: string): string | undefined {
    const value = (this.settings.get(name) as Resource<{ value?: string }> | undefined)?.spec.value;
    return value === undefined || value === '' ? undefined : value;
  }

  private async evaluateAll(): Promise<void> {
    const { clock, timers, managerId } = this.options;
    this.stats.looks++;
    const nowMonotonicMs = clock.monotonicMs();
    let wakeMs = clock.nowMs() + (this.options.recheckMs ?? defaultRecheckMs);
    const listed = (this.volumes.list() as Volume[]).filter((v) => v.status?.ownerID === managerId);
    const names = new Set(listed.map((v) => v.metadata.name));
    for (const map of [this.scheduledStarts, this.retryAt, this.lastNotes]) for (const name of map.keys()) if (!names.has(name)) map.delete(name);
    for (const cached of listed) {
      const name = cached.metadata.name;
      if (this.running?.volume === name) continue;
      const retryAt = this.retryAt.get(name);
      if (retryAt !== undefined && retryAt > nowMonotonicMs) {
        wakeMs = Math.min(wakeMs, clock.nowMs() + (retryAt - nowMonotonicMs));
        continue;
      }
      try {
        const atMs = await this.evaluate(cached);
        if (atMs !== undefined) wakeMs = Math.min(wakeMs, atMs);
      } catch (error) {
        if (error instanceof AssertionError) throw error;
        this.options.log(`data check of volume ${name}: ${toError(error).message} (retried at the next look)`);
      }
    }
    if (this.stopped) return;
    this.cancelTimer?.();
    this.cancelTimer = timers.after(Math.max(0, wakeMs - clock.nowMs()), () => this.kick());
  }

  /**
   * Decide about one volume: first on the cached copy (cheap: most looks find nothing to do), then,
   * before acting, again on the stored Volume, because the cache may not show yet the slot this
   * process has just recorded, and acting on it would check a slot twice.
   */
  private async evaluate(cached: Volume): Promise<number | undefined> {
    const name = cached.metadata.name;
    const first = this.decide(cached);
    if (first.kind === 'idle' && first.status === undefined) {
      this.note(name, first.note);
      return undefined;
    }
    if (first.kind === 'wait' && first.status === undefined) {
      this.note(name, first.note);
      return first.atMs;
    }
    // One check at a time: the one running kicks another look when it is done.
    if (first.kind === 'check' && this.running !== undefined) return undefined;
    let volume: Volume;
    try {
      volume = (await this.options.store.get('Volume', name)) as Volume;
    } catch (error) {
      if (isStoreError(error, 'not_found')) return undefined;
      throw error;
    }
    const engine = this.engines.get(`${name}-e-0`) as Engine | undefined;
    const decision = this.decide(volume);
    if (decision.kind !== 'check') {
      this.note(name, decision.note);
      if (decision.status !== undefined) {
        const wanted = decision.status;
        await this.writeStatus(name, () => wanted);
      }
      return decision.kind === 'wait' ? decision.atMs : undefined;
    }
    if (this.running !== undefined) return undefined;
    this.launch(name, decision.plan, engine);
    return undefined;
  }

  private decide(volume: Volume): IntegrityDecision {
    const { clock, managerId } = this.options;
    const name = volume.metadata.name;
    const started = this.scheduledStarts.get(name);
    const lastSlot = volume.status?.dataIntegrity?.lastScheduledAt;
    return decideIntegrity({
      volume,
      engine: this.engines.get(`${name}-e-0`) as Engine | undefined,
      managerId,
      settingMode: this.setting('snapshot-data-integrity') ?? defaultSettings.mode,
      cron: this.setting('snapshot-data-integrity-cronjob') ?? defaultSettings.cron,
      nowMs: clock.nowMs(),
      ...(started !== undefined && started.slot === lastSlot ? { realSinceLastCheckMs: clock.monotonicMs() - started.monotonicMs } : {}),
    });
  }

  private note(name: string, note: string | undefined): void {
    if (note !== undefined && this.lastNotes.get(name) !== note) this.options.log(note);
    if (note === undefined) this.lastNotes.delete(name);
    else this.lastNotes.set(name, note);
  }

  private launch(name: string, plan: CheckPlan, engine: Engine | undefined): void {
    const { clock, log } = this.options;
    this.stats.checksStarted++;
    if (plan.trigger === 'schedule' && plan.slotMs !== undefined) {
      this.scheduledStarts.set(name, { slot: new Date(plan.slotMs).toISOString(), monotonicMs: clock.monotonicMs() });
    }
    log(`volume ${name}: data check (${plan.mode}, ${plan.trigger}) started on ${plan.rwReplicas} rw replica(s)${plan.markErr ? '' : ', report only'}`);
    const done = this.check(name, plan, engine)
      .catch((error: unknown) => {
        log(`volume ${name}: data check not recorded (retried later): ${toError(error).message}`);
        this.retryAt.set(name, clock.monotonicMs() + (this.options.retryMs ?? defaultRetryMs));
      })
      .finally(() => {
        this.running = undefined;
        this.kick();
      });
    this.running = { volume: name, done };
  }

  private async check(name: string, plan: CheckPlan, engine: Engine | undefined): Promise<void> {
    const { clock, log } = this.options;
    const request: EngineScrubRequest = { markErr: plan.markErr, verifyData: plan.verifyData };
    let outcome: CheckOutcome;
    try {
      const report = this.options.scrub === undefined
        ? await new EngineControlClient(plan.address).scrub(request)
        : await this.options.scrub(plan.address, request);
      outcome = { ok: true, report };
    } catch (error) {
      if (!(error instanceof EngineControlError)) throw error;
      // Busy (a purge, a rebuild or another scrub runs) or gone: no check happened; try later.
      outcome = error.code === 'failed' || error.code === 'bad_answer'
        ? { ok: false, recorded: true, message: error.message }
        : { ok: false, recorded: false, message: error.message };
    }
    if (this.stopped) {
      log(`volume ${name}: data check finished while the manager stops; not recorded (the slot stays due)`);
      return;
    }
    if (!outcome.ok && !outcome.recorded) {
      this.stats.checksRetried++;
      this.retryAt.set(name, clock.monotonicMs() + (this.options.retryMs ?? defaultRetryMs));
      log(`volume ${name}: data check not done, tried again in ${Math.round((this.options.retryMs ?? defaultRetryMs) / 1000)} s: ${outcome.message}`);
      return;
    }
    const finished = outcome;
    let note = '';
    await this.writeStatus(name, (before) => {
      const recorded = recordCheck(before, plan, finished, { volumeName: name, engine, nowMs: clock.nowMs() });
      note = recorded.note;
      return recorded.status;
    });
    this.retryAt.delete(name);
    this.stats.checksRecorded++;
    log(note);
  }

  /** Replace status.dataIntegrity, re-reading on conflict; only while this manager owns the volume. */
  private async writeStatus(name: string, change: (before: VolumeDataIntegrityStatus) => VolumeDataIntegrityStatus): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let volume: Volume;
      try {
        volume = (await this.options.store.get('Volume', name)) as Volume;
      } catch (error) {
        if (isStoreError(error, 'not_found')) return;
        throw error;
      }
      if (volume.status?.ownerID !== this.options.managerId) return;
      const before = volume.status.dataIntegrity ?? {};
      const dataIntegrity = change(before);
      if (JSON.stringify(dataIntegrity) === JSON.stringify(before)) return;
      const next: Volume = { ...volume, status: { ...volume.status, dataIntegrity } };
      const checked = validateResource('Volume', next);
      if (!checked.ok) throw new Error(`data check status of volume ${name} refused: ${checked.problems.map((p) => `${p.path}: ${p.reason}`).join('; ')}`);
      try {
        await this.options.store.updateStatus(next);
        return;
      } catch (error) {
        if (!isStoreError(error, 'conflict') || attempt >= writeAttemptsMax) throw error;
      }
    }
  }
}
