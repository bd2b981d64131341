// The controller runtime: informers feed a work queue with object names; a worker takes one name
// at a time (never the same name twice at once), asks a pure reconcile function what to do given
// the desired object and the observed state, and runs the actions against the store. A failure
// (conflict, store unavailable) requeues the name with exponential back-off; a periodic resync
// requeues everything, because reconcilers are level-triggered.
import { AssertionError } from '../../lib/assert.ts';
import type { Clock } from '../../lib/clock.ts';
import { toError } from '../../lib/errors.ts';
import { reconcileActionsMax } from '../../lib/limits.ts';
import type { Resource } from '../resources/object-meta.ts';
import type { ResourceStore } from '../store/resource-store.ts';
import type { Informer } from './informer.ts';
import { decideOwnership, ownerIdOf } from './ownership.ts';
import type { Timers } from './timers.ts';
import { WorkQueue } from './work-queue.ts';

export type Action =
  | { readonly type: 'create'; readonly object: Resource }
  | { readonly type: 'update'; readonly object: Resource }
  | { readonly type: 'updateStatus'; readonly object: Resource }
  | { readonly type: 'delete'; readonly kind: string; readonly name: string; readonly resourceVersion?: string }
  /** Look again after a while even if nothing changes (polling an outside system). */
  | { readonly type: 'requeueAfter'; readonly delayMs: number };

export interface Reconciler<Observed> {
  readonly name: string;
  /** Read what this key's reconcile needs from informer caches. No I/O. */
  observe(name: string): Observed;
  /** Pure: the actions that move the world from `observed` toward `desired` (undefined: gone). */
  reconcile(desired: Resource | undefined, observed: Observed): readonly Action[];
}

export interface OwnershipOptions {
  /** This manager's id, written to status.ownerID when it takes an object. */
  readonly self: string;
  /** The preferred owner of an object (e.g. the node a volume is attached to). */
  readonly preferredOwner?: (object: Resource) => string | undefined;
  /** Whether a manager is alive (leaseLiveness(store) in ownership.ts). */
  readonly isLive: (managerId: string) => Promise<boolean>;
  /** Told of every claim this manager writes (an ownership change), with the reason, for the log. */
  readonly onClaim?: (name: string, reason: string) => void;
}

export interface ControllerOptions<Observed> {
  readonly store: ResourceStore;
  /** The informer of the kind this controller reconciles; its names are the queue's keys. */
  readonly primary: Informer;
  readonly reconciler: Reconciler<Observed>;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly workers?: number;
  /** Requeue every cached object this often (0: never). */
  readonly resyncMs?: number;
  /** Only reconcile objects this manager owns (status.ownerID), taking over from dead owners. */
  readonly ownership?: OwnershipOptions;
  readonly onError?: (name: string, error: Error) => void;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /**
   * Told just before and just after each action is applied (tests' fault points: a manager can
   * crash between two of a pass's writes, runtime/fault-points.ts). Must not throw.
   */
  readonly onAction?: (when: 'before' | 'after', action: Action) => void;
}

export class Controller<Observed> {
  readonly queue: WorkQueue;
  private readonly options: ControllerOptions<Observed>;
  private readonly workers: Promise<void>[] = [];
  private cancelResync: (() => void) | undefined;
  private stopped = false;
  /** Counters for tests and metrics. */
  readonly stats = { reconciles: 0, actions: 0, failures: 0 };

  constructor(options: ControllerOptions<Observed>) {
    this.options = options;
    this.queue = new WorkQueue({
      clock: options.clock,
      timers: options.timers,
      ...(options.backoffBaseMs === undefined ? {} : { backoffBaseMs: options.backoffBaseMs }),
      ...(options.backoffMaxMs === undefined ? {} : { backoffMaxMs: options.backoffMaxMs }),
    });
    options.primary.addHandler((event) => this.queue.add(event.object.metadata.name));
  }

  /**
   * Also requeue when another kind changes: `keysOf` maps its object to names of the primary
   * kind (e.g. a Replica to its Volume).
   */
  watchRelated(informer: Informer, keysOf: (object: Resource) => readonly string[]): void {
    informer.addHandler((event) => {
      for (const key of keysOf(event.object)) this.queue.add(key);
      if (event.old !== undefined) for (const key of keysOf(event.old)) this.queue.add(key);
    });
  }

  /** Start the workers (the informers are started and synced by the caller). */
  start(): void {
    const count = this.options.workers ?? 1;
    for (let i = 0; i < count; i++) this.workers.push(this.work());
    this.scheduleResync();
  }

  private scheduleResync(): void {
    const resyncMs = this.options.resyncMs ?? 0;
    if (resyncMs <= 0 || this.stopped) return;
    this.cancelResync = this.options.timers.after(resyncMs, () => {
      for (const object of this.options.primary.list()) this.queue.add(object.metadata.name);
      this.scheduleResync();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelResync?.();
    this.queue.shutDown();
    await Promise.all(this.workers);
  }

  private async work(): Promise<void> {
    for (;;) {
      const name = await this.queue.get();
      if (name === undefined) return;
      try {
        const requeueAfterMs = await this.process(name);
        this.queue.forget(name);
        if (requeueAfterMs !== undefined) this.queue.addAfter(name, requeueAfterMs);
      } catch (error) {
        // A broken invariant crashes the process (the supervisor restarts it); anything else is
        // an outcome to retry: the next attempt sees fresher state.
        if (error instanceof AssertionError) throw error;
        this.stats.failures++;
        this.options.onError?.(name, toError(error));
        this.queue.addRateLimited(name);
      } finally {
        this.queue.done(name);
      }
    }
  }

  /** One reconcile of one name; returns a requested requeue delay. */
  private async process(name: string): Promise<number | undefined> {
    const { primary, reconciler, ownership, store } = this.options;
    const desired = primary.get(name);
    if (desired !== undefined && ownership !== undefined) {
      const preferred = ownership.preferredOwner?.(desired);
      const candidates = [preferred, ownerIdOf(desired)].filter((x): x is string => x !== undefined);
      const live = new Set<string>();
      for (const id of candidates) if (id === ownership.self || await ownership.isLive(id)) live.add(id);
      const decision = decideOwnership(desired, { self: ownership.self, preferredOwner: preferred, isLive: (id) => live.has(id) });
      if (decision.kind === 'skip') return undefined;
      if (decision.kind === 'claim') {
        // The claim is the whole step: the informer's event for it brings the name back.
        await store.updateStatus(decision.object);
        const previous = ownerIdOf(desired);
        ownership.onClaim?.(name, previous === undefined
          ? 'it had no owner'
          : preferred === ownership.self ? `this manager is its preferred owner (was ${previous})` : `owner ${previous} is not alive (its lease expired)`);
        return undefined;
      }
    }
    this.stats.reconciles++;
    const actions = reconciler.reconcile(desired, reconciler.observe(name));
    if (actions.length > reconcileActionsMax) {
      throw new AssertionError(`${reconciler.name} returned ${actions.length} actions for ${name}; limit ${reconcileActionsMax}`);
    }
    let requeueAfterMs: number | undefined;
    for (const action of actions) {
      this.stats.actions++;
      this.options.onAction?.('before', action);
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
          await store.delete(action.kind, action.name,
            action.resourceVersion === undefined ? {} : { resourceVersion: action.resourceVersion });
          break;
        case 'requeueAfter':
          requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, action.delayMs);
          break;
      }
      this.options.onAction?.('after', action);
    }
    return requeueAfterMs;
  }
}
