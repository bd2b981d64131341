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

import type {
  ChainInfo,
  ChunkChecksum,
  LayerExtent,
  ReceivedLayerSpec,
  SnapshotOptions,
  StagedExtentSource,
} from '../format/replica-chain.ts';

// The chain types live in format/ so that the protocol codec and the engine can use them.
export type {
  ChainInfo,
  ChecksumState,
  ChunkChecksum,
  LayerExtent,
  ReceivedLayerSpec,
  ReplicaMembership,
  SnapshotInfo,
  SnapshotKind,
  SnapshotOptions,
  StagedExtentSource,
} from '../format/replica-chain.ts';

/** Rebuild, receiving side (layer-receiver.ts): stage sealed layers, then install them at once. */
export interface LayerReceiverPort {
  reset(): Promise<void>;
  stageLayer(spec: ReceivedLayerSpec): Promise<void>;
  write(layerName: string, offsetBytes: number, data: Uint8Array): Promise<void>;
  extent(layerName: string, range: LayerExtent, source: StagedExtentSource): Promise<void>;
  install(): Promise<void>;
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
  /**
   * Per-chunk checksums of a layer's own content (allocation map + data) over a range: a sealed
   * layer's (computed once, kept), or the head's (null: computed on every request, never kept).
   */
  checksums(snapshotName: string | null, range: LayerExtent): Promise<ChunkChecksum[]>;
  /** Ranges one layer holds itself (null: the head), within a range, whole blocks, with their kind. */
  layerExtents(layerName: string | null, range: LayerExtent): Promise<LayerExtent[]>;
  /** Read from one layer's own data (holes as zeros), for rebuild and backup. */
  readLayer(layerName: string | null, offsetBytes: number, lengthBytes: number): Promise<Uint8Array>;
  /** Persist a higher epoch; refuses (ReplicaError 'stale_epoch') an epoch lower than the stored one. */
  acceptEpoch(epoch: number): Promise<void>;
  /** Persist a new generation and member list, atomically. */
  setMembership(membership: { generation: number; members: readonly string[] }): Promise<void>;
  close(): Promise<void>;
  /** Rebuild, receiving side; a store without it cannot be rebuilt over the protocol. */
  readonly receiver?: LayerReceiverPort;
}
