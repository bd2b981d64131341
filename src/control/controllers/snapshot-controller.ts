// The snapshot controller's driver: informers for Volume, Engine, Replica and Snapshot, a work
// queue keyed by volume name, and per pass: read the engine's snapshot tree over its control API
// (only while the volume is attached), ask reconcileSnapshots what to do, run the one engine
// operation it names or the store writes, and log the notes. It acts only on volumes this manager
// owns (status.ownerID, claimed by the volume controller), and polls an attached volume's engine
// every pollIntervalMs, because snapshots taken inside the engine (rebuilds) make no store event.
import { AssertionError } from '../../lib/assert.ts';
import type { Clock } from '../../lib/clock.ts';
import { toError } from '../../lib/errors.ts';
import type { Engine } from '../resources/engine.ts';
import type { Resource } from '../resources/object-meta.ts';
import type { Replica } from '../resources/replica.ts';
import type { Snapshot } from '../resources/snapshot.ts';
import type { Volume } from '../resources/volume.ts';
import type { Action } from '../runtime/controller.ts';
import { Informer } from '../runtime/informer.ts';
import type { Timers } from '../runtime/timers.ts';
import { WorkQueue } from '../runtime/work-queue.ts';
import { isStoreError, type ResourceStore } from '../store/resource-store.ts';
import { EngineControlClient, EngineControlError, type EngineSnapshotTree } from './engine-control-client.ts';
import {
  afterEngineOp,
  engineControlAddress,
  reconcileSnapshots,
  type Change,
  type EngineOp,
  type OpOutcome,
  type SnapshotObserved,
} from './snapshot-reconcile.ts';

export interface SnapshotControllerOptions {
  readonly store: ResourceStore;
  readonly managerId: string;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly log: (message: string) => void;
  /** How often an attached volume's engine tree is read when nothing else happens. */
  readonly pollIntervalMs?: number;
  readonly workers?: number;
}

const kinds = ['Volume', 'Engine', 'Replica', 'Snapshot'] as const;
/** Read-modify-write attempts of one change before the pass fails (and is retried with back-off). */
const changeAttemptsMax = 5;

export class SnapshotController {
  private readonly options: SnapshotControllerOptions;
  private readonly informers: Map<string, Informer>;
  readonly queue: WorkQueue;
  private readonly workers: Promise<void>[] = [];
  private cancelResync: (() => void) | undefined;
  private stopped = false;
  /** Counters for tests and metrics. */
  readonly stats = { passes: 0, engineOps: 0, failures: 0 };
  /** Notes of each volume's last pass, so that standing ones are not logged again. */
  private readonly lastNotes = new Map<string, Set<string>>();

  constructor(options: SnapshotControllerOptions) {
    this.options = options;
    const onError = (error: Error): void => options.log(`store: ${error.message}`);
    this.informers = new Map(kinds.map((kind) => [kind, new Informer(options.store, kind, { timers: options.timers, onError })]));
    this.queue = new WorkQueue({ clock: options.clock, timers: options.timers });
    const keyOf: Record<(typeof kinds)[number], (object: Resource) => string | undefined> = {
      Volume: (o) => o.metadata.name,
      Engine: (o) => (o as Engine).spec.volumeName,
      Replica: (o) => (o as Replica).spec.volumeName,
      Snapshot: (o) => (o as Snapshot).spec.volume,
    };
    for (const kind of kinds) {
      this.informer(kind).addHandler((event) => {
        for (const object of [event.object, event.old]) {
          const key = object === undefined ? undefined : keyOf[kind](object);
          if (key !== undefined) this.queue.add(key);
        }
      });
    }
  }

  private informer(kind: (typeof kinds)[number]): Informer {
    const informer = this.informers.get(kind);
    if (informer === undefined) throw new AssertionError(`no informer for ${kind}`);
    return informer;
  }

