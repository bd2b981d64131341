// What the engine needs from one replica: the data operations and the few control operations
// that keep the write set safe (epoch, membership, snapshot, expand). The replica protocol client
// implements it over TCP or a unix socket; tests may implement it in memory.
import type { ChainInfo, ChunkChecksum, LayerExtent, ReceivedLayerSpec, SnapshotOptions, StagedExtentSource } from '../format/replica-chain.ts';

export interface ReplicaLink {
  /** Where the replica is (host:port or a socket path): its identity in membership records. */
  readonly address: string;
  /**
   * The replica's instance id once it has reported one (format/replica-identity.ts); the engine
   * records members as address#instanceId. Absent or null: the address alone identifies it.
   */
  readonly instanceId?: string | null;
  read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array>;
  /**
   * `data` may be sent from the caller's buffer as it is (the replica client does, and one buffer
   * serves every replica of a fan-out): the caller must not change it afterwards, not even after
   * a timeout (the request may still sit in the socket's queue). The engine never does.
   */
  write(offsetBytes: number, data: Uint8Array): Promise<void>;
  writeZeroes(offsetBytes: number, lengthBytes: number): Promise<void>;
  trim(offsetBytes: number, lengthBytes: number): Promise<void>;
  flush(): Promise<void>;
  ping(): Promise<void>;
  /** Present the engine's epoch; the replica persists it and refuses older epochs from then on. */
  acceptEpoch(epoch: number): Promise<void>;
  setMembership(membership: { generation: number; members: readonly string[] }): Promise<void>;
  chain(): Promise<ChainInfo>;
  snapshot(options: SnapshotOptions): Promise<void>;
  expand(sizeBytes: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * The chain operations beyond what every write needs: snapshot management, the sending side of a
 * rebuild (layer extents, layer data, checksums) and the receiving side (staging). The replica
 * protocol client implements them; a link without them serves I/O but cannot take part in
 * delete, purge, revert, rebuild or scrub.
 */
export interface ChainLink extends ReplicaLink {
  markRemoved(name: string): Promise<void>;
  purge(): Promise<readonly string[]>;
  revert(name: string): Promise<void>;
  /** Per-chunk checksums of a sealed layer, or of the head (null: computed on each request). */
  checksums(snapshotName: string | null, range: LayerExtent): Promise<readonly ChunkChecksum[]>;
  layerExtents(layerName: string | null, range: LayerExtent): Promise<LayerExtent[]>;
  readLayer(layerName: string | null, offsetBytes: number, lengthBytes: number): Promise<Uint8Array>;
  stageReset(): Promise<void>;
  stageLayer(spec: ReceivedLayerSpec): Promise<void>;
  stageWrite(layerName: string, offsetBytes: number, data: Uint8Array): Promise<void>;
  stageExtent(layerName: string, range: LayerExtent, source: StagedExtentSource): Promise<void>;
  stageInstall(): Promise<void>;
}

const chainMethods = ['markRemoved', 'purge', 'revert', 'checksums', 'layerExtents', 'readLayer', 'stageReset', 'stageLayer', 'stageWrite', 'stageExtent', 'stageInstall'] as const;

export function isChainLink(link: ReplicaLink): link is ChainLink {
  return chainMethods.every((m) => typeof (link as unknown as Record<string, unknown>)[m] === 'function');
}
