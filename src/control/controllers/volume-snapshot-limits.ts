// The snapshot limits a volume's engine enforces (Longhorn's snapshotMaxCount / snapshotMaxSize,
// reference §1.1 and dataplane §2.7): the Volume's own values win; an unset count is the
// `snapshot-max-count` setting (default 250); an unset or 0 size is no limit (the Engine field is
// left out). The node agent starts the engine with them and changes a running engine's live.
import type { EngineSpec } from '../resources/engine.ts';
import type { VolumeSpec } from '../resources/volume.ts';

/**
 * The Engine spec with the volume's snapshot limits; the same object when they are there already
 * (so a caller can tell "no write needed" by identity). Pure.
 */
export function engineSnapshotLimitsSpec(
  spec: EngineSpec,
  volume: Pick<VolumeSpec, 'snapshotMaxCount' | 'snapshotMaxSize'>,
  settingMaxCount: number,
): EngineSpec {
  const maxCount = volume.snapshotMaxCount ?? settingMaxCount;
  const maxSize = volume.snapshotMaxSize ?? 0;
  // No size limit is an absent field, never a 0.
  const sizeInPlace = maxSize > 0 ? spec.snapshotMaxSize === maxSize : spec.snapshotMaxSize === undefined;
  if (spec.snapshotMaxCount === maxCount && sizeInPlace) return spec;
  const { snapshotMaxCount: _c, snapshotMaxSize: _s, ...rest } = spec;
  return { ...rest, snapshotMaxCount: maxCount, ...(maxSize > 0 ? { snapshotMaxSize: maxSize } : {}) };
}

/** For the log: the limits in words. */
export function describeSnapshotLimits(spec: Pick<EngineSpec, 'snapshotMaxCount' | 'snapshotMaxSize'>): string {
  const size = spec.snapshotMaxSize === undefined ? 'no size limit' : `at most ${spec.snapshotMaxSize} bytes`;
  return `at most ${spec.snapshotMaxCount ?? 'any number of'} snapshots, ${size}`;
}
