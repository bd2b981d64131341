// Which replicas an engine may use when it starts (DESIGN §2.8 rule 7, §3.3): only members of the
// highest recorded generation are candidates; the rest are stale and must be rebuilt. Pure.
//
// Missing members and the quorum rule (scenario S09, split brain). Let G be the newest generation
// the reachable replicas hold, M its member list, U the members of M we cannot reach (by address
// and instance id) and w the volume's minimum write replicas. With w = 1 any missing member may
// have gone on alone and acknowledged writes nobody here saw, so we refuse while U is not empty.
// With w > 1 we start when |U| < w and at least one member holding G answered. Why that is safe:
//  - Every replica we reach holds a generation <= G, and a replica's generation only grows. So a
//    member of M that ever recorded a generation > G is in U. Call that set C; C is within U.
//  - The engine acknowledges a write only with >= w rw replicas, after every membership record the
//    write caused is on all of them (engine.ts fanOut), and writes acknowledged in G or before are
//    on every member of M that holds G (members added later were rebuilt first).
//  - Suppose the engine that recorded G acknowledged a write in some later generation H. If no
//    replica was promoted between G and H, only drops happened: H's members are a subset of M,
//    there are >= w of them and all recorded H > G, so |C| >= w. If one was promoted, take the
//    first promotion after G: it starts only with >= w rw replicas and keeps the joiner only if
//    >= w of the replicas that were rw before it (all members of M: only drops came between)
//    recorded its generation (Engine.promoteReplica); those are in C, so again |C| >= w. Either
//    way |U| >= |C| >= w. Contrapositive: |U| < w means nothing was acknowledged after G, and a
//    member of M holding G that we reach has every acknowledged write.
//  - Joiners ('wo') are not counted toward w and are not members, so they change nothing until
//    promoted, which the previous point covers. This is why an engine left with fewer than w rw
//    replicas can never promote a replica back (it must be salvaged): otherwise {r1} + a joiner
//    could acknowledge writes while a new engine started on {r2, r3} by this rule.
//  - An engine started by this rule is a later generation recorded on a subset of M: its own
//    records follow the same argument. The old engine, if alive, is fenced by the new epoch on
//    every chosen replica (engine-start.ts accepts the epoch, then reads the records again and
//    gives up if one moved meanwhile), so it cannot record anything on them afterwards. Members
//    of M reached with an older generation (G's record still on its way) are fenced too, or the
//    start gives up (engine-start.ts fenceUnused): else they would count as reached here, yet
//    stay open to the old engine.
//  - The missing members may still hold (or receive) the old engine's later records, numbered up
//    to G + 2|M|: the new engine records its first generation above that (recordAbove below).
//  - The rule trusts that the engine that wrote G ran with at least this w. Lowering w is safe;
//    raising it while an engine runs with the old value is not covered (docs/engine.md).
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
      /** Members of the generation left out by the quorum rule (they are rebuilt when they return). */
      readonly missingByQuorum: readonly string[];
      /** The engine's first record must be above this: `generation`, or more after a quorum start. */
      readonly recordAbove: number;
    }
  | { readonly kind: 'none'; readonly reason: string };

export interface StartChoiceOptions {
  /** The volume's minimum write replicas (w); 1 if absent. See the quorum rule above. */
  readonly minimumWriteReplicas?: number;
}

export function chooseStartReplicas(reports: readonly ReplicaReport[], sizeBytes: number, options: StartChoiceOptions = {}): StartChoice {
  const w = options.minimumWriteReplicas ?? 1;
  if (!Number.isSafeInteger(w) || w < 1) return { kind: 'none', reason: `bad minimum write replicas ${w}` };
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
  const candidates = top.filter((r) => generation === 0 || isRecorded(r));
  // The quorum rule (top of file): fewer than w members missing, and one holding G answered.
  const byQuorum = missing.length > 0 && missing.length < w && candidates.length > 0;
  if (missing.length > 0 && !byQuorum) {
    const why =
      w === 1
        ? ''
        : candidates.length === 0
          ? ' (no member holding it answered)'
          : ` (${missing.length} missing of ${recorded.length}, not fewer than the minimum write replicas ${w})`;
    return {
      kind: 'none',
      reason: `member${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of generation ${generation} unreachable: ${missing.length > 1 ? 'they' : 'it'} may hold a newer generation${why}`,
    };
  }
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
    (byQuorum
      ? `; by quorum: ${missing.length} of ${recorded.length} members missing (${missing.join(', ')}), fewer than the minimum write replicas ${w}, so no write was acknowledged after generation ${generation}`
      : '') +
    (stale.length > 0 ? `; stale (older generation or dropped): ${stale.join(', ')}` : '') +
    (unreachable.length > 0 ? `; unreachable: ${unreachable.join(', ')}` : '');
  // A missing member may still be written to by the old engine, and each record it makes there is
  // one higher. After G it only drops replicas (a promotion needs w rw replicas, which would all be
  // missing), and each dropped replica causes at most two records (engine.ts: the record its drop
  // queues, and one retry of a record in progress that it failed), so the old engine records at
  // most 2|M| more generations (S09 seed 2 saw 3 for two drops). The new engine records above
  // that: otherwise the cut-off replica's larger number would outrank ours at a later start (and
  // it could not be rebuilt: a replica's generation never goes down).
  const recordAbove = byQuorum ? generation + 2 * recorded.length : generation;
  return { kind: 'chosen', chosen, stale, unreachable, generation, epoch, reason, missingByQuorum: byQuorum ? missing : [], recordAbove };
}
