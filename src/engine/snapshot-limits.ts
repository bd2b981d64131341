// Longhorn's per-volume snapshot limits (`snapshotMaxCount`, `snapshotMaxSize`), checked when a
// snapshot is asked for through the control API, before it is taken. The rebuild's join snapshot
// is not checked (a rebuild must never fail on a user limit). The replica's own hard limit
// (limits.snapshotCountMax) still applies to everything.
import { ShorthornError } from '../lib/errors.ts';
import { snapshotCountMax } from '../lib/limits.ts';
import type { ChainInfo } from '../format/replica-chain.ts';

export interface SnapshotLimits {
  /** Snapshots not marked removed, after the new one, at most this many; 0: no limit. */
  readonly maxCount: number;
  /** Data held by all snapshots (removed ones too, until purged) after the new one seals the head, at most this; 0: no limit. */
  readonly maxSizeBytes: number;
}

/** No limit at all (an engine started without the flags). */
export const noSnapshotLimits: SnapshotLimits = { maxCount: 0, maxSizeBytes: 0 };

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

/**
 * The limits of a `PUT /v1/snapshot-limits` body ({maxCount, maxSizeBytes}, both required, nothing
 * else), or what is wrong with it. Pure. The same ranges as the engine's flags: maxCount 0 (no
 * limit) to snapshotCountMax, maxSizeBytes 0 (no limit) to 2^53 - 1. A limit below what the volume
 * holds now is accepted: it refuses every new snapshot until enough are deleted and purged (see
 * docs/engine.md for why this differs from Longhorn's refusal).
 */
export function parseSnapshotLimits(body: Readonly<Record<string, unknown>>): SnapshotLimits | { readonly problem: string } {
  const unknown = Object.keys(body).filter((key) => key !== 'maxCount' && key !== 'maxSizeBytes');
  if (unknown.length > 0) return { problem: `unknown field ${JSON.stringify(unknown[0]?.slice(0, 40))}: only maxCount and maxSizeBytes` };
  const maxCount = body['maxCount'];
  const maxSizeBytes = body['maxSizeBytes'];
  if (typeof maxCount !== 'number' || !Number.isSafeInteger(maxCount) || maxCount < 0 || maxCount > snapshotCountMax) {
    return { problem: `maxCount must be an integer from 0 (no limit) to ${snapshotCountMax}` };
  }
  if (typeof maxSizeBytes !== 'number' || !Number.isSafeInteger(maxSizeBytes) || maxSizeBytes < 0) {
    return { problem: `maxSizeBytes must be an integer from 0 (no limit) to ${Number.MAX_SAFE_INTEGER}` };
  }
  return { maxCount, maxSizeBytes };
}
