// A sorted map of disjoint block ranges to 32-bit values, in memory proportional to the number of
// ranges: fixed-size typed-array leaves under one sorted array of leaves (a two-level B-tree), so
// an insert shifts at most one leaf and no JavaScript object exists per range (16 bytes a range).
// The replica store keeps one of these as its resolved index ("block range → layer") and uses it
// transiently for one layer's own extents.
//
// Invariants: ranges are sorted by start, never overlap, never empty; adjacent ranges with the same
// value are merged (up to runBlocksMax); no leaf is empty; the tally of blocks per value is exact.
import { assert } from '../lib/assert.ts';

/** Ranges per leaf: 512 × 16 bytes = 8 KiB per leaf, large enough that per-leaf overhead is small. */
const leafCapacity = 512;
/** Longest single range, because counts are stored as Uint32. Longer ranges are split. */
export const runBlocksMax = 0xffff_ffff;

class Leaf {
  size = 0;
  readonly start = new Float64Array(leafCapacity);
  readonly count = new Uint32Array(leafCapacity);
  readonly value = new Uint32Array(leafCapacity);

  end(i: number): number {
    return this.start[i]! + this.count[i]!;
  }

  removeRange(from: number, to: number): void {
    if (to <= from) return;
    this.start.copyWithin(from, to, this.size);
    this.count.copyWithin(from, to, this.size);
    this.value.copyWithin(from, to, this.size);
    this.size -= to - from;
  }

  insertAt(i: number, startBlock: number, blockCount: number, value: number): void {
    assert(this.size < leafCapacity, 'leaf overflow');
    this.start.copyWithin(i + 1, i, this.size);
    this.count.copyWithin(i + 1, i, this.size);
    this.value.copyWithin(i + 1, i, this.size);
    this.start[i] = startBlock;
    this.count[i] = blockCount;
    this.value[i] = value;
    this.size++;
  }

  /** Index of the first range whose end is after `block` (may be `size`). */
  firstEndingAfter(block: number): number {
    let low = 0;
    let high = this.size;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.end(mid) <= block) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

export type ExtentVisitor = (startBlock: number, blockCount: number, value: number) => void;

export class ExtentMap {
  private leaves: Leaf[] = [];
  private readonly tally = new Map<number, number>();
  private rangeCount = 0;

  /** Number of ranges held. */
  get extentCount(): number {
    return this.rangeCount;
  }

  /** Blocks mapped to `value`. */
  blocksWithValue(value: number): number {
    return this.tally.get(value) ?? 0;
  }

  /** Bytes of typed arrays and leaf objects held: what the index costs in memory. */
  memoryBytes(): number {
    const perLeaf = leafCapacity * (8 + 4 + 4) + 3 * 96 + 64;
    return this.leaves.length * (perLeaf + 8) + 64;
  }

  /** Map [startBlock, startBlock + blockCount) to `value`, replacing whatever was there. */
  set(startBlock: number, blockCount: number, value: number): void {
    checkRange(startBlock, blockCount);
    assert(Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff, `bad value ${value}`);
    let start = startBlock;
    let left = blockCount;
    while (left > 0) {
      const n = Math.min(left, runBlocksMax);
      this.carve(start, start + n);
      this.insert(start, n, value);
      start += n;
      left -= n;
    }
  }

  /** Remove every mapping in [startBlock, startBlock + blockCount). */
  clear(startBlock: number, blockCount: number): void {
    checkRange(startBlock, blockCount);
    if (blockCount > 0) this.carve(startBlock, startBlock + blockCount);
  }

  /** Visit the ranges overlapping [startBlock, endBlock), clipped to it, in order. */
  forEachIn(startBlock: number, endBlock: number, visit: ExtentVisitor): void {
    let [li, i] = this.locate(startBlock);
    while (li < this.leaves.length) {
      const leaf = this.leaves[li]!;
      for (; i < leaf.size; i++) {
        const s = leaf.start[i]!;
        if (s >= endBlock) return;
        const e = s + leaf.count[i]!;
        const clippedStart = Math.max(s, startBlock);
        visit(clippedStart, Math.min(e, endBlock) - clippedStart, leaf.value[i]!);
      }
      li++;
      i = 0;
    }
  }

