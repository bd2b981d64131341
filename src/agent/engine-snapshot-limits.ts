// The snapshot limits of an Engine resource (Longhorn's snapshotMaxCount / snapshotMaxSize, set
// by the volume controller) against the ones a running engine reports in force: the node agent
// passes them as flags when it starts an engine, and changes them in a running one with
// `PUT /v1/snapshot-limits` (never with a restart, which would cut the volume's I/O). Pure.
import type { EngineSpec } from '../control/resources/engine.ts';
import { snapshotCountMax } from '../lib/limits.ts';

/** As the engine's control API spells them; 0: no limit. */
export interface EngineSnapshotLimits {
  readonly maxCount: number;
  readonly maxSizeBytes: number;
}

/** What the Engine resource asks for: an absent field (or a size of 0) is no limit. */
export function wantedSnapshotLimits(spec: Pick<EngineSpec, 'snapshotMaxCount' | 'snapshotMaxSize'>): EngineSnapshotLimits {
  return { maxCount: spec.snapshotMaxCount ?? 0, maxSizeBytes: spec.snapshotMaxSize ?? 0 };
}

/**
 * The limits in a `GET /v1/status` answer, checked (an engine is another process, its answer is
 * input); undefined when it has none, as an engine from before the live change has not.
 */
export function reportedSnapshotLimits(value: unknown): EngineSnapshotLimits | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { maxCount, maxSizeBytes } = value as Record<string, unknown>;
  const valid = (n: unknown, max: number): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= max;
  if (!valid(maxCount, snapshotCountMax) || !valid(maxSizeBytes, Number.MAX_SAFE_INTEGER)) return undefined;
  return { maxCount, maxSizeBytes };
}

/**
 * The body of the `PUT /v1/snapshot-limits` that brings a running engine to its resource's limits,
 * or undefined when nothing is to be sent: it has them already, or it does not report any (it
 * could not take the request; it gets the flags at its next start).
 */
export function snapshotLimitsPush(spec: Pick<EngineSpec, 'snapshotMaxCount' | 'snapshotMaxSize'>, reported: EngineSnapshotLimits | undefined): EngineSnapshotLimits | undefined {
  if (reported === undefined) return undefined;
  const wanted = wantedSnapshotLimits(spec);
  return wanted.maxCount === reported.maxCount && wanted.maxSizeBytes === reported.maxSizeBytes ? undefined : wanted;
}
