// The volume controller's driver: informers for every kind reconcileVolume reads, a Controller
// keyed by volume name that any change of a related object requeues, and the notes of each
// decision written to the log. One of these runs in each manager; ownership (status.ownerID)
// decides which manager acts on which volume.
import type { Clock } from '../../lib/clock.ts';
import type { Engine } from '../resources/engine.ts';
import type { Node } from '../resources/node.ts';
import type { Resource } from '../resources/object-meta.ts';
import type { Replica } from '../resources/replica.ts';
import type { VolumeAttachment } from '../resources/volume-attachment.ts';
import type { Volume } from '../resources/volume.ts';
import { Controller, type Action, type Reconciler } from '../runtime/controller.ts';
import { noFaultPoints, type FaultPoints } from '../runtime/fault-points.ts';
import { Informer } from '../runtime/informer.ts';
import { leaseLiveness } from '../runtime/ownership.ts';
import type { Timers } from '../runtime/timers.ts';
import { Settings } from '../settings/settings.ts';
import type { ResourceStore } from '../store/resource-store.ts';
import { mergeRebuilds, rebuildingReplicasByNode } from './rebuild-admission.ts';
import { volumeFaultPoints, type ActionPoints } from './volume-fault-points.ts';
import { reconcileVolume, type VolumeObserved } from './volume-reconcile.ts';

/**
 * A rebuild this manager granted is counted against its node's limit until the informers show it
 * (the engine's write set written back) — or for this long at most.
 */
const grantMemoryMs = 30_000;

export interface VolumeControllerOptions {
  readonly store: ResourceStore;
  readonly managerId: string;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly log: (message: string) => void;
  /** A fresh 8-hex-digit id (replica names); injected so tests can make it deterministic. */
  readonly newId: () => string;
  readonly resyncMs?: number;
  /** Named points between a pass's writes where a test makes the manager crash (volume-fault-points.ts). */
  readonly faultPoints?: FaultPoints;
}

const kinds = ['Volume', 'VolumeAttachment', 'Engine', 'Replica', 'Node', 'Setting'] as const;

export class VolumeController {
  private readonly informers: Map<string, Informer>;
  readonly controller: Controller<VolumeObserved>;
  private readonly options: VolumeControllerOptions;
  /** Rebuilds granted recently (replica → node and when), so two volumes reconciled back to back cannot both take the last slot. */
  private readonly granted = new Map<string, { nodeID: string; atMs: number }>();

  constructor(options: VolumeControllerOptions) {
    this.options = options;
    const onError = (error: Error): void => options.log(`store: ${error.message}`);
    this.informers = new Map(kinds.map((kind) => [kind, new Informer(options.store, kind, { timers: options.timers, onError })]));
    const informer = (kind: (typeof kinds)[number]): Informer => this.informers.get(kind)!;
    const faultPoints = options.faultPoints ?? noFaultPoints;
    // The points of the actions of the pass being applied (keyed by the action objects themselves).
    const actionPoints = new WeakMap<Action, ActionPoints>();
    const reconciler: Reconciler<VolumeObserved> = {
      name: 'volume',
      observe: (name) => this.observe(name),
      reconcile: (desired, observed) => {
        const decision = reconcileVolume(desired as Volume | undefined, observed);
        for (const note of decision.notes) options.log(note);
        if (faultPoints !== noFaultPoints) {
          for (const [action, points] of volumeFaultPoints(desired as Volume | undefined, observed, decision.actions)) actionPoints.set(action, points);
        }
        for (const started of decision.rebuildsStarted ?? []) this.granted.set(started.replica, { nodeID: started.nodeID, atMs: observed.nowMs });
        return decision.actions;
      },
    };
    this.controller = new Controller({
      store: options.store,
      primary: informer('Volume'),
      reconciler,
      clock: options.clock,
      timers: options.timers,
      resyncMs: options.resyncMs ?? 5000,
      ownership: {
        self: options.managerId,
        preferredOwner: (object) => (object as Volume).spec.nodeID,
        isLive: leaseLiveness(options.store),
        onClaim: (name, reason) => options.log(`volume ${name}: owned by manager ${options.managerId} now: ${reason}`),
      },
      onError: (name, error) => options.log(`volume ${name}: reconcile failed (retrying): ${error.message}`),
      ...(faultPoints === noFaultPoints ? {} : {
        onAction: (when: 'before' | 'after', action: Action) => {
          for (const point of actionPoints.get(action)?.[when] ?? []) faultPoints.pass(point);
        },
      }),
    });
    const byVolume = (object: Resource): string[] => {
      const volumeName = (object.spec as { volumeName?: unknown }).volumeName;
      return typeof volumeName === 'string' ? [volumeName] : [];
    };
    this.controller.watchRelated(informer('Engine'), byVolume);
    this.controller.watchRelated(informer('Replica'), byVolume);
    this.controller.watchRelated(informer('VolumeAttachment'), (object) => [object.metadata.name]);
    // Node and setting changes can make an unschedulable replica placeable.
    const everyVolume = (): string[] => informer('Volume').list().map((v) => v.metadata.name);
    this.controller.watchRelated(informer('Node'), everyVolume);
    this.controller.watchRelated(informer('Setting'), everyVolume);
  }

  private observe(name: string): VolumeObserved {
    const list = (kind: string): Resource[] => this.informers.get(kind)?.list() ?? [];
    const stored: Record<string, string> = {};
    for (const setting of list('Setting')) {
      const value = (setting.spec as { value?: unknown }).value;
      if (typeof value === 'string') stored[setting.metadata.name] = value;
    }
    const nowMs = this.options.clock.nowMs();
    const allEngines = list('Engine') as Engine[];
    const allReplicas = list('Replica') as Replica[];
    const seen = rebuildingReplicasByNode(allEngines, allReplicas);
    const inWriteSets = new Set(allEngines.flatMap((e) => Object.keys(e.spec.replicaAddressMap)));
    const pending = new Map<string, string[]>();
    for (const [replica, grant] of this.granted) {
      // Forget a grant once the informers show the replica in a write set (counted above if still rebuilding) or it is old.
      if (inWriteSets.has(replica) || nowMs - grant.atMs > grantMemoryMs) this.granted.delete(replica);
      else pending.set(grant.nodeID, [...(pending.get(grant.nodeID) ?? []), replica]);
    }
    return {
      rebuilds: mergeRebuilds(seen, pending),
      attachment: this.informers.get('VolumeAttachment')?.get(name) as VolumeAttachment | undefined,
      engines: allEngines.filter((e) => e.spec.volumeName === name),
      replicas: allReplicas.filter((r) => r.spec.volumeName === name),
      nodes: list('Node') as Node[],
      settings: Settings.fromStrings(stored).settings.values,
      nowMs,
      freshIds: Array.from({ length: 10 }, () => this.options.newId()),
    };
  }

  async start(): Promise<void> {
    for (const informer of this.informers.values()) informer.start();
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync()));
    this.controller.start();
  }

  async stop(): Promise<void> {
    await this.controller.stop();
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
  }
}