  forEach(visit: ExtentVisitor): void {
    for (const leaf of this.leaves) {
      for (let i = 0; i < leaf.size; i++) visit(leaf.start[i]!, leaf.count[i]!, leaf.value[i]!);
    }
  }

  /** Change every range mapped to `from` into `to`, re-merging neighbours that become equal. */
  replaceValue(from: number, to: number): void {
    if (from === to || !this.tally.has(from)) return;
    const moved = this.tally.get(from) ?? 0;
    this.tally.delete(from);
    this.tally.set(to, (this.tally.get(to) ?? 0) + moved);
    // Rewrite the leaves in one pass (O(n)), filled to 3/4 so later inserts rarely split at once.
    const old = this.leaves;
    this.leaves = [];
    this.rangeCount = 0;
    const fill = (leafCapacity * 3) >>> 2;
    let out: Leaf | undefined;
    for (const leaf of old) {
      for (let i = 0; i < leaf.size; i++) {
        const s = leaf.start[i]!;
        const n = leaf.count[i]!;
        const v = leaf.value[i] === from ? to : leaf.value[i]!;
        const last = out === undefined ? -1 : out.size - 1;
        if (out !== undefined && out.end(last) === s && out.value[last] === v && out.count[last]! + n <= runBlocksMax) {
          out.count[last] = out.count[last]! + n;
          continue;
        }
        if (out === undefined || out.size >= fill) {
          out = new Leaf();
          this.leaves.push(out);
        }
        out.insertAt(out.size, s, n, v);
        this.rangeCount++;
      }
    }
  }

  /** Check every invariant (for tests; O(n)). */
  checkInvariants(): void {
    let previousEnd = -1;
    let previousValue = -1;
    let previousCount = 0;
    let ranges = 0;
    const tally = new Map<number, number>();
    for (const leaf of this.leaves) {
      assert(leaf.size > 0, 'empty leaf');
      for (let i = 0; i < leaf.size; i++) {
        const s = leaf.start[i]!;
        const n = leaf.count[i]!;
        const v = leaf.value[i]!;
        assert(n > 0, 'empty range');
        assert(s >= previousEnd, `ranges overlap or are unsorted at block ${s}`);
        const mergeable = s === previousEnd && v === previousValue && previousCount + n <= runBlocksMax;
        assert(!mergeable, `unmerged ranges at block ${s}`);
        previousEnd = s + n;
        previousValue = v;
        previousCount = n;
        tally.set(v, (tally.get(v) ?? 0) + n);
        ranges++;
      }
    }
    assert(ranges === this.rangeCount, `range count ${this.rangeCount} but ${ranges} held`);
    for (const [v, n] of tally) assert(this.tally.get(v) === n, `tally of value ${v} is wrong`);
    for (const [v, n] of this.tally) assert(n === 0 || tally.get(v) === n, `tally of value ${v} is stale`);
  }

  /** Position (leaf, index) of the first range whose end is after `block`. */
  private locate(block: number): [number, number] {
    const leaves = this.leaves;
    if (leaves.length === 0) return [0, 0];
    let low = 0;
    let high = leaves.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      if (leaves[mid]!.start[0]! <= block) low = mid;
      else high = mid - 1;
    }
    const i = leaves[low]!.firstEndingAfter(block);
    return i < leaves[low]!.size ? [low, i] : [low + 1, 0];
  }

  private count(value: number, delta: number): void {
    const next = (this.tally.get(value) ?? 0) + delta;
    if (next === 0) this.tally.delete(value);
    else this.tally.set(value, next);
  }

  /** Remove every mapping in [s, e). */
  private carve(s: number, e: number): void {
    let [li, i] = this.locate(s);
    if (li >= this.leaves.length) return;
    let leaf = this.leaves[li]!;
    const first = leaf.start[i]!;
    if (first < s) {
      const firstEnd = leaf.end(i);
      const v = leaf.value[i]!;
      if (firstEnd > e) {
        // The range covers [s, e) with room on both sides: split it around the hole.
        leaf.count[i] = s - first;
        this.count(v, -(e - s));
        this.insertAt(li, i + 1, { start: e, count: firstEnd - e, value: v });
        return;
      }
      leaf.count[i] = s - first;
      this.count(v, -(firstEnd - s));
      i++;
      if (i === leaf.size) {
        li++;
        i = 0;
      }
    }
    while (li < this.leaves.length) {
      leaf = this.leaves[li]!;
      let j = i;
      while (j < leaf.size && leaf.end(j) <= e) {
        this.count(leaf.value[j]!, -leaf.count[j]!);
        j++;
      }
      this.rangeCount -= j - i;
      leaf.removeRange(i, j);
      if (leaf.size === 0) {
        this.leaves.splice(li, 1);
        i = 0;
        continue;
      }
      if (i < leaf.size) {
        const s2 = leaf.start[i]!;
        if (s2 < e) {
          this.count(leaf.value[i]!, -(e - s2));
          leaf.count[i] = leaf.end(i) - e;
          leaf.start[i] = e;
        }
        return;
      }
      li++;
      i = 0;
    }
  }

