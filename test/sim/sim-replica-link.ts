// The engine's ReplicaLink in the simulator: one connection to one SimReplicaNode through the
// SimNetwork. Requests and replies are real protocol frames (encoded, then decoded on the other
// side), matched by request id, each with a deadline on the simulated clock. Like the production
// client, a reset connection fails every pending request with 'disconnected' and stays broken.
//
// `bug` plants a deliberate defect, so tests can show that the checker catches broken links.
import type { ChainInfo, ChunkChecksum, LayerExtent, SnapshotOptions } from '../../src/format/replica-chain.ts';
import { ReplicaFrameDecoder } from '../../src/format/replica-protocol/replica-frame-decoder.ts';
import { encodeReplicaRequest, type ReplicaRequest } from '../../src/format/replica-protocol/replica-request.ts';
import { decodeReplicaReply, type ReplicaReplyBody } from '../../src/format/replica-protocol/replica-reply.ts';
import { ReplicaClientError } from '../../src/engine/replica-client.ts';
import type { ReplicaLink } from '../../src/engine/replica-link.ts';
import { SimPipe, type SimNetwork } from './sim-network.ts';
import type { ServerEnd, SimReplicaNode } from './sim-replica-node.ts';
import type { SimScheduler, SimTimer } from './sim-scheduler.ts';

/**
 * Planted defects: 'skip-flush' acknowledges a flush without sending it; 'corrupt-read' flips a
 * byte of the data a read returns; 'lose-write' acknowledges every 7th write without sending it.
 */
export type PlantedLinkBug = 'skip-flush' | 'corrupt-read' | 'lose-write';

/** The reply body type of one op (some bodies serve several ops, e.g. read and read_layer). */
type BodyOf<Op extends ReplicaReplyBody['op'], B = ReplicaReplyBody> = B extends { readonly op: infer O } ? (Op extends O ? B : never) : never;

interface Pending {
  readonly op: ReplicaRequest['op'];
  readonly expectedBytes: number;
  readonly resolve: (body: ReplicaReplyBody) => void;
  readonly reject: (error: ReplicaClientError) => void;
  readonly timer: SimTimer;
}

export class SimReplicaLink implements ReplicaLink, ServerEnd {
  readonly address: string;
  readonly serverIncarnation: number;
  readonly requestDecoder = new ReplicaFrameDecoder();
  private readonly replyDecoder = new ReplicaFrameDecoder();
  private readonly sim: SimScheduler;
  private readonly network: SimNetwork;
  private readonly node: SimReplicaNode;
  private readonly volumeName: string;
  private readonly bug: PlantedLinkBug | undefined;
  private readonly toReplica = new SimPipe();
  private readonly toEngine = new SimPipe();
  private readonly pending = new Map<number, Pending>();
  private nextRequestId = 1;
  private currentEpoch = 0;
  private failure: ReplicaClientError | undefined;
  /** The engine process that owns this link has died: nothing more is sent or received. */
  private engineDead = false;
  private writes = 0;

  constructor(sim: SimScheduler, options: { network: SimNetwork; node: SimReplicaNode; volumeName: string; bug?: PlantedLinkBug }) {
    this.sim = sim;
    this.network = options.network;
    this.node = options.node;
    this.address = options.node.address;
    this.volumeName = options.volumeName;
    this.bug = options.bug;
    this.serverIncarnation = options.node.incarnation;
    // Connecting to a machine whose replica process is down, or across a partition, is refused.
    if (options.node.state !== 'up' || options.network.isPartitioned(this.address)) {
      this.failure = new ReplicaClientError('disconnected', `Cannot connect to replica ${this.address}: connection refused`);
    }
  }

  /** The connection was reset (replica died, or a simulated RST): fail everything, for good. */
  reset(why: string): void {
    if (this.engineDead) return;
    this.fail(new ReplicaClientError('disconnected', `Replica ${this.address}: ${why}`));
  }

  /** The engine process died: its requests never complete and nothing more is sent. */
  engineDied(): void {
    this.engineDead = true;
    for (const pending of this.pending.values()) pending.timer.cancel();
    this.pending.clear();
  }

  get broken(): boolean {
    return this.failure !== undefined;
  }

