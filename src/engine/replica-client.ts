// The engine's side of the replica protocol: one connection (TCP or unix socket) to one replica,
// pipelined requests matched to out-of-order replies by request id, a per-request deadline, a
// bounded in-flight window with a bounded wait queue, typed errors, and failure of every pending
// request when the connection drops (the engine then moves the replica to ERR).
import { connect as netConnect, type Socket } from 'node:net';
import { ShorthornError } from '../lib/errors.ts';
import { assert } from '../lib/assert.ts';
import { replicaClientQueueMax, replicaInflightMax, replicaRequestFloorBytesPerSecond, replicaRequestTimeoutMs, slowRequestTimeoutMs } from '../lib/limits.ts';
import type { ChainInfo, ChunkChecksum, LayerExtent, ReceivedLayerSpec, SnapshotOptions, StagedExtentSource } from '../format/replica-chain.ts';
import { ReplicaFrameDecoder } from '../format/replica-protocol/replica-frame-decoder.ts';
import { encodeReplicaRequestParts, type ReplicaRequest } from '../format/replica-protocol/replica-request.ts';
import { decodeReplicaReply, type ReplicaReplyBody } from '../format/replica-protocol/replica-reply.ts';
import type { ReplicaErrorCode as WireErrorCode } from '../format/replica-protocol/replica-ops.ts';
import type { ReplicaLink } from './replica-link.ts';

/**
 * The replica's own error codes (wire), plus what can go wrong on our side:
 * `timeout` (no reply in time), `disconnected` (the connection dropped), `protocol` (the replica
 * sent something we cannot trust; the connection is dropped), `wrong_replica` (another replica
 * instance answered than the one this link started with), `closed` (close() was called),
 * `overloaded` is also used when our own wait queue is full.
 */
export type ReplicaClientErrorCode = WireErrorCode | 'timeout' | 'disconnected' | 'protocol' | 'wrong_replica';

export class ReplicaClientError extends ShorthornError<ReplicaClientErrorCode> {
  /** The replica's accepted epoch, when the error came in a reply (tells a fenced engine who won). */
  readonly replicaEpoch: number | undefined;
  constructor(code: ReplicaClientErrorCode, message: string, options?: ErrorOptions & { replicaEpoch?: number }) {
    super(code, message, options);
    this.replicaEpoch = options?.replicaEpoch;
  }
}

/** A request's deadline: the base timeout plus the time its bytes take at the floor bandwidth (issue #9). */
export function replicaRequestDeadlineMs(baseTimeoutMs: number, bytes: number): number {
  return baseTimeoutMs + Math.ceil((bytes * 1000) / replicaRequestFloorBytesPerSecond);
}

export type ReplicaEndpoint = { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };

/** "host:port", "[v6]:port" or a socket path (anything containing a '/'). */
export function parseReplicaAddress(address: string): ReplicaEndpoint {
  if (address.includes('/')) return { kind: 'unix', path: address };
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (match === null || host === undefined || port < 1 || port > 65535) {
    throw new ReplicaClientError('bad_request', `Cannot parse replica address ${JSON.stringify(address)}: want host:port or a socket path`);
  }
  return { kind: 'tcp', host, port };
}

export interface ReplicaClientOptions {
  readonly volumeName: string;
  /** The epoch requests carry until acceptEpoch() presents another one. Default 0. */
  readonly epoch?: number;
  readonly timeoutMs?: number;
  readonly inflightMax?: number;
  /** Deadline for establishing the connection; default timeoutMs. */
  readonly connectTimeoutMs?: number;
}

interface Pending {
  readonly op: ReplicaRequest['op'];
  readonly expectedBytes: number;
  /** Turns the reply body into what the caller's promise resolves with (a static function, no closure per call). */
  readonly extract: (body: ReplicaReplyBody) => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: ReplicaClientError) => void;
  readonly timeoutMs: number;
  /** performance.now() past which the request has timed out. */
  readonly deadlineMs: number;
}

const wholeBody = (body: ReplicaReplyBody): ReplicaReplyBody => body;
const bodyData = (body: ReplicaReplyBody): Uint8Array => {
  assert('data' in body, `reply op ${body.op} carries no data`);
  return body.data;
};
const nothing = (): void => undefined;

/** The reply body type of one op (some bodies serve several ops, e.g. read and read_layer). */
type BodyOf<Op extends ReplicaReplyBody['op'], B = ReplicaReplyBody> = B extends { readonly op: infer O } ? (Op extends O ? B : never) : never;

