// The clock the embedded store's leases run on. Every process that opens the store is on this
// host, so they can share the kernel's monotonic clock (CLOCK_MONOTONIC, which
// process.hrtime reads): unlike the wall clock, an NTP step or a hand-set date does not move it,
// so a step forward no longer expires every node's lease at once (and marks the nodes down) and a
// step back no longer keeps a dead holder's lease for the size of the step. It restarts at each
// boot, so each lease also records the boot it was taken in; one from another boot has expired.
import { readFileSync } from 'node:fs';
import type { Clock } from '../../lib/clock.ts';

export interface HostClock {
  /** This boot of the host (/proc/sys/kernel/random/boot_id). */
  readonly bootId: string;
  /** Milliseconds on a clock every process of this boot shares, which wall-clock steps leave alone. */
  monotonicMs(): number;
}

export function systemHostClock(): HostClock {
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return { bootId, monotonicMs: () => Number(process.hrtime.bigint() / 1_000_000n) };
}

/** A test's clock as the host clock (its monotonic reading; ManualClock.advance moves it). */
export function manualHostClock(clock: Clock, bootId = 'manual-boot'): HostClock {
  return { bootId, monotonicMs: () => clock.monotonicMs() };
}
