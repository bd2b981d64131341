// A ReplicaLink straight onto a ReplicaStore in the same process: the engine and the real replica
// store together without sockets, for tests that want both real and fast.
import type { ChainInfo, SnapshotOptions } from '../../src/format/replica-chain.ts';
import type { ReplicaLink } from '../../src/engine/replica-link.ts';
import type { ReplicaStore } from '../../src/replica/replica-store.ts';

export class StoreReplicaLink implements ReplicaLink {
  readonly address: string;
  readonly store: ReplicaStore;

  constructor(address: string, store: ReplicaStore) {
    this.address = address;
    this.store = store;
  }

  read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    return this.store.read(offsetBytes, lengthBytes);
  }
  write(offsetBytes: number, data: Uint8Array): Promise<void> {
    return this.store.write(offsetBytes, data);
  }
  writeZeroes(offsetBytes: number, lengthBytes: number): Promise<void> {
    return this.store.writeZeroes(offsetBytes, lengthBytes);
  }
  trim(offsetBytes: number, lengthBytes: number): Promise<void> {
    return this.store.trim(offsetBytes, lengthBytes);
  }
  flush(): Promise<void> {
    return this.store.flush();
  }
  ping(): Promise<void> {
    return Promise.resolve();
  }
  acceptEpoch(epoch: number): Promise<void> {
    return this.store.acceptEpoch(epoch);
  }
  setMembership(membership: { generation: number; members: readonly string[] }): Promise<void> {
    return this.store.setMembership(membership);
  }
  chain(): Promise<ChainInfo> {
    return Promise.resolve(this.store.chain());
  }
  snapshot(options: SnapshotOptions): Promise<void> {
    return this.store.snapshot(options);
  }
  expand(sizeBytes: number): Promise<void> {
    return this.store.expand(sizeBytes);
  }
  close(): Promise<void> {
    return this.store.close();
  }
}
