// Two engines can each record the same generation number on different replicas: a salvage start
// went on without a member that an older engine kept writing to. Replicas of one generation are
// then not one write set; the later engine (higher epoch) wins. Pure; used by the normal start
// rule (start-choice.ts) and the salvage rule (salvage-choice.ts).
import type { ChainInfo } from '../format/replica-chain.ts';

interface Reached {
  readonly address: string;
  readonly chain: ChainInfo;
}

/**
 * The replicas of one generation that recorded it together: if their non-empty member lists
 * differ, two engines each wrote this generation, and only the group of the highest epoch (the
 * later engine) counts. Replicas with an empty list (joiners) stay with whichever group wins.
 */
export function newestGroup<R extends Reached>(sameGeneration: readonly R[]): R[] {
  const listOf = (r: R): string => JSON.stringify([...r.chain.membership.members].sort());
  const lists = new Set(sameGeneration.filter((r) => r.chain.membership.members.length > 0).map(listOf));
  if (lists.size <= 1) return [...sameGeneration];
  const listed = sameGeneration.filter((r) => r.chain.membership.members.length > 0);
  const topEpoch = Math.max(...listed.map((r) => r.chain.membership.epoch));
  const winners = new Set(listed.filter((r) => r.chain.membership.epoch === topEpoch).map(listOf));
  // Equal epochs with different lists cannot come from one engine; keep them all and let the
  // membership check below decide (each must list itself).
  return sameGeneration.filter((r) => r.chain.membership.members.length === 0 || winners.has(listOf(r)));
}

