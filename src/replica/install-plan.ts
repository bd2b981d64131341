// Rebuild, receiving side: the metadata after installing received layers (layer-receiver.ts) as
// the head's ancestry up to the rebuild's join snapshot. Pure: meta in, meta and obsolete records
// out; the store commits it with one atomic replace (docs/replica-format.md, "receive").
import { snapshotCountMax } from '../lib/limits.ts';
import type { SnapshotKind } from './replica-store.ts';
import { ReplicaError } from './replica-error.ts';
import type { ReplicaMeta, SnapshotRecord } from './replica-meta.ts';

export interface InstallLayer {
  readonly name: string;
  readonly parent: string | null;
  readonly createdMs: number;
  readonly kind: SnapshotKind;
  readonly labels: Readonly<Record<string, string>>;
  readonly removed: boolean;
  /** null: keep this replica's own layer of that name (its content matched); else received files. */
  readonly files: { readonly dataFile: string; readonly extentFile: string; readonly dataBlocks: number } | null;
}

export interface InstallPlan {
  readonly meta: ReplicaMeta;
  /** Records whose files the new metadata no longer refers to. */
  readonly obsolete: readonly SnapshotRecord[];
}

/** The head's ancestry, head's parent first. */
function ancestry(meta: ReplicaMeta): SnapshotRecord[] {
  const byName = new Map(meta.snapshots.map((s) => [s.name, s]));
  const out: SnapshotRecord[] = [];
  for (let name = meta.head.parent; name !== null; ) {
    const record = byName.get(name);
    if (record === undefined) throw new ReplicaError('corrupt', `Snapshot ${name} of the head's ancestry is missing`);
    out.push(record);
    name = record.parent;
  }
  return out;
}

/**
 * `layers` (oldest first) become the head's ancestry up to and including the last of them, the
 * join snapshot, which must already be in the head's ancestry here. Snapshots of the ancestry
 * above the join snapshot (taken during the rebuild) stay; every other snapshot goes.
 */
export function planInstall(meta: ReplicaMeta, layers: readonly InstallLayer[]): InstallPlan {
  const join = layers.at(-1);
  if (join === undefined) throw new ReplicaError('invalid_argument', 'Nothing staged to install');
  if (layers.length > snapshotCountMax) throw new ReplicaError('too_many_snapshots', `${layers.length} layers to install`);
  const names = new Set<string>();
  layers.forEach((layer, i) => {
    const expected = i === 0 ? null : layers[i - 1]!.name;
    if (layer.parent !== expected) {
      throw new ReplicaError('invalid_argument', `Staged layer ${layer.name} has parent ${String(layer.parent)}, not ${String(expected)}`);
    }
    if (names.has(layer.name)) throw new ReplicaError('invalid_argument', `Layer ${layer.name} staged twice`);
    names.add(layer.name);
  });
  const chain = ancestry(meta);
  const joinAt = chain.findIndex((s) => s.name === join.name);
  if (joinAt < 0) throw new ReplicaError('conflict', `Join snapshot ${join.name} is not in this replica's head ancestry`);
  const above = chain.slice(0, joinAt).reverse();
  const local = new Map(meta.snapshots.map((s) => [s.name, s]));
  const installed: SnapshotRecord[] = layers.map((layer) => {
    const spec = { name: layer.name, parent: layer.parent, createdMs: layer.createdMs, kind: layer.kind, labels: layer.labels, removed: layer.removed };
    if (layer.files !== null) return { ...spec, ...layer.files };
    const own = local.get(layer.name);
    if (own === undefined) throw new ReplicaError('not_found', `Layer ${layer.name} is to be kept but this replica has none`);
    return { ...spec, dataFile: own.dataFile, extentFile: own.extentFile, dataBlocks: own.dataBlocks };
  });
  const snapshots = [...installed, ...above];
  if (snapshots.length > snapshotCountMax) throw new ReplicaError('too_many_snapshots', `${snapshots.length} snapshots after install`);
  const keptFiles = new Set(snapshots.map((s) => s.dataFile));
  const obsolete = meta.snapshots.filter((s) => !keptFiles.has(s.dataFile));
  return { meta: { ...meta, snapshots }, obsolete };
}