interface Queued {
  readonly request: ReplicaRequest;
  readonly pending: Pending;
}

export async function connectReplica(address: string, options: ReplicaClientOptions): Promise<ReplicaClient> {
  const endpoint = parseReplicaAddress(address);
  const timeoutMs = options.connectTimeoutMs ?? options.timeoutMs ?? replicaRequestTimeoutMs;
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = endpoint.kind === 'tcp' ? netConnect({ host: endpoint.host, port: endpoint.port }) : netConnect({ path: endpoint.path });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new ReplicaClientError('timeout', `Cannot connect to replica ${address}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (error) => {
      clearTimeout(timer);
      reject(new ReplicaClientError('disconnected', `Cannot connect to replica ${address}: ${error.message}`, { cause: error }));
    });
  });
  return new ReplicaClient(socket, address, options);
}

export class ReplicaClient implements ReplicaLink {
  readonly address: string;
  private readonly socket: Socket;
  private readonly volumeName: string;
  private readonly timeoutMs: number;
  private readonly inflightMax: number;
  private readonly decoder = new ReplicaFrameDecoder();
  private readonly pending = new Map<number, Pending>();
  private readonly queue: Queued[] = [];
  private nextRequestId = 1;
  private corked = false;
  private currentEpoch: number;
  private knownInstanceId: string | null = null;
  /** Why the client no longer works, once it does not. */
  private failure: ReplicaClientError | undefined;
  private readonly closedPromise: Promise<void>;
  private closing = false;
  private readonly idleWaiters: (() => void)[] = [];
  /**
   * One timer for every deadline, armed for the earliest one, instead of a timer per request:
   * creating and clearing a timer per request was a visible cost at tens of thousands of
   * requests a second. It fires rarely (requests normally finish long before their deadline).
   */
  private deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  private deadlineTimerAtMs = Infinity;

  constructor(socket: Socket, address: string, options: ReplicaClientOptions) {
    this.socket = socket;
    this.address = address;
    this.volumeName = options.volumeName;
    this.currentEpoch = options.epoch ?? 0;
    this.timeoutMs = options.timeoutMs ?? replicaRequestTimeoutMs;
    this.inflightMax = options.inflightMax ?? replicaInflightMax;
    socket.setNoDelay(true);
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    // Plain Uint8Array views (not Buffers) go to callers: one type for data everywhere.
    socket.on('data', (chunk: Buffer) => this.receive(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
    socket.on('error', (error) => {
      this.fail(new ReplicaClientError('disconnected', `Replica ${address}: ${error.message}`, { cause: error }));
    });
    socket.once('close', () => {
      this.fail(new ReplicaClientError('disconnected', `Replica ${address}: connection closed`));
    });
  }

  /** The epoch this client's requests carry. */
  get epoch(): number {
    return this.currentEpoch;
  }

  /** True once the connection has failed or been closed; every call then rejects. */
  get broken(): boolean {
    return this.failure !== undefined;
  }

  private receive(chunk: Uint8Array): void {
    this.decoder.push(chunk);
    for (;;) {
      const result = this.decoder.next();
      if (result.kind === 'need_more') return;
      if (result.kind === 'fatal') {
        this.protocolFailure(`undecodable stream: ${result.message}`);
        return;
      }
      if (result.kind === 'invalid') {
        this.protocolFailure(`bad reply header: ${result.message}`);
        return;
      }
      const decoded = decodeReplicaReply(result.frame);
      if (decoded.kind === 'invalid') {
        this.protocolFailure(`bad reply to request ${decoded.requestId}: ${decoded.message}`);
        return;
      }
      const { envelope } = decoded;
      const pending = this.pending.get(envelope.requestId);
      if (pending === undefined) {
        // A reply to a request that timed out, or the server's parting error (request id 0).
        if (envelope.requestId === 0 && envelope.result.kind === 'error') {
          const { code, message } = envelope.result;
          this.fail(new ReplicaClientError(code, `Replica ${this.address} closed the connection: ${message}`));
          return;
        }
        continue;
      }
      const outcome = envelope.result;
      if (outcome.kind === 'ok' && outcome.body.op !== pending.op) {
        this.protocolFailure(`reply op ${outcome.body.op} for a ${pending.op} request`);
        return;
      }
      if (outcome.kind === 'ok' && 'data' in outcome.body && outcome.body.data.length !== pending.expectedBytes) {
        this.protocolFailure(`${pending.op} reply of ${outcome.body.data.length} bytes for ${pending.expectedBytes}`);
        return;
      }
      this.settle(envelope.requestId);
      if (outcome.kind === 'error') {
        const message = `Replica ${this.address}: ${pending.op}: ${outcome.message}`;
        pending.reject(new ReplicaClientError(outcome.code, message, { replicaEpoch: envelope.epoch }));
      } else {
        pending.resolve(pending.extract(outcome.body));
      }
    }
  }

  private protocolFailure(message: string): void {
    this.fail(new ReplicaClientError('protocol', `Replica ${this.address}: ${message}`));
    this.socket.destroy();
  }

  private settle(requestId: number): void {
    this.pending.delete(requestId);
    if (this.queue.length > 0) this.startQueued();
    if (this.pending.size === 0) this.wakeIdle();
  }

  private wakeIdle(): void {
    if (this.pending.size > 0 || this.queue.length > 0) return;
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Fail everything pending and queued, and every later call, with `error`. */
  private fail(error: ReplicaClientError): void {
    if (this.failure === undefined) this.failure = error;
    const all = [...this.pending.values(), ...this.queue.map((q) => q.pending)];
    this.pending.clear();
    this.queue.length = 0;
    this.disarmDeadlines();
    for (const pending of all) pending.reject(this.failure);
    this.wakeIdle();
    if (!this.socket.destroyed) this.socket.destroy();
  }

  private allocateRequestId(): number {
    // u32 ids, skipping 0 (the server's connection-level errors) and ids still pending.
    for (;;) {
      const id = this.nextRequestId;
      this.nextRequestId = id >= 0xffffffff ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private call<T>(request: ReplicaRequest, extract: (body: ReplicaReplyBody) => T, options: { expectedBytes?: number; timeoutMs?: number } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.failure !== undefined) {
        reject(this.failure);
        return;
      }
      if (this.closing) {
        reject(new ReplicaClientError('closed', `Replica ${this.address}: client is closing`));
        return;
      }
      const timeoutMs = options.timeoutMs ?? this.timeoutMs;
      // The deadline covers the wait in the queue as well: the caller sees one timeout per request.
      const deadlineMs = performance.now() + timeoutMs;
      const pending: Pending = {
        op: request.op,
        expectedBytes: options.expectedBytes ?? 0,
        extract,
        resolve: resolve as (value: unknown) => void,
        reject,
        timeoutMs,
        deadlineMs,
      };
      if (this.pending.size < this.inflightMax) {
        this.send(request, pending);
      } else if (this.queue.length < replicaClientQueueMax) {
        this.queue.push({ request, pending });
      } else {
        reject(new ReplicaClientError('overloaded', `Replica ${this.address}: ${this.queue.length} requests already waiting`));
        return;
      }
      if (deadlineMs < this.deadlineTimerAtMs) this.armDeadlines(deadlineMs);
    });
  }

  private armDeadlines(atMs: number): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.deadlineTimerAtMs = atMs;
    // The sweep waits for setImmediate, after this turn's socket reads: when the process stalled
    // (a long GC, a starved CPU) past a deadline, timers run before sockets are read, and replies
    // that arrived in time would still be sitting unread while their requests were failed.
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = undefined;
      this.deadlineTimerAtMs = Infinity;
      setImmediate(() => this.sweepDeadlines());
    }, Math.max(0, Math.ceil(atMs - performance.now())));
    // Left armed when requests finish (re-arming per request is the cost this avoids), so it must
    // not keep the process alive on its own: the socket does while requests are out.
    this.deadlineTimer.unref();
  }

  private disarmDeadlines(): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.deadlineTimerAtMs = Infinity;
  }

  /** Time out every request past its deadline (sent or queued), then arm for the next deadline. */
  private sweepDeadlines(): void {
    const nowMs = performance.now();
    const expired: Pending[] = [];
    for (const [id, p] of this.pending) {
      if (p.deadlineMs <= nowMs) {
        this.pending.delete(id);
        expired.push(p);
      }
    }
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const p = this.queue[i]!.pending;
      if (p.deadlineMs <= nowMs) {
        this.queue.splice(i, 1);
        expired.push(p);
      }
    }
    if (expired.length > 0) this.startQueued();
    // After startQueued: requests it sent are now pending, the rest still queued.
    let nextMs = Infinity;
    for (const p of this.pending.values()) nextMs = Math.min(nextMs, p.deadlineMs);
    for (const q of this.queue) nextMs = Math.min(nextMs, q.pending.deadlineMs);
    if (nextMs < this.deadlineTimerAtMs) this.armDeadlines(nextMs);
    this.wakeIdle();
    for (const p of expired) p.reject(new ReplicaClientError('timeout', `Replica ${this.address}: ${p.op} got no reply in ${p.timeoutMs} ms`));
  }

  private send(request: ReplicaRequest, pending: Pending): void {
    const requestId = this.allocateRequestId();
    this.pending.set(requestId, pending);
    this.corkForThisTick();
    // Header and payload as two pieces of the corked writev: a write's data is sent from the
    // caller's buffer, shared by every replica of the fan-out, instead of copied into a frame
    // per replica. The engine never changes a write's data while it is in flight.
    const frame = encodeReplicaRequestParts({ requestId, volumeName: this.volumeName, epoch: this.currentEpoch, request });
    this.socket.write(frame.header);
    if (frame.payload.length > 0) this.socket.write(frame.payload);
  }

  /**
   * Requests made in one turn of the event loop (a fan-out, a burst from a deep NBD queue) leave
   * in one writev: one system call instead of one per request, the largest CPU cost on this
   * path. setImmediate runs after every I/O callback of this turn, so they all share the write.
   */
  private corkForThisTick(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    setImmediate(() => {
      this.corked = false;
      this.socket.uncork();
    });
  }

  private startQueued(): void {
    while (this.pending.size < this.inflightMax && this.queue.length > 0 && this.failure === undefined) {
      const next = this.queue.shift()!;
      this.send(next.request, next.pending);
    }
  }

  private async expect<Op extends ReplicaReplyBody['op']>(
    op: Op,
    request: ReplicaRequest,
    expectedBytes = 0,
    timeoutMs?: number,
  ): Promise<BodyOf<Op>> {
    const body = await this.call(request, wholeBody, timeoutMs === undefined ? { expectedBytes } : { expectedBytes, timeoutMs });
    assert(body.op === op, `reply op ${body.op} for ${op}`);
    return body as BodyOf<Op>;
  }

  // read and write are the hot path: no async wrappers, the reply's data goes straight to the
  // caller (receive() has checked the reply's op and length against the request).
  read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    return this.call({ op: 'read', offsetBytes, lengthBytes }, bodyData, { expectedBytes: lengthBytes, timeoutMs: replicaRequestDeadlineMs(this.timeoutMs, lengthBytes) });
  }

  write(offsetBytes: number, data: Uint8Array): Promise<void> {
    return this.call({ op: 'write', offsetBytes, data }, nothing, { timeoutMs: replicaRequestDeadlineMs(this.timeoutMs, data.length) });
  }

  async writeZeroes(offsetBytes: number, lengthBytes: number): Promise<void> {
    await this.expect('write_zeroes', { op: 'write_zeroes', offsetBytes, lengthBytes });
  }

  async trim(offsetBytes: number, lengthBytes: number): Promise<void> {
    await this.expect('trim', { op: 'trim', offsetBytes, lengthBytes });
  }

  async flush(): Promise<void> {
    await this.expect('flush', { op: 'flush' });
  }

  async ping(): Promise<void> {
    await this.expect('ping', { op: 'ping' });
  }

  /** Present `epoch`: the replica persists it (if higher) and this client's requests carry it from now on. */
  async open(epoch: number): Promise<ChainInfo> {
    const previous = this.currentEpoch;
    this.currentEpoch = epoch;
    let chain: ChainInfo;
    try {
      chain = (await this.expect('open', { op: 'open' })).chain;
    } catch (error) {
      this.currentEpoch = previous;
      throw error;
    }
    return this.learnIdentity(chain);
  }

  /**
   * The replica's instance id, from the first chain record that carried one (format/
   * replica-identity.ts). A later record with another id means this link no longer talks to the
   * replica it started with: nothing more may be sent over it.
   */
  private learnIdentity(chain: ChainInfo): ChainInfo {
    const seen = chain.instanceId ?? null;
    if (this.knownInstanceId === null) {
      this.knownInstanceId = seen;
      return chain;
    }
    if (seen !== this.knownInstanceId) {
      const error = new ReplicaClientError('wrong_replica', `Replica ${this.address} is instance ${seen ?? '(none)'}, not ${this.knownInstanceId}`);
      this.fail(error);
      throw error;
    }
    return chain;
  }

  /** The replica's instance id once a chain record carried one; null before (or if it has none). */
  get instanceId(): string | null {
    return this.knownInstanceId;
  }

  async acceptEpoch(epoch: number): Promise<void> {
    await this.open(epoch);
  }

  async setMembership(membership: { generation: number; members: readonly string[] }): Promise<void> {
    await this.expect('set_membership', { op: 'set_membership', ...membership });
  }

  async chain(): Promise<ChainInfo> {
    return this.learnIdentity((await this.expect('chain_info', { op: 'chain_info' })).chain);
  }

  async snapshot(options: SnapshotOptions): Promise<void> {
    await this.expect('snapshot', { op: 'snapshot', options });
  }

  async markRemoved(name: string): Promise<void> {
    await this.expect('mark_removed', { op: 'mark_removed', name });
  }

  async purge(): Promise<readonly string[]> {
    return (await this.expect('purge', { op: 'purge' }, 0, Math.max(this.timeoutMs, slowRequestTimeoutMs))).purged;
  }

  async revert(name: string): Promise<void> {
    await this.expect('revert', { op: 'revert', name });
  }

  async expand(sizeBytes: number): Promise<void> {
    await this.expect('expand', { op: 'expand', sizeBytes });
  }

  async checksums(snapshotName: string | null, range: LayerExtent): Promise<readonly ChunkChecksum[]> {
    // The first request for a layer hashes all of it on the replica: a slow request by nature.
    return (await this.expect('checksums', { op: 'checksums', snapshotName, range }, 0, Math.max(this.timeoutMs, slowRequestTimeoutMs))).checksums;
  }

  /** Every allocated extent of one layer in a range, asking again when a reply was cut short. */
  async layerExtents(layerName: string | null, range: LayerExtent): Promise<LayerExtent[]> {
    const end = range.offsetBytes + range.lengthBytes;
    const all: LayerExtent[] = [];
    let offsetBytes = range.offsetBytes;
    do {
      const reply = await this.expect('layer_extents', { op: 'layer_extents', layerName, range: { offsetBytes, lengthBytes: end - offsetBytes } });
      if (reply.endOffsetBytes <= offsetBytes || reply.endOffsetBytes > end) {
        throw new ReplicaClientError('protocol', `Replica ${this.address}: layer_extents made no progress at ${offsetBytes}`);
      }
      all.push(...reply.extents);
      offsetBytes = reply.endOffsetBytes;
    } while (offsetBytes < end);
    return all;
  }

  async readLayer(layerName: string | null, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    return (await this.expect('read_layer', { op: 'read_layer', layerName, offsetBytes, lengthBytes }, lengthBytes, replicaRequestDeadlineMs(this.timeoutMs, lengthBytes))).data;
  }

  async stageReset(): Promise<void> {
    await this.expect('stage_reset', { op: 'stage_reset' });
  }

  async stageLayer(spec: ReceivedLayerSpec): Promise<void> {
    await this.expect('stage_layer', { op: 'stage_layer', spec });
  }

  async stageWrite(layerName: string, offsetBytes: number, data: Uint8Array): Promise<void> {
    await this.expect('stage_write', { op: 'stage_write', layerName, offsetBytes, data }, 0, replicaRequestDeadlineMs(this.timeoutMs, data.length));
  }

  async stageExtent(layerName: string, range: LayerExtent, source: StagedExtentSource): Promise<void> {
    await this.expect('stage_extent', { op: 'stage_extent', layerName, range: { offsetBytes: range.offsetBytes, lengthBytes: range.lengthBytes }, source });
  }

  async stageInstall(): Promise<void> {
    // Syncs every staged file: as slow as the layers are large.
    await this.expect('stage_install', { op: 'stage_install' }, 0, Math.max(this.timeoutMs, slowRequestTimeoutMs));
  }

  /** Refuse new requests, let those already sent finish (each bounded by its deadline), then close. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.pending.size > 0 || this.queue.length > 0) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    this.failure ??= new ReplicaClientError('closed', `Replica ${this.address}: client closed`);
    this.disarmDeadlines();
    this.socket.end();
    await this.closedPromise;
  }
}
