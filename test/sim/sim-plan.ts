// What one seed runs: the shape of the volume, the size of the workload and the fault rates, all
// drawn from the seed (TigerBeetle's VOPR draws its fault rates the same way), so that different
// seeds explore quiet runs, flaky networks, failing disks and crash storms.
import type { SeededRandom } from '../../src/lib/random.ts';
import { blockSizeBytes } from '../../src/lib/limits.ts';
import type { DiskFaultRates } from './sim-disk.ts';
import type { NetworkFaultRates } from './sim-network.ts';

export type Nemesis = 'replica-kill' | 'replica-power-loss' | 'engine-crash' | 'cluster-power-loss' | 'partition' | 'reset';

export type FinalMode = 'as-is' | 'engine-crash' | 'cluster-power-loss';

export interface SimPlan {
  readonly replicaCount: number;
  readonly sizeBytes: number;
  readonly ops: number;
  readonly concurrency: number;
  readonly timeoutMs: number;
  readonly minimumWriteReplicas: number;
  readonly disk: DiskFaultRates;
  readonly network: NetworkFaultRates;
  /** Faults the nemesis may inject while the workload runs, and at most how many crashes. */
  readonly nemeses: readonly Nemesis[];
  readonly crashesMax: number;
  /** How the run ends before the final check. */
  readonly finalMode: FinalMode;
}

export function drawPlan(random: SeededRandom, options: { ops?: number; quiet?: boolean }): SimPlan {
  const replicaCount = random.pick([1, 2, 3, 3, 3]);
  const quiet = options.quiet === true || random.next() < 0.1;
  const nemeses: Nemesis[] = [];
  if (!quiet) {
    for (const nemesis of ['replica-kill', 'replica-power-loss', 'engine-crash', 'cluster-power-loss', 'partition', 'reset'] as const) {
      if (random.next() < 0.4) nemeses.push(nemesis);
    }
  }
  return {
    replicaCount,
    sizeBytes: (8 + random.int(40)) * blockSizeBytes,
    ops: options.ops ?? 60 + random.int(140),
    concurrency: 1 + random.int(6),
    timeoutMs: 1000,
    minimumWriteReplicas: replicaCount >= 2 && random.next() < 0.2 ? 2 : 1,
    disk: quiet
      ? { eio: 0, enospc: 0, slow: 0 }
      : { eio: random.pick([0, 0, 0, 0.0005, 0.002]), enospc: random.pick([0, 0, 0, 0.001]), slow: random.pick([0, 0, 0.02]) },
    network: quiet ? { drop: 0, spike: 0 } : { drop: random.pick([0, 0, 0, 0.001, 0.005]), spike: random.pick([0, 0, 0.002, 0.01]) },
    nemeses,
    crashesMax: 1 + random.int(4),
    finalMode: random.pick(['as-is', 'engine-crash', 'cluster-power-loss'] as const),
  };
}

export function describePlan(plan: SimPlan): string {
  return (
    `${plan.replicaCount} replicas, ${plan.sizeBytes / blockSizeBytes} blocks, ${plan.ops} ops x${plan.concurrency}, ` +
    `min rw ${plan.minimumWriteReplicas}, disk eio ${plan.disk.eio} enospc ${plan.disk.enospc} slow ${plan.disk.slow}, ` +
    `net drop ${plan.network.drop} spike ${plan.network.spike}, nemeses [${plan.nemeses.join(' ')}] up to ${plan.crashesMax} crashes, ` +
    `final ${plan.finalMode}`
  );
}
