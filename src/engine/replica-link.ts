// What the engine needs from one replica: the data operations and the few control operations
// that keep the write set safe (epoch, membership, snapshot, expand). The replica protocol client
// implements it over TCP or a unix socket; tests may implement it in memory.
import type { ChainInfo, SnapshotOptions } from '../format/replica-chain.ts';

export interface ReplicaLink {
  /** Where the replica is (host:port or a socket path): its identity in membership records. */
  readonly address: string;
  read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array>;
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
