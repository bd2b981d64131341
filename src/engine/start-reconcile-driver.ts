// Carries out a start reconcile plan (start-reconcile.ts) on the chosen replicas, after they have
// accepted the new epoch and before the new generation is recorded: a replica that cannot be
// repaired, or that the plan drops, is left out of the generation (it is then rebuilt).
import { IoError, toError } from '../lib/errors.ts';
import { isChainLink, type ReplicaLink } from './replica-link.ts';
import { planStartReconcile, type StartRepair } from './start-reconcile.ts';
import type { ChainInfo } from '../format/replica-chain.ts';

export interface StartReconcileResult {
  readonly links: readonly ReplicaLink[];
  readonly sizeBytes: number;
  readonly dropped: readonly string[];
}

async function applyRepair(link: ReplicaLink, repair: StartRepair): Promise<void> {
  switch (repair.kind) {
    case 'expand':
      return link.expand(repair.sizeBytes);
    case 'snapshot':
      return link.snapshot(repair.snapshot);
    case 'mark-removed':
      if (!isChainLink(link)) throw new IoError('not_supported', `Replica ${link.address} cannot mark snapshots removed`);
      return link.markRemoved(repair.name);
    case 'purge':
      if (!isChainLink(link)) throw new IoError('not_supported', `Replica ${link.address} cannot purge`);
      await link.purge();
      return;
    default: {
      const never: never = repair;
      throw new Error(`unknown repair ${JSON.stringify(never)}`);
    }
  }
}

function describe(repair: StartRepair): string {
  switch (repair.kind) {
    case 'expand':
      return `expand to ${repair.sizeBytes}`;
    case 'snapshot':
      return `snapshot ${repair.snapshot.name}`;
    case 'mark-removed':
      return `mark ${repair.name} removed`;
    case 'purge':
      return 'purge';
    default: {
      const never: never = repair;
      throw new Error(`unknown repair ${JSON.stringify(never)}`);
    }
  }
}

/** Bring the chosen replicas' chains and sizes to one state: roll forward, or drop the odd ones. */
export async function reconcileStart(args: {
  readonly links: readonly ReplicaLink[];
  readonly chains: ReadonlyMap<string, ChainInfo>;
  readonly requestedSizeBytes: number;
  readonly log: (message: string) => void;
}): Promise<StartReconcileResult> {
  const { links, log } = args;
  const reports = links.map((link) => {
    const chain = args.chains.get(link.address);
    if (chain === undefined) throw new IoError('io', `no chain report from chosen replica ${link.address}`);
    return { address: link.address, chain };
  });
  const plan = planStartReconcile(reports, args.requestedSizeBytes);
  const dropped = new Set(plan.dropped.map((d) => d.address));
  for (const d of plan.dropped) log(`start: leaving ${d.address} out (rebuild it): ${d.reason}`);
  if (plan.sizeBytes !== args.requestedSizeBytes) log(`start: a replica already has size ${plan.sizeBytes} (an expand that was cut short): serving that size, not ${args.requestedSizeBytes}`);
  for (const link of links) {
    if (dropped.has(link.address)) continue;
    for (const repair of plan.repairs.filter((r) => r.address === link.address)) {
      try {
        log(`start: finishing an operation cut short on ${link.address}: ${describe(repair)}`);
        await applyRepair(link, repair);
      } catch (error) {
        log(`start: leaving ${link.address} out (rebuild it): ${describe(repair)} failed: ${toError(error).message}`);
        dropped.add(link.address);
        break;
      }
    }
  }
  const kept = links.filter((l) => !dropped.has(l.address));
  if (kept.length === 0) throw new IoError('io', 'no chosen replica could be brought to a common chain');
  await Promise.allSettled(links.filter((l) => dropped.has(l.address)).map((l) => l.close()));
  return { links: kept, sizeBytes: plan.sizeBytes, dropped: [...dropped] };
}
