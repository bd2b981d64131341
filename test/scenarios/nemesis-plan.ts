// The choices of the randomized nemesis (S30), pure: which fault comes next, given what is going
// on. Replica faults never leave fewer than one replica unimpaired (at most N-1 impaired, the
// "availability" runs of the reliability notes §7.3). An engine kill, once chosen, waits until
// every action in progress has ended (a new engine refuses to start while a member of its
// generation is unreachable, and a kill would cut a rebuild short; the soak loop drains first);
// nothing starts during an engine restart.
import type { SeededRandom } from '../../src/lib/random.ts';

export const replicaFaultKinds = ['kill', 'pause', 'delay', 'blackhole', 'reset', 'disk'] as const;
export type ReplicaFaultKind = (typeof replicaFaultKinds)[number];
export type NemesisAction = { readonly kind: ReplicaFaultKind; readonly replica: number } | { readonly kind: 'engine-kill' } | { readonly kind: 'snapshot' };

export interface NemesisState {
  readonly replicaCount: number;
  /** Replicas with a fault in progress (injected and not yet back in the write set). */
  readonly impaired: ReadonlySet<number>;
  /** An engine kill and restart is in progress. */
  readonly engineRestarting: boolean;
}

/** The gap before the next fault: 5-30 s (§7.3), shortened for short runs so that a smoke run still sees several. */
export function nextGapMs(random: SeededRandom, soakSeconds: number): number {
  const [low, high] = soakSeconds >= 600 ? [5_000, 30_000] : [2_000, 8_000];
  return low + random.int(high - low + 1);
}

/** The next action, or null when nothing may start now (wait and ask again). */
export function chooseAction(random: SeededRandom, state: NemesisState): NemesisAction | null {
  if (state.engineRestarting) return null;
  const options: NemesisAction[] = [];
  const free = Array.from({ length: state.replicaCount }, (_, i) => i).filter((i) => !state.impaired.has(i));
  if (state.impaired.size < state.replicaCount - 1 && free.length > 0) {
    const replica = free[random.int(free.length)]!;
    for (const kind of replicaFaultKinds) options.push({ kind, replica });
  }
  options.push({ kind: 'snapshot' }, { kind: 'engine-kill' });
  return options[random.int(options.length)]!;
}
