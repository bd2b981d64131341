// Longhorn's per-volume snapshot limits (`snapshotMaxCount`, `snapshotMaxSize`), checked when a
// snapshot is asked for through the control API, before it is taken. The rebuild's join snapshot
// is not checked (a rebuild must never fail on a user limit). The replica's own hard limit
// (limits.snapshotCountMax) still applies to everything.
import { ShorthornError } from '../lib/errors.ts';
import type { ChainInfo } from '../format/replica-chain.ts';

export interface SnapshotLimits {
  /** Snapshots not marked removed, after the new one, at most this many; 0: no limit. */
  readonly maxCount: number;
  /** Data held by all snapshots (removed ones too, until purged) after the new one seals the head, at most this; 0: no limit. */
  readonly maxSizeBytes: number;
}

export class SnapshotLimitError extends ShorthornError<'conflict'> {}

/** Why a new snapshot would break the limits, or null when it may be taken. Pure. */
export function snapshotLimitRefusal(chain: ChainInfo, limits: SnapshotLimits): string | null {
  const live = chain.snapshots.filter((s) => !s.removed).length;
  if (limits.maxCount > 0 && live + 1 > limits.maxCount) {
    return `the volume holds ${live} snapshots and snapshotMaxCount is ${limits.maxCount}: delete and purge snapshots first`;
  }
  const sizeBytes = chain.snapshots.reduce((n, s) => n + s.sizeBytes, 0) + chain.headSizeBytes;
  if (limits.maxSizeBytes > 0 && sizeBytes > limits.maxSizeBytes) {
    return `snapshots would hold ${sizeBytes} bytes (${chain.headSizeBytes} of them written since the last snapshot) and snapshotMaxSize is ${limits.maxSizeBytes}: delete and purge snapshots first`;
  }
  return null;
}

/** Throw SnapshotLimitError ('conflict': HTTP 409) when the read source's chain says a new snapshot would break the limits. */
export function checkSnapshotLimits(chain: ChainInfo, limits: SnapshotLimits, name: string): void {
  const refusal = snapshotLimitRefusal(chain, limits);
  if (refusal !== null) throw new SnapshotLimitError('conflict', `Cannot take snapshot ${name}: ${refusal}`);
}
