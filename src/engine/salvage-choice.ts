// Which replicas a *salvage* start uses (DESIGN §3.3): every replica failed and some member of the
// newest generation cannot be reached, so the normal rule (start-choice.ts) refuses. An operator
// (or the manager's auto-salvage) then accepts that writes only those members saw may be lost, and
// the engine starts from what it can reach, chosen by the durable records alone — generation,
// member list, epoch — never by file times or sizes. Pure.
//
// The rule, in order:
// 1. If the normal rule chooses, salvage changes nothing: nothing is missing (or, with a minimum
//    of w write replicas, fewer than w members are: start-choice.ts's quorum rule).
// 2. Otherwise take the reachable replicas by generation, newest first. Within one generation,
//    replicas whose (non-empty) member lists differ were written by two engines that each
//    recorded that generation (a fork: an earlier salvage went on without a member that an older
//    engine kept writing to); the group with the highest epoch, the later engine, wins
//    (`newestGroup`).
// 3. Candidates are the replicas of that group that are listed as members in their own record
//    and have the volume's size. A replica missing from its own generation's list (a joiner that
//    never finished its rebuild, one dropped from the write set) holds an incomplete copy and is
//    never a candidate. No candidate: go to the next older generation.
// 4. The members of the chosen generation that are not chosen are reported: writes acknowledged
//    after they alone went on (a newer generation recorded on them) may be lost. So is every
//    newer generation seen only on non-candidates.
// The new generation the engine records is above every generation it could read, so the choice
// outranks every reachable record afterwards.
import type { ChainInfo } from '../format/replica-chain.ts';
import { isSameReplica, parseMemberId } from '../format/replica-identity.ts';
import { newestGroup } from './generation-fork.ts';
import { chooseStartReplicas, type ReplicaReport, type StartChoice, type StartChoiceOptions } from './start-choice.ts';

type Reached = ReplicaReport & { readonly chain: ChainInfo };

export type SalvageChoice =
  | Extract<StartChoice, { kind: 'none' }>
  | (Extract<StartChoice, { kind: 'chosen' }> & {
      /** False when the normal rule chose (nothing was missing). */
      readonly salvaged: boolean;
      /** Recorded members of the chosen generation that are not used: their last writes may be lost. */
      readonly possiblyLost: readonly string[];
    });

function listsItself(r: Reached, group: readonly Reached[]): boolean {
  const recorded = [...new Set(group.flatMap((g) => g.chain.membership.members))].map(parseMemberId);
  const own = r.chain.membership.members.map(parseMemberId);
  const self = { address: r.address, instanceId: r.chain.instanceId ?? null };
  return own.some((m) => isSameReplica(m, self)) && recorded.some((m) => isSameReplica(m, self));
}

export function chooseSalvageReplicas(reports: readonly ReplicaReport[], sizeBytes: number, options: StartChoiceOptions = {}): SalvageChoice {
  const normal = chooseStartReplicas(reports, sizeBytes, options);
  if (normal.kind === 'chosen') return { ...normal, salvaged: false, possiblyLost: [] };
  const reachable = reports.filter((r): r is Reached => r.chain !== null);
  const unreachable = reports.filter((r) => r.chain === null).map((r) => r.address).sort();
  if (reachable.length === 0) return normal;
  const generations = [...new Set(reachable.map((r) => r.chain.membership.generation))].sort((a, b) => b - a);
  const skipped: string[] = [];
  for (const generation of generations) {
    const group = newestGroup(reachable.filter((r) => r.chain.membership.generation === generation));
    const candidates = group.filter((r) => listsItself(r, group) && r.chain.sizeBytes === sizeBytes);
    if (candidates.length === 0) {
      skipped.push(`generation ${generation} has no usable member (${group.map((r) => r.address).sort().join(', ')})`);
      continue;
    }
    const chosen = candidates.map((r) => r.address).sort();
    const chosenIds = candidates.map((r) => ({ address: r.address, instanceId: r.chain.instanceId ?? null }));
    const possiblyLost = [...new Set(group.flatMap((r) => r.chain.membership.members))]
      .filter((m) => !chosenIds.some((c) => isSameReplica(parseMemberId(m), c)))
      .sort();
    const chosenSet = new Set(chosen);
    const stale = reachable.filter((r) => !chosenSet.has(r.address)).map((r) => r.address).sort();
    const newest = generations[0] ?? generation;
    const reason =
      `salvage: generation ${generation}: using ${chosen.join(', ')}` +
      (possiblyLost.length > 0
        ? `; member${possiblyLost.length > 1 ? 's' : ''} ${possiblyLost.join(', ')} of generation ${generation} not used: writes acknowledged after ${possiblyLost.length > 1 ? 'they' : 'it'} went on without the others may be lost`
        : '') +
      (skipped.length > 0 ? `; ${skipped.join('; ')}` : '') +
      (stale.length > 0 ? `; stale (to rebuild): ${stale.join(', ')}` : '') +
      (unreachable.length > 0 ? `; unreachable: ${unreachable.join(', ')}` : '');
    return {
      kind: 'chosen',
      chosen,
      stale,
      unreachable,
      // Record above every generation read, so that no reachable record outranks the salvage.
      generation: newest,
      epoch: Math.max(...reachable.map((r) => r.chain.membership.epoch)),
      reason,
      missingByQuorum: [],
      recordAbove: newest,
      salvaged: true,
      possiblyLost,
    };
  }
  return { kind: 'none', reason: `salvage: no reachable replica is a member of its own generation with size ${sizeBytes} (${skipped.join('; ')})` };
}
