// Keeps one lease held: acquire, renew every third of the TTL, report loss and keep trying to
// get it back, release on stop. A manager's liveness (and so its ownership of objects) is this.
import { toError } from '../../lib/errors.ts';
import { isStoreError, type ResourceStore } from '../store/resource-store.ts';
import type { Timers } from './timers.ts';

export type LeaseState = 'held' | 'lost' | 'stopped';

export interface LeaseKeeperOptions {
  readonly name: string;
  readonly holder: string;
  readonly ttlMs: number;
  readonly timers: Timers;
  readonly onChange?: (state: LeaseState) => void;
  readonly onError?: (error: Error) => void;
}

export class LeaseKeeper {
  private readonly store: ResourceStore;
  private readonly options: LeaseKeeperOptions;
  private cancelTimer: (() => void) | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;
  state: LeaseState = 'lost';

  constructor(store: ResourceStore, options: LeaseKeeperOptions) {
    this.store = store;
    this.options = options;
  }

  /** Acquire (or fail to) once, then keep renewing on the timer. */
  async start(): Promise<LeaseState> {
    await this.renew();
    return this.state;
  }

  private setState(state: LeaseState): void {
    if (state === this.state) return;
    this.state = state;
    this.options.onChange?.(state);
  }

  private renew(): Promise<void> {
    const attempt = (async (): Promise<void> => {
      try {
        await this.store.acquireLease(this.options.name, this.options.holder, this.options.ttlMs);
        if (!this.stopped) this.setState('held');
      } catch (error) {
        if (!isStoreError(error, 'lease_held')) this.options.onError?.(toError(error));
        if (!this.stopped) this.setState('lost');
      }
      if (!this.stopped) this.cancelTimer = this.options.timers.after(this.options.ttlMs / 3, () => void this.renew());
    })();
    this.inFlight = attempt;
    return attempt;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    await this.inFlight;
    await this.store.releaseLease(this.options.name, this.options.holder);
    this.setState('stopped');
  }
}
