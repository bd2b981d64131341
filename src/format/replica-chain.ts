// The shape of a replica's chain of layers, as the replica store reports it and as the replica
// protocol carries it. Pure types, shared by the replica (which keeps them), the protocol codec
// and the engine (which reads them over the wire).

export type SnapshotKind = 'user' | 'system';

/**
 * A sealed layer's stored per-chunk checksums: none (not kept, and background hashing is off or
 * gave up on an error), pending (queued for background hashing), computing, computed (kept in the
 * layer's `.sum` file), corrupt (the `.sum` file fails its own checks; never trusted or replaced).
 */
export type ChecksumState = 'none' | 'pending' | 'computing' | 'computed' | 'corrupt';

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
  /** When the stored checksums were computed (Unix ms, to the second); absent when unknown or not computed. */
  readonly checksumComputedMs?: number;
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
  /**
   * The replica's instance id (replica-identity.ts): the daemon adds it to chain_info and open
   * replies; absent from a store's own record and from replicas that predate it.
   */
  readonly instanceId?: string;
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
  /**
   * Hex SHA-256 of the layer's OWN content in the chunk (rebuild copies layer by layer): for each
   * range the layer holds there, in order, a 24-byte descriptor (offset in the chunk, length, kind
   * 1 = data / 2 = zeros; u64 little-endian each) followed by the data bytes of a data range. A
   * chunk the layer holds nothing of hashes the empty string. See docs/replica-format.md.
   */
  readonly digest: string;
}

export interface LayerExtent {
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  /**
   * In layerExtents() results: 'data' (bytes in the layer's file) or 'zero' (the layer records
   * zeros there — trim or write-zeroes — hiding older layers; a rebuild must copy it as zeros).
   * Ignored in ranges passed in.
   */
  readonly kind?: 'data' | 'zero';
}

/** Rebuild: one sealed layer as a receiving replica is told to stage it (oldest first). */
export interface ReceivedLayerSpec {
  readonly name: string;
  readonly parent: string | null;
  readonly createdMs: number;
  readonly kind: SnapshotKind;
  readonly labels: Readonly<Record<string, string>>;
  readonly removed: boolean;
  /** Keep the receiving replica's own layer of that name: its checksums matched the source's. */
  readonly reuse: boolean;
}

/** How a staged range is filled without its bytes on the wire: zeros, or this replica's own layer. */
export type StagedExtentSource = 'zero' | 'local';
