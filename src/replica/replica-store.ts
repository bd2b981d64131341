// The contract of one replica: a chain of layers (sealed snapshots under one writable head) in a
// directory on one disk. The server (replica-server.ts) exposes it over the replica protocol;
// the implementation lives in the files beside this one. Offsets and lengths are bytes.
//
// Invariants every implementation keeps:
// - After flush() resolves, every write that resolved before flush() was called survives
//   kill -9 and power loss; a read never returns bytes that were not written at that address.
// - Every metadata change (snapshot, remove, purge, revert, expand, epoch, generation) is atomic:
//   after a crash the replica reopens in the old state or the new one, never a mix.
// - purge() never changes what read() returns.

export type SnapshotKind = 'user' | 'system';

export type ChecksumState = 'none' | 'pending' | 'computed';

export interface SnapshotInfo {
  readonly name: string;
  /** Name of the snapshot below this one; null for the oldest. */
  readonly parent: string | null;
  readonly createdMs: number;
  readonly kind: SnapshotKind;
  readonly labels: Readonly<Record<string, string>>;
  /** Marked removed by the user; its data stays until purge() coalesces it. */
  readonly removed: boolean;
  /** Bytes of data this layer holds itself (allocated blocks × block size). */
  readonly sizeBytes: number;
  readonly checksumState: ChecksumState;
}

/** The replica-wide record the engine relies on for fencing and start-up choice (DESIGN §3.3). */
export interface ReplicaMembership {
  /** Highest engine epoch this replica has accepted; requests with a lower epoch are refused. */
  readonly epoch: number;
  /** Generation of the write set this replica last belonged to. */
  readonly generation: number;
  /** The members (replica addresses or ids) of that write set. */
  readonly members: readonly string[];
}

export interface ChainInfo {
  readonly volumeName: string;
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  /** Sealed layers, oldest first. */
  readonly snapshots: readonly SnapshotInfo[];
  /** Bytes the writable head holds. */
  readonly headSizeBytes: number;
  /** Name of the snapshot the head sits on; null for an empty chain. */
  readonly headParent: string | null;
  readonly membership: ReplicaMembership;
}

export interface SnapshotOptions {
  readonly name: string;
  readonly kind: SnapshotKind;
  readonly labels?: Readonly<Record<string, string>>;
  readonly createdMs?: number;
}

export interface ChunkChecksum {
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  /** Hex digest of the chunk's bytes as the layer's *flattened view* reads them (holes as zeros). */
  readonly digest: string;
}

export interface LayerExtent {
  readonly offsetBytes: number;
  readonly lengthBytes: number;
}

export interface ReplicaStore {
  readonly volumeName: string;
  sizeBytes(): number;
  read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array>;
  /** Writes may be unaligned; a partial block is merged with what the chain holds. */
  write(offsetBytes: number, data: Uint8Array): Promise<void>;
  writeZeroes(offsetBytes: number, lengthBytes: number): Promise<void>;
  /** Discard: afterwards the range reads as zeros; never exposes older snapshot data. */
  trim(offsetBytes: number, lengthBytes: number): Promise<void>;
  flush(): Promise<void>;
  snapshot(options: SnapshotOptions): Promise<void>;
  chain(): ChainInfo;
  markRemoved(snapshotName: string): Promise<void>;
  /** Coalesce removed snapshots into their children; returns the names that were purged. */
  purge(): Promise<string[]>;
  /** Start a new empty head over the named snapshot (the old head's data is dropped). */
  revert(snapshotName: string): Promise<void>;
  expand(sizeBytes: number): Promise<void>;
  /** Per-chunk checksums of a sealed layer's flattened view over a range. */
  checksums(snapshotName: string, range: LayerExtent): Promise<ChunkChecksum[]>;
  /** Allocated ranges that one layer holds itself (null: the head), within a range. */
  layerExtents(layerName: string | null, range: LayerExtent): Promise<LayerExtent[]>;
  /** Read from one layer's own data (holes as zeros), for rebuild and backup. */
  readLayer(layerName: string | null, offsetBytes: number, lengthBytes: number): Promise<Uint8Array>;
  /** Persist a higher epoch; refuses (ReplicaError 'stale_epoch') an epoch lower than the stored one. */
  acceptEpoch(epoch: number): Promise<void>;
  /** Persist a new generation and member list, atomically. */
  setMembership(membership: { generation: number; members: readonly string[] }): Promise<void>;
  close(): Promise<void>;
}
