// Pure operations on block maps (sorted lists of { offset, checksum }).
import type { BlockMapping } from './backup-config.ts';

/** One block of an incremental backup: its new checksum, or undefined when it is now all zeros. */
export interface BlockChange {
  readonly offsetBytes: number;
  readonly checksum: string | undefined;
}

/**
 * The map of a new backup: the last backup's map with `changes` applied. Longhorn merges the same
 * way (changed offsets win, the others are kept); an all-zero change removes the offset, since an
 * absent offset restores as zeros in Longhorn and in Shorthorn.
 */
export function mergeBlockMap(last: readonly BlockMapping[], changes: readonly BlockChange[]): BlockMapping[] {
  const out: BlockMapping[] = [];
  let l = 0;
  for (const change of changes) {
    while (l < last.length && last[l]!.offsetBytes < change.offsetBytes) out.push(last[l++]!);
    if (l < last.length && last[l]!.offsetBytes === change.offsetBytes) l++;
    if (change.checksum !== undefined) out.push({ offsetBytes: change.offsetBytes, checksum: change.checksum });
  }
  while (l < last.length) out.push(last[l++]!);
  return out;
}

/** What turns a volume restored from `from` into one restored from `to` (DR incremental restore). */
export interface BlockMapDelta {
  readonly fetch: BlockMapping[];
  readonly zero: number[];
}

export function diffBlockMaps(from: readonly BlockMapping[], to: readonly BlockMapping[]): BlockMapDelta {
  const fetch: BlockMapping[] = [];
  const zero: number[] = [];
  let f = 0;
  let t = 0;
  while (f < from.length || t < to.length) {
    const a = from[f];
    const b = to[t];
    if (b === undefined || (a !== undefined && a.offsetBytes < b.offsetBytes)) {
      zero.push(a!.offsetBytes);
      f++;
    } else if (a === undefined || b.offsetBytes < a.offsetBytes) {
      fetch.push(b);
      t++;
    } else {
      if (a.checksum !== b.checksum) fetch.push(b);
      f++;
      t++;
    }
  }
  return { fetch, zero };
}

/** Offsets of a volume of `sizeBytes` that `blocks` leaves out, as ranges (they restore as zeros). */
export function unmappedRanges(blocks: readonly BlockMapping[], sizeBytes: number, blockSize: number): { offsetBytes: number; lengthBytes: number }[] {
  const out: { offsetBytes: number; lengthBytes: number }[] = [];
  let at = 0;
  for (const block of blocks) {
    if (block.offsetBytes >= sizeBytes) break;
    if (block.offsetBytes > at) out.push({ offsetBytes: at, lengthBytes: block.offsetBytes - at });
    at = block.offsetBytes + blockSize;
  }
  if (at < sizeBytes) out.push({ offsetBytes: at, lengthBytes: sizeBytes - at });
  return out;
}
