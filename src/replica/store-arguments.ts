// Checks of the layered store's arguments, the metadata of a new replica and the chain as the
// store reports it, kept out of
// layered-store.ts so that file holds the store's logic (and stays under the file size limit).
import { blockSizeBytes } from '../lib/limits.ts';
import type { ChainInfo, ChecksumState, SnapshotKind, SnapshotOptions } from './replica-store.ts';
import { ReplicaError } from './replica-error.ts';
import { checkLabels, isValidName, type ReplicaMeta } from './replica-meta.ts';
import { layerFileName } from './replica-dir.ts';

/** The metadata of a new, empty replica: a head (files 1 and 2) and no snapshots. */
export function initialReplicaMeta(volumeName: string, sizeBytes: number, createdMs: number): ReplicaMeta {
  return {
    volumeName,
    sizeBytes,
    blockSizeBytes,
    createdMs,
    epoch: 0,
    generation: 0,
    members: [],
    nextFileId: 3,
    head: { dataFile: layerFileName(1, 'data'), journalFile: layerFileName(2, 'journal'), parent: null },
    snapshots: [],
    pending: null,
  };
}

/** A snapshot request's fields, checked; `nowMs` stands in for a missing createdMs. */
export function checkSnapshotOptions(options: SnapshotOptions, nowMs: number): { name: string; kind: SnapshotKind; labels: Record<string, string>; createdMs: number } {
  const { name, kind } = options;
  if (!isValidName(name)) throw new ReplicaError('invalid_argument', `Invalid snapshot name ${JSON.stringify(name)}`);
  if (kind !== 'user' && kind !== 'system') throw new ReplicaError('invalid_argument', `Invalid snapshot kind ${String(kind)}`);
  const labels = checkLabels(options.labels ?? {}, `snapshot ${name}`);
  const createdMs = options.createdMs ?? nowMs;
  if (!Number.isSafeInteger(createdMs) || createdMs < 0) throw new ReplicaError('invalid_argument', `Invalid createdMs ${createdMs}`);
  return { name, kind, labels, createdMs };
}

export function checkMembership(membership: { generation: number; members: readonly string[] }): void {
  const { generation } = membership;
  if (!Number.isSafeInteger(generation) || generation < 0) throw new ReplicaError('invalid_argument', `Invalid generation ${generation}`);
  const members: unknown = membership.members;
  if (!Array.isArray(members) || members.length > 40 || members.some((m) => typeof m !== 'string' || m.length === 0 || m.length > 256)) {
    throw new ReplicaError('invalid_argument', 'Members must be at most 40 non-empty strings of at most 256 characters');
  }
}

/** The chain as chain() reports it, from the metadata, the head's own data and each layer's checksum state. */
export function describeChain(
  meta: ReplicaMeta,
  headSizeBytes: number,
  checksumState: (extentFile: string) => { checksumState: ChecksumState; checksumComputedMs?: number },
): ChainInfo {
  return {
    volumeName: meta.volumeName,
    sizeBytes: meta.sizeBytes,
    blockSizeBytes: meta.blockSizeBytes,
    snapshots: meta.snapshots.map((s) => ({
      name: s.name, parent: s.parent, createdMs: s.createdMs, kind: s.kind, labels: s.labels, removed: s.removed,
      sizeBytes: s.dataBlocks * blockSizeBytes,
      ...checksumState(s.extentFile),
    })),
    headSizeBytes,
    headParent: meta.head.parent,
    membership: { epoch: meta.epoch, generation: meta.generation, members: meta.members },
  };
}