  /** Insert [s, s + n) → value where nothing is mapped, merging with equal neighbours. */
  private insert(s: number, n: number, value: number): void {
    const e = s + n;
    const [li, i] = this.locate(s);
    // The neighbour before the position, possibly the last range of the previous leaf.
    let pl = li;
    let pi = i - 1;
    if (pi < 0) {
      pl = li - 1;
      pi = pl >= 0 ? this.leaves[pl]!.size - 1 : -1;
    }
    const prev = pl >= 0 && pi >= 0 ? this.leaves[pl] : undefined;
    const next = li < this.leaves.length ? this.leaves[li] : undefined;
    const mergePrev =
      prev !== undefined && prev.end(pi) === s && prev.value[pi] === value && prev.count[pi]! + n <= runBlocksMax;
    const mergeNext =
      next !== undefined && next.start[i] === e && next.value[i] === value && next.count[i]! + n <= runBlocksMax;
    this.count(value, n);
    if (mergePrev && mergeNext && prev.count[pi]! + n + next.count[i]! <= runBlocksMax) {
      prev.count[pi] = prev.count[pi]! + n + next.count[i]!;
      next.removeRange(i, i + 1);
      this.rangeCount--;
      if (next.size === 0) this.leaves.splice(li, 1);
    } else if (mergePrev) {
      prev.count[pi] = prev.count[pi]! + n;
    } else if (mergeNext) {
      next.start[i] = s;
      next.count[i] = next.count[i]! + n;
    } else {
      this.insertAt(li, i, { start: s, count: n, value });
    }
  }

  private insertAt(li: number, i: number, range: { start: number; count: number; value: number }): void {
    this.rangeCount++;
    const leaves = this.leaves;
    if (leaves.length === 0) {
      const leaf = new Leaf();
      leaf.insertAt(0, range.start, range.count, range.value);
      leaves.push(leaf);
      return;
    }
    // A position at the start of a leaf (or past the last one) is also the end of the previous
    // leaf: append there when it has room, so leaf first-keys stay the search keys.
    if (i === 0 && li > 0 && leaves[li - 1]!.size < leafCapacity) {
      const prev = leaves[li - 1]!;
      prev.insertAt(prev.size, range.start, range.count, range.value);
      return;
    }
    if (li === leaves.length) {
      li--;
      i = leaves[li]!.size;
    }
    const leaf = leaves[li]!;
    if (leaf.size < leafCapacity) {
      leaf.insertAt(i, range.start, range.count, range.value);
      return;
    }
    // Split a full leaf. Appending past the end of the last leaf (sequential writes) starts a new
    // leaf instead of halving this one, so sequential fill stays near 100%.
    const right = new Leaf();
    const at = li === leaves.length - 1 && i === leaf.size ? leaf.size : leafCapacity >>> 1;
    right.start.set(leaf.start.subarray(at, leaf.size));
    right.count.set(leaf.count.subarray(at, leaf.size));
    right.value.set(leaf.value.subarray(at, leaf.size));
    right.size = leaf.size - at;
    leaf.size = at;
    leaves.splice(li + 1, 0, right);
    if (i <= at && leaf.size < leafCapacity && !(i === at && right.size === 0)) {
      leaf.insertAt(i, range.start, range.count, range.value);
    } else {
      right.insertAt(i - at, range.start, range.count, range.value);
    }
  }
}

function checkRange(startBlock: number, blockCount: number): void {
  assert(Number.isSafeInteger(startBlock) && startBlock >= 0, `bad start block ${startBlock}`);
  assert(Number.isSafeInteger(blockCount) && blockCount >= 0, `bad block count ${blockCount}`);
}
