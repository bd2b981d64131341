// A ReplicaLink straight onto a ReplicaStore in the same process: the engine and the real replica
// store together without sockets, for tests that want both real and fast.
import type { ChainInfo, ChunkChecksum, LayerExtent, ReceivedLayerSpec, SnapshotOptions, StagedExtentSource } from '../../src/format/replica-chain.ts';
import type { ChainLink } from '../../src/engine/replica-link.ts';
import type { LayerReceiverPort, ReplicaStore } from '../../src/replica/replica-store.ts';

export class StoreReplicaLink implements ChainLink {
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
  markRemoved(name: string): Promise<void> {
    return this.store.markRemoved(name);
  }
  purge(): Promise<readonly string[]> {
    return this.store.purge();
  }
  revert(name: string): Promise<void> {
    return this.store.revert(name);
  }
  checksums(snapshotName: string | null, range: LayerExtent): Promise<readonly ChunkChecksum[]> {
    return this.store.checksums(snapshotName, range);
  }
  layerExtents(layerName: string | null, range: LayerExtent): Promise<LayerExtent[]> {
    return this.store.layerExtents(layerName, range);
  }
  readLayer(layerName: string | null, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    return this.store.readLayer(layerName, offsetBytes, lengthBytes);
  }
  private receiver(): LayerReceiverPort {
    if (this.store.receiver === undefined) throw new Error(`${this.address}: the store cannot receive layers`);
    return this.store.receiver;
  }
  stageReset(): Promise<void> {
    return this.receiver().reset();
  }
  stageLayer(spec: ReceivedLayerSpec): Promise<void> {
    return this.receiver().stageLayer(spec);
  }
  stageWrite(layerName: string, offsetBytes: number, data: Uint8Array): Promise<void> {
    return this.receiver().write(layerName, offsetBytes, data);
  }
  stageExtent(layerName: string, range: LayerExtent, source: StagedExtentSource): Promise<void> {
    return this.receiver().extent(layerName, range, source);
  }
  stageInstall(): Promise<void> {
    return this.receiver().install();
  }
}
