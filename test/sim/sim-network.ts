// The simulated network between the engine and the replica machines: every message is delivered
// after a seeded delay, in order per direction of a connection (as TCP would), unless the seed's
// fault rates drop it (the request then times out), delay it past the timeout, or a partition
// cuts the machine off. Connection resets are driven by the cluster (sim-cluster.ts).
import type { SimScheduler } from './sim-scheduler.ts';

export interface NetworkFaultRates {
  /** Chance that one message is lost. */
  readonly drop: number;
  /** Chance that one message is delayed by 20 ms up to twice the request timeout. */
  readonly spike: number;
}

export const noNetworkFaults: NetworkFaultRates = { drop: 0, spike: 0 };

/** One direction of one connection: remembers when its last message arrives, to keep order. */
export class SimPipe {
  lastArrivalMs = 0;
}

export class SimNetwork {
  private readonly sim: SimScheduler;
  faults: NetworkFaultRates = noNetworkFaults;
  /** Machines cut off from the engine, until the given simulated time. */
  private readonly partitionedUntil = new Map<string, number>();
  readonly timeoutMs: number;
  dropped = 0;

  constructor(sim: SimScheduler, timeoutMs: number) {
    this.sim = sim;
    this.timeoutMs = timeoutMs;
  }

  partition(machine: string, durationMs: number): void {
    this.partitionedUntil.set(machine, this.sim.nowMs + durationMs);
    this.sim.trace(`net partition ${machine} for ${durationMs.toFixed(0)} ms`);
  }

  healAll(): void {
    this.partitionedUntil.clear();
    this.faults = noNetworkFaults;
  }

  isPartitioned(machine: string): boolean {
    return (this.partitionedUntil.get(machine) ?? -1) > this.sim.nowMs;
  }

  /** Send one message over `pipe` to or from `machine`; `arrive` runs when (if) it arrives. */
  send(args: { pipe: SimPipe; machine: string; label: string }, arrive: () => void): void {
    const random = this.sim.random;
    if (this.isPartitioned(args.machine) || (this.faults.drop > 0 && random.next() < this.faults.drop)) {
      this.dropped++;
      return;
    }
    let delayMs = 0.02 + random.next() * 0.3;
    if (this.faults.spike > 0 && random.next() < this.faults.spike) delayMs = 20 + random.next() * 2 * this.timeoutMs;
    const arrivalMs = Math.max(this.sim.nowMs + delayMs, args.pipe.lastArrivalMs);
    args.pipe.lastArrivalMs = arrivalMs;
    this.sim.schedule(arrivalMs - this.sim.nowMs, args.label, () => {
      // A partition that began while the message was on its way cuts it off too.
      if (this.isPartitioned(args.machine)) {
        this.dropped++;
        return;
      }
      arrive();
    });
  }
}
