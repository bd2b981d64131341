// One step of purge at a time: which removed snapshot to take out next, and the coalesce of a
// removed parent P into its only child C. A coalesce copies the data one side lacks into the
// other's file — only into ranges that file's own extents do not cover, or that the index
// resolves elsewhere, so no read changes while it runs — then commits one metadata replace in
// which C's record points at the receiving file and the merged extents. Its intent (with the
// merged extent file, written first) is committed before the copy, so a crash is rolled forward.
import { joinPath } from './replica-files.ts';
import { ExtentMap } from './extent-map.ts';
import type { LayerRange } from './layer-codec.ts';
import type { PendingCoalesce, ReplicaMeta, SnapshotRecord } from './replica-meta.ts';
import { loadExtents, writeExtents, writeMeta, type DirContext } from './replica-dir.ts';
import { ReplicaError } from './replica-error.ts';

const copyChunkBytes = 1024 * 1024;

export type PurgeStep = { readonly kind: 'delete'; readonly name: string } | { readonly kind: 'coalesce'; readonly parent: string; readonly child: string };

/**
 * The next removed snapshot purge can take out: one with no children (off the head's branch after
 * a revert) is deleted; one whose only child is a snapshot is coalesced into it. One with the head
 * as a child, or with several children, stays (its data is still needed as it is).
 */
export function planPurgeStep(meta: ReplicaMeta): PurgeStep | null {
  const children = new Map<string, string[]>();
  for (const s of meta.snapshots) {
    if (s.parent !== null) children.set(s.parent, [...(children.get(s.parent) ?? []), s.name]);
  }
  for (const s of meta.snapshots) {
    if (!s.removed || meta.head.parent === s.name) continue;
    const kids = children.get(s.name) ?? [];
    if (kids.length === 0) return { kind: 'delete', name: s.name };
    if (kids.length === 1) return { kind: 'coalesce', parent: s.name, child: kids[0]! };
  }
  return null;
}

function find(meta: ReplicaMeta, name: string): SnapshotRecord {
  const record = meta.snapshots.find((s) => s.name === name);
  if (record === undefined) throw new ReplicaError('corrupt', `Purge names snapshot ${name}, which is not in the chain`);
  return record;
}

function dataOnly(ranges: readonly LayerRange[]): ExtentMap {
  const map = new ExtentMap();
  for (const r of ranges) if (r.kind === 'data') map.set(r.startBlock, r.blockCount, 0);
  return map;
}

/** P's data ranges that C does not cover (the copy of direction parent-into-child). */
function parentOnlyData(parentRanges: readonly LayerRange[], childRanges: readonly LayerRange[]): ExtentMap {
  const map = dataOnly(parentRanges);
  for (const r of childRanges) map.clear(r.startBlock, r.blockCount);
  return map;
}

interface Limits {
  readonly blockSizeBytes: number;
  readonly volumeBlocks: number;
}

/** Write the merged extent file and choose the cheaper copy direction; returns the intent to commit. */
export async function prepareCoalesce(
  ctx: DirContext,
  meta: ReplicaMeta,
  options: { parent: string; child: string; limits: Limits; extentFile: string },
): Promise<PendingCoalesce> {
  const parent = find(meta, options.parent);
  const child = find(meta, options.child);
  const parentRanges = await loadExtents(ctx, parent.extentFile, options.limits);
  const childRanges = await loadExtents(ctx, child.extentFile, options.limits);
  const merged = new ExtentMap();
  for (const r of [...parentRanges, ...childRanges]) merged.set(r.startBlock, r.blockCount, r.kind === 'data' ? 0 : 1);
  const ranges: LayerRange[] = [];
  merged.forEach((startBlock, blockCount, value) => ranges.push({ startBlock, blockCount, kind: value === 0 ? 'data' : 'zero' }));
  await writeExtents(ctx, options.extentFile, ranges, options.limits.blockSizeBytes);
  await ctx.files.syncDir(ctx.dir);
  const childIntoParent = child.dataBlocks;
  const parentIntoChild = parentOnlyData(parentRanges, childRanges).blocksWithValue(0);
  return {
    op: 'coalesce',
    parent: parent.name,
    child: child.name,
    direction: childIntoParent < parentIntoChild ? 'child-into-parent' : 'parent-into-child',
    extentFile: options.extentFile,
    dataBlocks: merged.blocksWithValue(0),
  };
}

/**
 * Copy and commit the coalesce in meta.pending (idempotent: the source and its extents are not
 * touched until the commit, so a crash anywhere here is redone from the start on open).
 */
export async function completeCoalesce(
  ctx: DirContext,
  meta: ReplicaMeta,
  faultPoint: ((name: string) => void) | undefined,
  commit: (meta: ReplicaMeta) => Promise<void> = (m) => writeMeta(ctx, m),
): Promise<ReplicaMeta> {
  const pending = meta.pending;
  if (pending === null) return meta;
  const parent = find(meta, pending.parent);
  const child = find(meta, pending.child);
  const limits = { blockSizeBytes: meta.blockSizeBytes, volumeBlocks: meta.sizeBytes / meta.blockSizeBytes };
  const parentRanges = await loadExtents(ctx, parent.extentFile, limits);
  const childRanges = await loadExtents(ctx, child.extentFile, limits);
  const [source, target, copy] =
    pending.direction === 'child-into-parent'
      ? [child.dataFile, parent.dataFile, dataOnly(childRanges)]
      : [parent.dataFile, child.dataFile, parentOnlyData(parentRanges, childRanges)];
  await copyRanges(ctx, { source, target, copy, blockSizeBytes: meta.blockSizeBytes });
  faultPoint?.('purge:copied');
  const merged: SnapshotRecord = { ...child, parent: parent.parent, dataFile: target, extentFile: pending.extentFile, dataBlocks: pending.dataBlocks };
  const next: ReplicaMeta = {
    ...meta,
    snapshots: meta.snapshots.filter((s) => s.name !== parent.name).map((s) => (s.name === child.name ? merged : s)),
    pending: null,
  };
  await commit(next);
  faultPoint?.('purge:committed');
  return next;
}

async function copyRanges(ctx: DirContext, options: { source: string; target: string; copy: ExtentMap; blockSizeBytes: number }): Promise<void> {
  const source = await ctx.files.open(joinPath(ctx.dir, options.source), 'read');
  try {
    const target = await ctx.files.open(joinPath(ctx.dir, options.target), 'write');
    try {
      const pieces: [number, number][] = [];
      options.copy.forEach((startBlock, blockCount) => pieces.push([startBlock * options.blockSizeBytes, blockCount * options.blockSizeBytes]));
      const buffer = new Uint8Array(copyChunkBytes);
      for (const [offset, length] of pieces) {
        for (let done = 0; done < length; done += copyChunkBytes) {
          const n = Math.min(copyChunkBytes, length - done);
          const view = buffer.subarray(0, n);
          const got = await source.read(view, offset + done);
          if (got < n) throw new ReplicaError('corrupt', `${options.source} ends inside a range it holds (at ${offset + done})`);
          await target.write(view, offset + done);
        }
      }
      await target.sync();
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}
