// An in-memory replica behind the ReplicaLink interface, for the engine's unit tests: a flat byte
// array, the membership record, and switches that make it fail like a dead replica.
import type { ChainInfo, SnapshotOptions } from '../../format/replica-chain.ts';
import { IoError } from '../../lib/errors.ts';
import type { ReplicaLink } from '../replica-link.ts';

export class MemoryReplicaLink implements ReplicaLink {
  readonly address: string;
  data: Uint8Array;
  epoch = 0;
  generation = 0;
  members: readonly string[] = [];
  snapshots: string[] = [];
  /** When set, every operation rejects with this error (a dead or unreachable replica). */
  broken: string | null = null;
  /** When set, every operation rejects with exactly this error (a refusal with a wire code, e.g. stale_epoch). */
  refuseWith: Error | null = null;
  /** Operations seen, for assertions about what reached this replica. */
  readonly ops: string[] = [];
  /** Called before each operation resolves; a test may use it to inject a failure mid-stream. */
  beforeOp: ((op: string) => void) | null = null;

  constructor(address: string, sizeBytes: number) {
    this.address = address;
    this.data = new Uint8Array(sizeBytes);
  }

  private enter(op: string): Promise<void> {
    this.ops.push(op);
    this.beforeOp?.(op);
    if (this.broken !== null) return Promise.reject(new IoError('io', `${this.address}: ${this.broken}`));
    if (this.refuseWith !== null) return Promise.reject(this.refuseWith);
    return Promise.resolve();
  }

  async read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    await this.enter('read');
    return this.data.slice(offsetBytes, offsetBytes + lengthBytes);
  }
  async write(offsetBytes: number, data: Uint8Array): Promise<void> {
    await this.enter('write');
    this.data.set(data, offsetBytes);
  }
  async writeZeroes(offsetBytes: number, lengthBytes: number): Promise<void> {
    await this.enter('writeZeroes');
    this.data.fill(0, offsetBytes, offsetBytes + lengthBytes);
  }
  async trim(offsetBytes: number, lengthBytes: number): Promise<void> {
    await this.enter('trim');
    this.data.fill(0, offsetBytes, offsetBytes + lengthBytes);
  }
  async flush(): Promise<void> {
    await this.enter('flush');
  }
  async ping(): Promise<void> {
    await this.enter('ping');
  }
  async acceptEpoch(epoch: number): Promise<void> {
    await this.enter('acceptEpoch');
    if (epoch < this.epoch) throw new IoError('invalid_argument', `stale epoch ${epoch} < ${this.epoch}`);
    this.epoch = epoch;
  }
  async setMembership(membership: { generation: number; members: readonly string[] }): Promise<void> {
    await this.enter('setMembership');
    this.generation = membership.generation;
    this.members = [...membership.members];
  }
  async chain(): Promise<ChainInfo> {
    await this.enter('chain');
    return {
      volumeName: 'vol',
      sizeBytes: this.data.length,
      blockSizeBytes: 4096,
      snapshots: [],
      headSizeBytes: 0,
      headParent: null,
      membership: { epoch: this.epoch, generation: this.generation, members: this.members },
    };
  }
  async snapshot(options: SnapshotOptions): Promise<void> {
    await this.enter('snapshot');
    this.snapshots.push(options.name);
  }
  async expand(sizeBytes: number): Promise<void> {
    await this.enter('expand');
    const grown = new Uint8Array(sizeBytes);
    grown.set(this.data);
    this.data = grown;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
