// Where a snapshot's content lives, from its layers' own extents: a snapshot reads block b from
// the newest layer of its ancestry (itself, its parent, …) that holds b (data, or zeros recorded
// by a trim or write-zeroes); blocks no layer holds read as zeros. Pure functions, used by the
// backup reader (replica-snapshot-reader.ts) and tested beside this file.
import type { ChainInfo, LayerExtent, SnapshotInfo } from '../format/replica-chain.ts';

/** A range of a snapshot's content and the layer that holds it. */
export interface ResolvedExtent {
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  readonly layer: string;
  readonly kind: 'data' | 'zero';
}

export interface LayerExtents {
  readonly layer: string;
  readonly extents: readonly LayerExtent[];
}

/** `snapshotName` and its ancestors, newest first; undefined if the chain has no such snapshot. */
export function ancestryOf(chain: ChainInfo, snapshotName: string): SnapshotInfo[] | undefined {
  const byName = new Map(chain.snapshots.map((s) => [s.name, s]));
  const out: SnapshotInfo[] = [];
  for (let name: string | null = snapshotName; name !== null; ) {
    const info = byName.get(name);
    if (info === undefined) return name === snapshotName ? undefined : out;
    // A cycle would be a corrupt chain; the replica checks its metadata, this only stops a loop.
    if (out.length > chain.snapshots.length) return undefined;
    out.push(info);
    name = info.parent;
  }
  return out;
}

/** `top` painted over `base` (both sorted, non-overlapping): top wins where they overlap. */
export function overlay(base: readonly ResolvedExtent[], top: readonly ResolvedExtent[]): ResolvedExtent[] {
  const uncovered: ResolvedExtent[] = [];
  let first = 0;
  for (const b of base) {
    const end = b.offsetBytes + b.lengthBytes;
    while (first < top.length && top[first]!.offsetBytes + top[first]!.lengthBytes <= b.offsetBytes) first++;
    let at = b.offsetBytes;
    for (let k = first; at < end; k++) {
      const t = top[k];
      if (t === undefined || t.offsetBytes >= end) {
        uncovered.push({ ...b, offsetBytes: at, lengthBytes: end - at });
        break;
      }
      if (t.offsetBytes > at) uncovered.push({ ...b, offsetBytes: at, lengthBytes: t.offsetBytes - at });
      at = Math.max(at, t.offsetBytes + t.lengthBytes);
    }
  }
  const out: ResolvedExtent[] = [];
  let i = 0;
  let j = 0;
  while (i < uncovered.length || j < top.length) {
    const u = uncovered[i];
    const t = top[j];
    const next = t === undefined || (u !== undefined && u.offsetBytes < t.offsetBytes) ? (i++, u!) : (j++, t);
    const last = out.at(-1);
    if (last !== undefined && last.layer === next.layer && last.kind === next.kind && last.offsetBytes + last.lengthBytes === next.offsetBytes) {
      out[out.length - 1] = { ...last, lengthBytes: last.lengthBytes + next.lengthBytes };
    } else {
      out.push(next);
    }
  }
  return out;
}

/** One layer's extents as resolved extents of that layer (sorted, as layer_extents answers them). */
export function asResolved(layer: LayerExtents): ResolvedExtent[] {
  return [...layer.extents]
    .sort((a, b) => a.offsetBytes - b.offsetBytes)
    .map((e) => ({ offsetBytes: e.offsetBytes, lengthBytes: e.lengthBytes, layer: layer.layer, kind: e.kind ?? 'data' }));
}

/** The resolved content map of a snapshot from its ancestry's extents, given newest first. */
export function resolveSnapshot(layersNewestFirst: readonly LayerExtents[]): ResolvedExtent[] {
  let map: ResolvedExtent[] = [];
  for (let i = layersNewestFirst.length - 1; i >= 0; i--) map = overlay(map, asResolved(layersNewestFirst[i]!));
  return map;
}

export interface BlockRange {
  readonly offsetBytes: number;
  readonly lengthBytes: number;
}

/**
 * The ranges rounded out to whole `blockSizeBytes` blocks (the last block may end at `sizeBytes`
 * when the size is not a whole number of blocks), sorted and merged. Rounding out says more than
 * the ranges, never less.
 */
export function roundOutToBlocks(ranges: readonly BlockRange[], blockSizeBytes: number, sizeBytes: number): BlockRange[] {
  const sorted = ranges.filter((r) => r.lengthBytes > 0).sort((a, b) => a.offsetBytes - b.offsetBytes);
  const out: BlockRange[] = [];
  for (const r of sorted) {
    const start = Math.floor(r.offsetBytes / blockSizeBytes) * blockSizeBytes;
    const end = Math.min(sizeBytes, Math.ceil((r.offsetBytes + r.lengthBytes) / blockSizeBytes) * blockSizeBytes);
    if (start >= end) continue;
    const last = out.at(-1);
    if (last !== undefined && last.offsetBytes + last.lengthBytes >= start) {
      out[out.length - 1] = { offsetBytes: last.offsetBytes, lengthBytes: Math.max(last.offsetBytes + last.lengthBytes, end) - last.offsetBytes };
    } else {
      out.push({ offsetBytes: start, lengthBytes: end - start });
    }
  }
  return out;
}

/** The resolved extents that overlap [offsetBytes, offsetBytes + lengthBytes), clipped to it. */
export function clipResolved(map: readonly ResolvedExtent[], offsetBytes: number, lengthBytes: number): ResolvedExtent[] {
  const end = offsetBytes + lengthBytes;
  // Binary search for the first extent that ends after offsetBytes.
  let lo = 0;
  let hi = map.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const e = map[mid]!;
    if (e.offsetBytes + e.lengthBytes <= offsetBytes) lo = mid + 1;
    else hi = mid;
  }
  const out: ResolvedExtent[] = [];
  for (let k = lo; k < map.length && map[k]!.offsetBytes < end; k++) {
    const e = map[k]!;
    const start = Math.max(e.offsetBytes, offsetBytes);
    out.push({ ...e, offsetBytes: start, lengthBytes: Math.min(e.offsetBytes + e.lengthBytes, end) - start });
  }
  return out;
}
