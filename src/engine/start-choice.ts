// Which replicas an engine may use when it starts (DESIGN §2.8 rule 7, §3.3): only members of the
// highest recorded generation are candidates; the rest are stale and must be rebuilt. Pure.
import type { ChainInfo } from '../format/replica-chain.ts';
import { newestGroup } from './generation-fork.ts';
import { isSameReplica, parseMemberId, type ReplicaIdentity } from '../format/replica-identity.ts';

export interface ReplicaReport {
  readonly address: string;
  /** null when the replica could not be reached or refused us. */
  readonly chain: ChainInfo | null;
  readonly error?: string;
}

export type StartChoice =
  | {
      readonly kind: 'chosen';
      /** Replicas to use, the read source first. */
      readonly chosen: readonly string[];
      readonly stale: readonly string[];
      readonly unreachable: readonly string[];
      readonly generation: number;
      readonly epoch: number;
      readonly reason: string;
    }
  | { readonly kind: 'none'; readonly reason: string };

export function chooseStartReplicas(reports: readonly ReplicaReport[], sizeBytes: number): StartChoice {
  const reachable = reports.filter((r): r is ReplicaReport & { chain: ChainInfo } => r.chain !== null);
  const unreachable = reports.filter((r) => r.chain === null).map((r) => r.address);
  if (reachable.length === 0) {
    return { kind: 'none', reason: `no replica reachable (${unreachable.join(', ')})` };
  }
  const generation = Math.max(...reachable.map((r) => r.chain.membership.generation));
  const epoch = Math.max(...reachable.map((r) => r.chain.membership.epoch));
  // Two engines may each have recorded this generation (a salvage went on without a member an
  // older engine kept writing to): only the later engine's write set counts (generation-fork.ts).
  const top = newestGroup(reachable.filter((r) => r.chain.membership.generation === generation));
  // A replica of the highest generation that is not in that generation's member list was dropped
  // from the write set in an earlier run of this generation's predecessor: it is not a candidate.
  // Members are recorded as address#instanceId (format/replica-identity.ts): the replica that
  // answers at a member's address is that member only if it is the same instance.
  const recorded = [...new Set(top.flatMap((r) => r.chain.membership.members))].map(parseMemberId);
  const identityOf = (r: ReplicaReport & { chain: ChainInfo }): ReplicaIdentity => ({ address: r.address, instanceId: r.chain.instanceId ?? null });
  const isRecorded = (r: ReplicaReport & { chain: ChainInfo }): boolean => recorded.some((m) => isSameReplica(m, identityOf(r)));
  // A member of that generation we cannot reach may have gone on without the others (an engine
  // that dropped them recorded a newer generation on it alone), holding writes they never saw.
  // Starting without it would serve old data and fork the history (simulator seed 8). Another
  // replica listening on its address (a restart that took the port, scenario S28) does not
  // count as reaching it.
  const missing: string[] = [];
  for (const member of recorded) {
    const there = reachable.find((r) => r.address === member.address);
    if (there === undefined) missing.push(member.address);
    else if (!isSameReplica(member, identityOf(there))) {
      missing.push(`${member.address} (answered by instance ${there.chain.instanceId ?? '(none)'}, not the member ${member.instanceId ?? '?'})`);
    }
  }
  missing.sort();
  if (missing.length > 0) {
    return {
      kind: 'none',
      reason: `member${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of generation ${generation} unreachable: ${missing.length > 1 ? 'they' : 'it'} may hold a newer generation`,
    };
  }
  const candidates = top.filter((r) => generation === 0 || isRecorded(r));
  const wrongSize = candidates.filter((r) => r.chain.sizeBytes !== sizeBytes);
  const usable = candidates.filter((r) => r.chain.sizeBytes === sizeBytes);
  const chosenSet = new Set(usable.map((r) => r.address));
  const stale = reachable.filter((r) => !chosenSet.has(r.address)).map((r) => r.address);
  if (usable.length === 0) {
    const sizes = wrongSize.map((r) => `${r.address}=${r.chain.sizeBytes}`).join(', ');
    return { kind: 'none', reason: `no replica of generation ${generation} has size ${sizeBytes} (${sizes})` };
  }
  // The source of reads is the first candidate in address order: deterministic, so that a restart
  // with the same replicas reads from the same one.
  const chosen = usable.map((r) => r.address).sort();
  const reason =
    `generation ${generation}: using ${chosen.join(', ')}` +
    (stale.length > 0 ? `; stale (older generation or dropped): ${stale.join(', ')}` : '') +
    (unreachable.length > 0 ? `; unreachable: ${unreachable.join(', ')}` : '');
  return { kind: 'chosen', chosen, stale, unreachable, generation, epoch, reason };
}