  private fail(error: ReplicaClientError): void {
    this.failure ??= error;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const pending of all) {
      pending.timer.cancel();
      pending.reject(this.failure);
    }
  }

  sendReply(bytes: Uint8Array): void {
    if (this.engineDead) return;
    this.network.send({ pipe: this.toEngine, machine: this.address, label: `${this.address} reply` }, () => this.receiveReply(bytes));
  }

  private receiveReply(bytes: Uint8Array): void {
    // After a reset nothing is pending, so late replies fall through; after close() the requests
    // already sent still get their replies.
    if (this.engineDead) return;
    this.replyDecoder.push(bytes);
    for (;;) {
      const next = this.replyDecoder.next();
      if (next.kind === 'need_more') return;
      if (next.kind !== 'frame') {
        this.fail(new ReplicaClientError('protocol', `Replica ${this.address}: undecodable reply (${next.kind})`));
        return;
      }
      const decoded = decodeReplicaReply(next.frame);
      if (decoded.kind === 'invalid') {
        this.fail(new ReplicaClientError('protocol', `Replica ${this.address}: ${decoded.message}`));
        return;
      }
      const { envelope } = decoded;
      const pending = this.pending.get(envelope.requestId);
      // A reply to a request that timed out: the production client ignores it too.
      if (pending === undefined) continue;
      this.pending.delete(envelope.requestId);
      pending.timer.cancel();
      const result = envelope.result;
      if (result.kind === 'error') {
        pending.reject(new ReplicaClientError(result.code, `Replica ${this.address}: ${pending.op}: ${result.message}`, { replicaEpoch: envelope.epoch }));
      } else if (result.body.op !== pending.op || ('data' in result.body && result.body.data.length !== pending.expectedBytes)) {
        this.fail(new ReplicaClientError('protocol', `Replica ${this.address}: reply ${result.body.op} does not fit ${pending.op}`));
      } else {
        pending.resolve(result.body);
      }
    }
  }

  private call(request: ReplicaRequest, expectedBytes = 0): Promise<ReplicaReplyBody> {
    return new Promise((resolve, reject) => {
      if (this.engineDead) return;
      if (this.failure !== undefined) {
        reject(this.failure);
        return;
      }
      const requestId = this.nextRequestId++;
      const timer = this.sim.schedule(this.network.timeoutMs, `${this.address} timeout`, () => {
        if (!this.pending.delete(requestId)) return;
        reject(new ReplicaClientError('timeout', `Replica ${this.address}: ${request.op} got no reply in ${this.network.timeoutMs} ms`));
      });
      this.pending.set(requestId, { op: request.op, expectedBytes, resolve, reject, timer });
      const frame = encodeReplicaRequest({ requestId, volumeName: this.volumeName, epoch: this.currentEpoch, request });
      this.network.send({ pipe: this.toReplica, machine: this.address, label: `${this.address} ${request.op}` }, () => this.node.receive(this, frame));
    });
  }

  private async expect<Op extends ReplicaReplyBody['op']>(_op: Op, request: ReplicaRequest, expectedBytes = 0): Promise<BodyOf<Op>> {
    // call() checked that the reply's op is the request's.
    return (await this.call(request, expectedBytes)) as BodyOf<Op>;
  }

  async read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    const body = await this.expect('read', { op: 'read', offsetBytes, lengthBytes }, lengthBytes);
    if (this.bug === 'corrupt-read' && body.data.length > 0) {
      const data = body.data.slice();
      data[this.sim.random.int(data.length)]! ^= 0x40;
      return data;
    }
    return body.data;
  }

  async write(offsetBytes: number, data: Uint8Array): Promise<void> {
    if (this.bug === 'lose-write' && ++this.writes % 7 === 0 && this.failure === undefined) return;
    await this.expect('write', { op: 'write', offsetBytes, data });
  }

  async writeZeroes(offsetBytes: number, lengthBytes: number): Promise<void> {
    await this.expect('write_zeroes', { op: 'write_zeroes', offsetBytes, lengthBytes });
  }

  async trim(offsetBytes: number, lengthBytes: number): Promise<void> {
    await this.expect('trim', { op: 'trim', offsetBytes, lengthBytes });
  }

  async flush(): Promise<void> {
    if (this.bug === 'skip-flush' && this.failure === undefined) return;
    await this.expect('flush', { op: 'flush' });
  }

  async ping(): Promise<void> {
    await this.expect('ping', { op: 'ping' });
  }

  async acceptEpoch(epoch: number): Promise<void> {
    const previous = this.currentEpoch;
    this.currentEpoch = epoch;
    try {
      await this.expect('open', { op: 'open' });
    } catch (error) {
      this.currentEpoch = previous;
      throw error;
    }
  }

  async setMembership(membership: { generation: number; members: readonly string[] }): Promise<void> {
    await this.expect('set_membership', { op: 'set_membership', ...membership });
  }

  async chain(): Promise<ChainInfo> {
    return (await this.expect('chain_info', { op: 'chain_info' })).chain;
  }

  async snapshot(options: SnapshotOptions): Promise<void> {
    await this.expect('snapshot', { op: 'snapshot', options });
  }

  async expand(sizeBytes: number): Promise<void> {
    await this.expect('expand', { op: 'expand', sizeBytes });
  }

  /** The head's extents (the engine's comparison after start); one reply is enough for simulated volumes. */
  async layerExtents(layerName: null, range: LayerExtent): Promise<LayerExtent[]> {
    const reply = await this.expect('layer_extents', { op: 'layer_extents', layerName, range });
    if (reply.endOffsetBytes !== range.offsetBytes + range.lengthBytes) throw new ReplicaClientError('protocol', `Replica ${this.address}: layer_extents cut short`);
    return [...reply.extents];
  }

  async checksums(snapshotName: null, range: LayerExtent): Promise<readonly ChunkChecksum[]> {
    return (await this.expect('checksums', { op: 'checksums', snapshotName, range })).checksums;
  }

  close(): Promise<void> {
    // Requests already sent finish (each bounded by its deadline); nothing new is accepted.
    this.failure ??= new ReplicaClientError('closed', `Replica ${this.address}: link closed`);
    return Promise.resolve();
  }
}
