// The read lease (docs/engine.md "Read lease"; scenario S09). With a minimum of w >= 2 write
// replicas, an engine cut off from all but fewer than w of its replicas cannot acknowledge writes,
// and a new engine may start on the other side by the quorum rule (start-choice.ts). Without a
// lease the old engine would go on serving reads from the replica it kept: data older than what
// the new engine acknowledges. So a read is served only while at least w rw replicas have each
// answered a request sent within the last `leaseMs`, judged on the monotonic clock when the read
// is served (no timer: a stalled process that resumes judges by the time it resumes).
//
// Why it holds. A replica answers nothing but refusals once it has accepted a higher epoch, and
// the new engine fences every replica it chooses before it serves anything. A reply to a request
// sent at s therefore proves the replica was not yet fenced at some moment after s. The old
// engine's rw replicas are members of the generation the new engine started from; fewer than w
// of them were missing there, so any w of them include one the new engine fenced, at some time f
// before its fence finished (F). The old engine serves a read at t only if that replica answered a
// request sent at s >= t - leaseMs, and s < f <= F, so t < F + leaseMs. The new engine waits out
// leaseMs (and a margin) after F before it serves (engine-start.ts): from then on the old engine
// serves no read. The assumptions: both engines use the same leaseMs (the agent passes the same
// flags to every engine of a volume) and their monotonic clocks run at about the same rate (no
// wall clock is involved; a host that is suspended stops CLOCK_MONOTONIC, which is not covered).
//
// The time noted for a replica is when the request was SENT, not when the answer came: an answer
// that took a while to arrive proves nothing about the time since it was sent.
import type { Clock } from '../lib/clock.ts';
import { replicaRequestTimeoutMs } from '../lib/limits.ts';

/** The engine command's default ping interval; the default lease is one ping plus one request timeout. */
export const readLeasePingDefaultMs = 2000;
export const readLeaseDefaultMs = readLeasePingDefaultMs + replicaRequestTimeoutMs;
/** At most one log line about refused reads in this long (a client retrying reads would flood it). */
const refusalLogIntervalMs = 10_000;

/**
 * Why a read may not be served now (null: it may). Pure. `sentMs` holds, for each rw replica, when
 * the newest request it answered was sent (undefined: none yet).
 */
export function readLeaseRefusal(args: {
  readonly minimumReplicas: number;
  readonly leaseMs: number;
  readonly nowMs: number;
  readonly sentMs: readonly (number | undefined)[];
}): string | null {
  const { minimumReplicas: w, leaseMs, nowMs, sentMs } = args;
  if (w <= 1) return null;
  if (sentMs.length < w) return `${sentMs.length} rw replicas, fewer than the minimum ${w}`;
  let fresh = 0;
  for (const s of sentMs) if (s !== undefined && nowMs - s <= leaseMs) fresh++;
  if (fresh >= w) return null;
  return `${fresh} of ${sentMs.length} rw replicas answered within the read lease of ${leaseMs} ms, fewer than the minimum ${w}`;
}

/** A link the lease can ask for a fresh answer. */
export interface LeaseLink {
  ping(): Promise<void>;
}

/** The lease's state: when each replica's newest answered request was sent. Keyed by link object. */
export class ReadLease {
  readonly minimumReplicas: number;
  readonly leaseMs: number;
  private readonly clock: Clock;
  private readonly sentMs = new WeakMap<LeaseLink, number>();
  private renewal: Promise<readonly unknown[]> | null = null;
  private lastRefusalLogMs: number | null = null;

  constructor(options: { minimumReplicas: number; leaseMs: number; clock: Clock }) {
    if (!Number.isSafeInteger(options.leaseMs) || options.leaseMs < 1) throw new RangeError(`read lease ${options.leaseMs} ms: need a positive integer`);
    this.minimumReplicas = options.minimumReplicas;
    this.leaseMs = options.leaseMs;
    this.clock = options.clock;
  }

  /** Whether reads need the lease at all (w >= 2; with w = 1 nothing changes). */
  get active(): boolean {
    return this.minimumReplicas > 1;
  }

  /** `link` answered (not refused) a request sent at `sentMs` (monotonic). */
  answered(link: LeaseLink, sentMs: number): void {
    const before = this.sentMs.get(link);
    if (before === undefined || sentMs > before) this.sentMs.set(link, sentMs);
  }

  /** Whether `link` answered a request sent within the lease before `nowMs`. Allocates nothing (per read). */
  isFresh(link: LeaseLink, nowMs: number): boolean {
    const sent = this.sentMs.get(link);
    return sent !== undefined && nowMs - sent <= this.leaseMs;
  }

  refusal(rw: readonly LeaseLink[]): string | null {
    return readLeaseRefusal({ minimumReplicas: this.minimumReplicas, leaseMs: this.leaseMs, nowMs: this.clock.monotonicMs(), sentMs: rw.map((l) => this.sentMs.get(l)) });
  }

  /**
   * Ask every rw replica for an answer now (a ping), so that an idle but healthy engine whose
   * pinger ran late does not fail reads. Concurrent callers share one round. Resolves with the
   * errors of the pings that failed (the caller fences on stale_epoch); never rejects. A failed
   * ping drops nothing here: the pinger and the write path do that.
   */
  renew(rw: readonly LeaseLink[]): Promise<readonly unknown[]> {
    if (this.renewal !== null) return this.renewal;
    const sentMs = this.clock.monotonicMs();
    const round = Promise.allSettled(rw.map((link) => link.ping().then(() => this.answered(link, sentMs)))).then((results) => {
      this.renewal = null;
      return results.flatMap((r): unknown[] => (r.status === 'rejected' ? [r.reason as unknown] : []));
    });
    this.renewal = round;
    return round;
  }

  /** Whether a refusal should be logged now (at most one line every 10 s). */
  shouldLogRefusal(): boolean {
    const now = this.clock.monotonicMs();
    if (this.lastRefusalLogMs !== null && now - this.lastRefusalLogMs < refusalLogIntervalMs) return false;
    this.lastRefusalLogMs = now;
    return true;
  }
}

/**
 * How long a new engine that started without some members (by quorum) waits before serving, from
 * the moment its fence finished: the lease and a margin for clocks that run at slightly different
 * rates and for timer slack (1% and 100 ms).
 */
export function readLeaseWaitMs(leaseMs: number): number {
  return leaseMs + Math.ceil(leaseMs / 100) + 100;
}
