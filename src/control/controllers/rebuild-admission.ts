// When a replica may start rebuilding (reference §2.4): Longhorn's
// `concurrent-replica-rebuild-per-node-limit` counts the replicas rebuilding on one node across
// every volume (0 disables rebuilding), and a replica whose rebuilds keep failing is taken back
// only after a back-off that doubles with its rebuildRetryCount. Pure: the volume controller's
// driver counts the rebuilds from its informers, the reconcile asks here before it adds a replica
// to an engine's write set (which is what makes the node agent ask the engine for the rebuild).
import type { Engine } from '../resources/engine.ts';
import type { Replica } from '../resources/replica.ts';

/** Replicas rebuilding now, by the node they are on. */
export type RebuildsByNode = ReadonlyMap<string, readonly string[]>;

/**
 * The replicas each node is rebuilding: those a running engine has in its write set
 * (spec.replicaAddressMap) that it does not report RW. A replica the engine holds as WO is copying;
 * one it lacks or holds as ERR is about to be asked for (the agent does so on its next pass).
 */
export function rebuildingReplicasByNode(engines: readonly Engine[], replicas: readonly Replica[]): Map<string, string[]> {
  const byName = new Map(replicas.map((r) => [r.metadata.name, r]));
  const out = new Map<string, string[]>();
  for (const engine of engines) {
    if (engine.spec.desireState !== 'running' || engine.metadata.deletionTimestamp !== undefined) continue;
    const modes = engine.status?.replicaModeMap;
    // No fresh map from the agent: nothing is known to be RW, but a replica that was RW before
    // stays so (the engine only drops one on failure, which the manager then sees).
    for (const name of Object.keys(engine.spec.replicaAddressMap)) {
      const replica = byName.get(name);
      const node = replica?.spec.nodeID;
      if (replica === undefined || node === undefined) continue;
      const mode = modes?.[name];
      const rebuilding = mode === undefined ? replica.spec.healthyAt === undefined : mode !== 'RW';
      if (!rebuilding) continue;
      out.set(node, [...(out.get(node) ?? []), name]);
    }
  }
  for (const names of out.values()) names.sort();
  return out;
}

/** Both counts merged: what the informers show plus rebuilds this manager granted that they do not show yet. */
export function mergeRebuilds(a: RebuildsByNode, b: RebuildsByNode): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const map of [a, b]) {
    for (const [node, names] of map) out.set(node, [...new Set([...(out.get(node) ?? []), ...names])].sort());
  }
  return out;
}

export type RebuildAdmission =
  | { readonly ok: true; readonly running: number }
  | { readonly ok: false; readonly reason: 'RebuildingDisabled' | 'RebuildLimitReached'; readonly message: string };

/** May `replicaName` on `nodeID` start rebuilding now? Its own entry (if counted already) does not count against it. */
export function admitRebuild(input: {
  readonly replicaName: string;
  readonly nodeID: string;
  readonly limit: number;
  readonly rebuilds: RebuildsByNode;
}): RebuildAdmission {
  if (input.limit <= 0) {
    return { ok: false, reason: 'RebuildingDisabled', message: `replica ${input.replicaName} is not rebuilt: concurrent-replica-rebuild-per-node-limit is 0 (rebuilding disabled)` };
  }
  const others = (input.rebuilds.get(input.nodeID) ?? []).filter((name) => name !== input.replicaName);
  if (others.length >= input.limit) {
    const shown = others.slice(0, 5).join(', ') + (others.length > 5 ? ', …' : '');
    return {
      ok: false, reason: 'RebuildLimitReached',
      message: `replica ${input.replicaName} waits to rebuild: node ${input.nodeID} is rebuilding ${others.length} replica(s) (${shown}), concurrent-replica-rebuild-per-node-limit is ${input.limit}`,
    };
  }
  return { ok: true, running: others.length };
}

/** First back-off after a failed rebuild; it doubles per further failure up to rebuildBackoffMaxMs. */
export const rebuildBackoffBaseMs = 10_000;
export const rebuildBackoffMaxMs = 5 * 60_000;

/** The wait before a replica that has failed `retryCount` rebuilds in a row is rebuilt again. */
export function rebuildBackoffMs(retryCount: number): number {
  if (retryCount <= 0) return 0;
  return Math.min(rebuildBackoffMaxMs, rebuildBackoffBaseMs * 2 ** Math.min(retryCount - 1, 20));
}

/**
 * When a failed replica may be taken back for a rebuild: at once the first time (a replica that
 * crashed once copies only what it missed), later `rebuildBackoffMs(rebuildRetryCount)` after its
 * last failure. rebuildRetryCount is reset when a rebuild makes the replica RW.
 */
export function rebuildAllowedAtMs(replica: Replica): number {
  const failedMs = Date.parse(replica.spec.lastFailedAt ?? replica.spec.failedAt ?? '');
  if (!Number.isFinite(failedMs)) return 0;
  return failedMs + rebuildBackoffMs(replica.spec.rebuildRetryCount);
}