  async start(): Promise<void> {
    for (const informer of this.informers.values()) informer.start();
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync()));
    for (let i = 0; i < (this.options.workers ?? 2); i++) this.workers.push(this.work());
    this.scheduleResync();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelResync?.();
    this.queue.shutDown();
    await Promise.all(this.workers);
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
  }

  private scheduleResync(): void {
    if (this.stopped) return;
    this.cancelResync = this.options.timers.after(30_000, () => {
      for (const volume of this.informer('Volume').list()) this.queue.add(volume.metadata.name);
      this.scheduleResync();
    });
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        const requeueMs = await this.pass(key);
        this.queue.forget(key);
        if (requeueMs !== undefined) this.queue.addAfter(key, requeueMs);
      } catch (error) {
        if (error instanceof AssertionError) throw error;
        this.stats.failures++;
        this.options.log(`snapshots of volume ${key}: pass failed (retrying): ${toError(error).message}`);
        this.queue.addRateLimited(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  /**
   * The Volume and Engine are read from the store, not the informers: right after an operation
   * the caches may still show the request it has just cleared (a purge or revert annotation, the
   * old engine size), and acting on that would run it twice.
   */
  private async freshly<T extends Resource>(kind: string, name: string): Promise<T | undefined> {
    try {
      return (await this.options.store.get(kind, name)) as T;
    } catch (error) {
      if (isStoreError(error, 'not_found')) return undefined;
      throw error;
    }
  }

  private observe(base: { volumeName: string; volume: Volume | undefined; engine: Engine | undefined }, tree: EngineSnapshotTree | undefined, treeError: string | undefined): SnapshotObserved {
    const { volumeName } = base;
    const snapshots = this.informer('Snapshot').list() as Snapshot[];
    return {
      ...base,
      replicas: (this.informer('Replica').list() as Replica[]).filter((r) => r.spec.volumeName === volumeName),
      snapshots: snapshots.filter((s) => s.spec.volume === volumeName),
      snapshotOwners: new Map(snapshots.map((s) => [s.metadata.name, s.spec.volume])),
      tree,
      ...(treeError === undefined ? {} : { treeError }),
      nowMs: this.options.clock.nowMs(),
      managerId: this.options.managerId,
    };
  }

  /** One pass over one volume; returns when to look again. */
  private async pass(volumeName: string): Promise<number | undefined> {
    const volume = await this.freshly<Volume>('Volume', volumeName);
    // Another manager owns it (or none has claimed it yet: the volume controller will).
    if (volume !== undefined && volume.status?.ownerID !== this.options.managerId) return undefined;
    this.stats.passes++;
    const engine = await this.freshly<Engine>('Engine', `${volumeName}-e-0`);
    const base = { volumeName, volume, engine: engine?.spec.volumeName === volumeName ? engine : undefined };
    const address = engineControlAddress(base.volume, base.engine);
    let tree: EngineSnapshotTree | undefined;
    let treeError: string | undefined;
    if (address !== undefined) {
      try {
        tree = await new EngineControlClient(address).snapshots();
      } catch (error) {
        if (!(error instanceof EngineControlError)) throw error;
        treeError = `the engine of volume ${volumeName} did not list its snapshots: ${error.message}`;
      }
    }
    const observed = this.observe(base, tree, treeError);
    const decision = reconcileSnapshots(observed);
    // The engine is polled every few seconds: a note that stays true (a name clash) is logged
    // when it first appears, not on every poll.
    const previous = this.lastNotes.get(volumeName) ?? new Set<string>();
    for (const note of decision.notes) if (decision.op !== undefined || !previous.has(note)) this.options.log(note);
    if (volume === undefined) this.lastNotes.delete(volumeName);
    else this.lastNotes.set(volumeName, new Set(decision.notes));
    if (decision.op !== undefined && address !== undefined) return this.runOp(address, decision.op, observed);
    for (const action of decision.actions) await this.apply(action);
    for (const change of decision.changes ?? []) await this.applyChange(change);
    if (treeError !== undefined) return 5000;
    return decision.requeueMs ?? (address === undefined ? undefined : (this.options.pollIntervalMs ?? 5000));
  }

  private async runOp(address: string, op: EngineOp, observed: SnapshotObserved): Promise<number> {
    const client = new EngineControlClient(address);
    this.stats.engineOps++;
    let outcome: OpOutcome = { ok: true };
    try {
      switch (op.kind) {
        case 'expand':
          await client.expand(op.sizeBytes);
          break;
        case 'markRemoved':
          await client.markRemoved(op.name);
          break;
        case 'create':
          await client.createSnapshot(op.name, op.labels);
          break;
        case 'purge':
          await client.purge();
          break;
        case 'revert':
          await client.revert(op.name);
          break;
        default: {
          const unknown: never = op;
          throw new AssertionError(`unknown engine operation ${JSON.stringify(unknown)}`);
        }
      }
    } catch (error) {
      if (!(error instanceof EngineControlError)) throw error;
      outcome = { ok: false, message: error.message, refused: error.code === 'refused' };
    }
    const after = afterEngineOp(op, outcome, { ...observed, nowMs: this.options.clock.nowMs() });
    for (const note of after.notes) this.options.log(note);
    for (const change of after.changes) await this.applyChange(change);
    // Done: look again at once with a fresh tree. Failed: after a while.
    return after.retryMs ?? 0;
  }

  private async apply(action: Action): Promise<void> {
    const { store } = this.options;
    try {
      switch (action.type) {
        case 'create':
          await store.create(action.object);
          return;
        case 'update':
          await store.update(action.object);
          return;
        case 'updateStatus':
          await store.updateStatus(action.object);
          return;
        case 'delete':
          await store.delete(action.kind, action.name);
          return;
        case 'requeueAfter':
          return;
      }
    } catch (error) {
      // Gone already: what the write was for is done. A conflict fails the pass (retried with
      // fresh caches).
      if (isStoreError(error, 'not_found')) return;
      throw error;
    }
  }

  private async applyChange(change: Change): Promise<void> {
    const { store } = this.options;
    for (let attempt = 1; ; attempt++) {
      let current: Resource;
      try {
        current = await store.get(change.kind, change.name);
      } catch (error) {
        if (isStoreError(error, 'not_found')) return;
        throw error;
      }
      const next = change.change(structuredClone(current));
      if (next === null) return;
      try {
        if (change.part === 'status') await store.updateStatus(next);
        else await store.update(next);
        return;
      } catch (error) {
        if (!isStoreError(error, 'conflict') || attempt >= changeAttemptsMax) throw error;
      }
    }
  }
}
