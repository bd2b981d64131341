// Eviction of replicas from a node or disk (reference §2.8): a node or disk with
// `evictionRequested: true` marks the replicas on it (Longhorn's node controller does this; here
// the volume controller does it for its own replicas), the volume gets one replacement replica
// elsewhere for each (placed by the scheduler, which keeps off evicting nodes and disks), the
// engine rebuilds it, and only once the volume has `numberOfReplicas` RW replicas that are not
// being evicted is an evicting replica removed, one per pass. Never before: until then the evicting
// replica is still a full member of the write set. Pure.
import type { Node } from '../resources/node.ts';
import type { Replica } from '../resources/replica.ts';

/** Whether the replica's node or disk asks for its replicas to move; an unknown node keeps what the replica says. */
export function evictionRequestedFor(replica: Replica, nodes: readonly Node[]): boolean {
  const node = nodes.find((n) => n.metadata.name === replica.spec.nodeID);
  if (node === undefined) return replica.spec.evictionRequested;
  if (node.spec.evictionRequested) return true;
  const byUuid = Object.entries(node.status?.diskStatus ?? {}).find(([, d]) => replica.spec.diskID !== undefined && d.diskUUID === replica.spec.diskID)?.[0];
  const byPath = Object.entries(node.spec.disks).find(([, d]) => replica.spec.diskPath !== undefined && d.path === replica.spec.diskPath)?.[0];
  const diskName = byUuid ?? byPath;
  return diskName !== undefined && node.spec.disks[diskName]?.evictionRequested === true;
}

export type EvictionStep =
  /** No replica of the volume is being evicted. */
  | { readonly kind: 'none' }
  /** The volume is not attached: nothing is rebuilt, so nothing moves until it is. */
  | { readonly kind: 'wait-attach'; readonly evicting: readonly string[] }
  /** A replacement is being placed or rebuilt: the evicting replicas stay in the write set. */
  | { readonly kind: 'replace'; readonly evicting: readonly string[]; readonly rwElsewhere: number }
  /** Healthy without it: remove this evicting replica. */
  | { readonly kind: 'remove'; readonly replica: string; readonly rwElsewhere: readonly string[] };

export function evictionStep(input: {
  /** The volume's live replicas, with evictionRequested as it should be now. */
  readonly replicas: readonly Replica[];
  readonly numberOfReplicas: number;
  /** Attached with its engine running. */
  readonly attached: boolean;
  /** The running engine's replica modes from the agent's last answer; undefined when there was none. */
  readonly modes: Readonly<Record<string, string>> | undefined;
}): EvictionStep {
  const evicting = input.replicas.filter((r) => r.spec.evictionRequested).map((r) => r.metadata.name).sort();
  if (evicting.length === 0) return { kind: 'none' };
  if (!input.attached) return { kind: 'wait-attach', evicting };
  const modes = input.modes;
  const rwElsewhere = modes === undefined
    ? []
    : input.replicas.filter((r) => !r.spec.evictionRequested && r.spec.failedAt === undefined && modes[r.metadata.name] === 'RW').map((r) => r.metadata.name).sort();
  // A fresh observation is needed: a stale or missing map must never let the last copy go.
  if (modes !== undefined && rwElsewhere.length >= input.numberOfReplicas && input.numberOfReplicas > 0) {
    return { kind: 'remove', replica: evicting[0]!, rwElsewhere };
  }
  return { kind: 'replace', evicting, rwElsewhere: rwElsewhere.length };
}
