// The replica store: a chain (tree) of layers in one directory — a writable head over sealed
// snapshots — as sparse files, with a resolved in-memory index "block range → layer".
// Exports: createReplicaStore, openReplicaStore, LayeredReplicaStore, and their option types.
import type { Clock } from '../lib/clock.ts';
import type { ReplicaStore } from './replica-store.ts';
import type { ReplicaFiles } from './replica-files.ts';
import { ReplicaError } from './replica-error.ts';

/**
 * Named points inside multi-step operations where a test may simulate a crash: the hook throws,
 * the test crashes the memory files and reopens. Production passes nothing.
 */
export type FaultPointHook = (name: string) => void;

export interface OpenReplicaStoreOptions {
  /** The replica directory (created by createReplicaStore). */
  readonly dir: string;
  readonly files: ReplicaFiles;
  readonly clock: Clock;
  readonly faultPoint?: FaultPointHook;
  /** Bound of the cache of open layer files (default: limits.replicaOpenLayerFilesMax). */
  readonly openLayerFilesMax?: number;
}

export interface CreateReplicaStoreOptions extends OpenReplicaStoreOptions {
  readonly volumeName: string;
  /** Whole blocks (limits.blockSizeBytes), at most limits.volumeSizeMaxBytes. */
  readonly sizeBytes: number;
}

export type LayeredReplicaStore = ReplicaStore;

/** Create a new replica in `dir` (made if missing). Throws ReplicaError 'already_exists' if it holds one. */
export function createReplicaStore(options: CreateReplicaStoreOptions): Promise<LayeredReplicaStore> {
  return Promise.reject(new ReplicaError('io', `createReplicaStore(${options.dir}): not built yet`));
}

/** Open the replica in `dir`. Throws ReplicaError 'not_found' if there is none, 'corrupt' or
 * 'unsupported_version' if its metadata cannot be trusted. */
export function openReplicaStore(options: OpenReplicaStoreOptions): Promise<LayeredReplicaStore> {
  return Promise.reject(new ReplicaError('io', `openReplicaStore(${options.dir}): not built yet`));
}
