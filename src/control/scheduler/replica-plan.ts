// What to do about one missing replica of a degraded (or new) volume (reference §2.4, §3.4):
// rebuild a failed replica in place if it is usable again (a fast, delta rebuild), else wait for
// one that may come back until replica-replenishment-wait-interval has passed, else place a new one.
import type { Replica } from '../resources/replica.ts';
import {
  diskRefusal,
  isPotentiallyReusable,
  nodeRefusal,
  replenishmentWaitEndsMs,
  scheduleReplica,
  type Placement,
  type SchedulingInput,
  type UnschedulableReason,
} from './replica-scheduler.ts';

export type ReplicaPlan =
  | { readonly kind: 'reuse'; readonly replica: Replica }
  | { readonly kind: 'wait'; readonly untilMs: number; readonly waitingFor: readonly string[] }
  | { readonly kind: 'create'; readonly placement: Placement }
  | { readonly kind: 'unschedulable'; readonly reason: UnschedulableReason; readonly message: string };

/** A failed replica whose node and disk can take it back now; the most recently failed wins. */
export function reusableFailedReplica(input: SchedulingInput): Replica | undefined {
  const attached = input.volume.spec.dataLocality === 'strict-local' ? input.volume.spec.nodeID : undefined;
  const usable = input.replicas.filter((replica) => {
    if (!isPotentiallyReusable(replica)) return false;
    const node = input.nodes.find((candidate) => candidate.metadata.name === replica.spec.nodeID);
    if (node === undefined || nodeRefusal(node, input) !== null) return false;
    const affinity = replica.spec.hardNodeAffinity ?? attached;
    if (affinity !== undefined && affinity !== node.metadata.name) return false;
    const diskName = Object.keys(node.status?.diskStatus ?? {}).find(
      (name) => node.status?.diskStatus?.[name]?.diskUUID === replica.spec.diskID,
    );
    if (diskName === undefined) return false;
    // Its space is already counted on the disk: a disk under pressure may take it back if not full.
    if (diskRefusal(node, diskName, input, { allowPressure: true }) !== null) return false;
    return (node.status?.diskStatus?.[diskName]?.storageAvailable ?? 0) > 0;
  });
  const failedMs = (replica: Replica) => Date.parse(replica.spec.failedAt ?? '') || 0;
  return usable.sort(
    (a, b) => failedMs(b) - failedMs(a) || (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0),
  )[0];
}

export function planReplica(input: SchedulingInput): ReplicaPlan {
  const reusable = reusableFailedReplica(input);
  if (reusable !== undefined) return { kind: 'reuse', replica: reusable };
  const waitEnds = replenishmentWaitEndsMs(input);
  if (waitEnds !== undefined && input.nowMs < waitEnds) {
    const waitingFor = input.replicas.filter(isPotentiallyReusable).map((replica) => replica.metadata.name).sort();
    return { kind: 'wait', untilMs: waitEnds, waitingFor };
  }
  const result = scheduleReplica(input);
  return result.ok ? { kind: 'create', placement: result.placement } : { kind: 'unschedulable', reason: result.reason, message: result.message };
}
