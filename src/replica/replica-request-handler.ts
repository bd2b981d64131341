// Executes decoded replica-protocol requests against a ReplicaStore: fencing (volume name and
// epoch), range checks before any buffer is allocated, the shared/exclusive lock, and the
// translation of store errors into wire error codes. Knows nothing of sockets.
import { AssertionError, unreachable } from '../lib/assert.ts';
import { toError } from '../lib/errors.ts';
import { checksumChunkSizeBytes, replicaChecksumChunksPerRequestMax, replicaExtentsPerReplyMax } from '../lib/limits.ts';
import type { ReplicaErrorCode as WireErrorCode } from '../format/replica-protocol/replica-ops.ts';
import type { ReplicaRequest, ReplicaRequestEnvelope } from '../format/replica-protocol/replica-request.ts';
import type { ReplicaReplyBody, ReplicaReplyResult } from '../format/replica-protocol/replica-reply.ts';
import { replicaOpCodes } from '../format/replica-protocol/replica-ops.ts';
import type { ChainInfo, LayerReceiverPort, ReplicaStore } from './replica-store.ts';
import { ReplicaError, type ReplicaErrorCode } from './replica-error.ts';
import { AsyncRwLock } from './async-rw-lock.ts';

/** A refusal decided here, before the store is asked. */
class Refusal extends Error {
  readonly code: WireErrorCode;
  constructor(code: WireErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

function wireCode(code: ReplicaErrorCode): WireErrorCode {
  switch (code) {
    case 'io':
    case 'no_space':
    case 'out_of_range':
    case 'closed':
    case 'failed':
    case 'stale_epoch':
    case 'not_found':
    case 'already_exists':
    case 'conflict':
    case 'corrupt':
      return code;
    case 'invalid_argument':
      return 'bad_request';
    case 'too_many_snapshots':
      return 'limit_exceeded';
    case 'unsupported_version':
      return 'io';
    default:
      return unreachable(code, 'replica error code');
  }
}

/**
 * Only `open` runs alone: fencing must not interleave with requests of the epoch it supersedes.
 * The store orders everything else itself (its own locks around snapshot, purge, revert, expand),
 * so a long purge does not stop I/O.
 */
function isExclusive(request: ReplicaRequest): boolean {
  return request.op === 'open';
}

const writeBody: ReplicaReplyBody = { op: 'write' };
const writeDone = (): ReplicaReplyBody => writeBody;
const readDone = (data: Uint8Array): ReplicaReplyBody => ({ op: 'read', data });

export interface ReplicaRequestHandlerOptions {
  /** Where unexpected (non-ReplicaError) failures are reported; they are answered with 'io'. */
  readonly onUnexpectedError?: (error: Error) => void;
  /** This replica's instance id (format/replica-identity.ts), added to chain_info and open replies. */
  readonly instanceId?: string;
}

export class ReplicaRequestHandler {
  private readonly store: ReplicaStore;
  private readonly lock = new AsyncRwLock();
  private readonly onUnexpectedError: (error: Error) => void;
  /** The store's accepted epoch, cached: only `open` changes it, and only through this handler. */
  private epoch: number;
  private readonly instanceId: string | undefined;

  constructor(store: ReplicaStore, options: ReplicaRequestHandlerOptions = {}) {
    this.store = store;
    this.instanceId = options.instanceId;
    this.epoch = store.chain().membership.epoch;
    this.onUnexpectedError = options.onUnexpectedError ?? (() => {});
  }

  /** The store's record, with this replica's instance id when it has one. */
  private chain(): ChainInfo {
    const chain = this.store.chain();
    return this.instanceId === undefined ? chain : { ...chain, instanceId: this.instanceId };
  }

  get volumeName(): string {
    return this.store.volumeName;
  }

  get acceptedEpoch(): number {
    return this.epoch;
  }

  /** Run one request. Resolves with the reply (errors included); rejects only on a broken invariant. */
  handle(envelope: ReplicaRequestEnvelope): Promise<ReplicaReplyResult> {
    const { request } = envelope;
    if (!isExclusive(request) && this.lock.tryShared()) {
      // The usual case, without the lock's async wrapper: one promise chain per request.
      return this.fencedStart(envelope).then(
        (body): ReplicaReplyResult => {
          this.lock.releaseShared();
          return { kind: 'ok', body };
        },
        (error: unknown) => {
          this.lock.releaseShared();
          return this.errorResult(replicaOpCodes[request.op], error);
        },
      );
    }
    return this.handleWaiting(envelope);
  }

  private async handleWaiting(envelope: ReplicaRequestEnvelope): Promise<ReplicaReplyResult> {
    const { request } = envelope;
    try {
      const run = (): Promise<ReplicaReplyBody> => this.fencedExecute(envelope);
      const body = isExclusive(request) ? await this.lock.exclusive(run) : await this.lock.shared(run);
      return { kind: 'ok', body };
    } catch (error) {
      return this.errorResult(replicaOpCodes[request.op], error);
    }
  }

  private errorResult(opCode: number, error: unknown): ReplicaReplyResult {
    if (error instanceof AssertionError) throw error;
    if (error instanceof Refusal) return { kind: 'error', opCode, code: error.code, message: error.message };
    if (error instanceof ReplicaError) return { kind: 'error', opCode, code: wireCode(error.code), message: error.message };
    const unexpected = error instanceof Error ? error : new Error(String(error));
    this.onUnexpectedError(unexpected);
    return { kind: 'error', opCode, code: 'io', message: `unexpected failure: ${unexpected.message}` };
  }

  /**
   * fencedExecute, with reads and writes of the current epoch started without its two async
   * frames (the checks are synchronous; the store's promise is the request's). These are nearly
   * every request a replica serves.
   */
  private fencedStart(envelope: ReplicaRequestEnvelope): Promise<ReplicaReplyBody> {
    const { request } = envelope;
    if ((request.op !== 'write' && request.op !== 'read') || envelope.epoch !== this.epoch || envelope.volumeName !== this.store.volumeName) {
      return this.fencedExecute(envelope);
    }
    try {
      if (request.op === 'write') {
        this.checkRange(request.offsetBytes, request.data.length);
        return this.store.write(request.offsetBytes, request.data).then(writeDone);
      }
      this.checkRange(request.offsetBytes, request.lengthBytes);
      return this.store.read(request.offsetBytes, request.lengthBytes).then(readDone);
    } catch (error) {
      return Promise.reject(toError(error));
    }
  }

  /** Fencing runs under the lock, so an `open` that raises the epoch cannot slip between check and work. */
  private async fencedExecute(envelope: ReplicaRequestEnvelope): Promise<ReplicaReplyBody> {
    const { request, epoch, volumeName } = envelope;
    if (volumeName !== this.store.volumeName) {
      throw new Refusal('wrong_volume', `this replica serves volume ${this.store.volumeName}, not ${volumeName}`);
    }
    // chain_info answers at any epoch: it is how a starting engine learns the epoch it must beat.
    if (request.op === 'chain_info') return { op: 'chain_info', chain: this.chain() };
    if (epoch < this.epoch) {
      throw new Refusal('stale_epoch', `epoch ${epoch} is older than the accepted epoch ${this.epoch}`);
    }
    if (request.op === 'open') {
      await this.store.acceptEpoch(epoch);
      this.epoch = epoch;
      return { op: 'open', chain: this.chain() };
    }
    if (epoch > this.epoch) {
      throw new Refusal('epoch_not_open', `epoch ${epoch} has not been opened (accepted epoch is ${this.epoch})`);
    }
    return this.execute(request);
  }

  private receiver(): LayerReceiverPort {
    const receiver = this.store.receiver;
    if (receiver === undefined) throw new Refusal('bad_request', 'this replica cannot receive layers (rebuild)');
    return receiver;
  }

  private checkRange(offsetBytes: number, lengthBytes: number): void {
    const sizeBytes = this.store.sizeBytes();
    if (offsetBytes + lengthBytes > sizeBytes) {
      throw new Refusal('out_of_range', `range ${offsetBytes}+${lengthBytes} ends past the volume size ${sizeBytes}`);
    }
  }

  private async execute(request: Exclude<ReplicaRequest, { op: 'open' | 'chain_info' }>): Promise<ReplicaReplyBody> {
    const store = this.store;
    switch (request.op) {
      case 'read':
        this.checkRange(request.offsetBytes, request.lengthBytes);
        return { op: 'read', data: await store.read(request.offsetBytes, request.lengthBytes) };
      case 'write':
        this.checkRange(request.offsetBytes, request.data.length);
        await store.write(request.offsetBytes, request.data);
        return { op: 'write' };
      case 'write_zeroes':
        this.checkRange(request.offsetBytes, request.lengthBytes);
        await store.writeZeroes(request.offsetBytes, request.lengthBytes);
        return { op: 'write_zeroes' };
      case 'trim':
        this.checkRange(request.offsetBytes, request.lengthBytes);
        await store.trim(request.offsetBytes, request.lengthBytes);
        return { op: 'trim' };
      case 'flush':
        await store.flush();
        return { op: 'flush' };
      case 'ping':
        return { op: 'ping' };
      case 'set_membership':
        await store.setMembership({ generation: request.generation, members: request.members });
        return { op: 'set_membership' };
      case 'snapshot':
        await store.snapshot(request.options);
        return { op: 'snapshot' };
      case 'mark_removed':
        await store.markRemoved(request.name);
        return { op: 'mark_removed' };
      case 'purge':
        return { op: 'purge', purged: await store.purge() };
      case 'revert':
        await store.revert(request.name);
        return { op: 'revert' };
      case 'expand':
        await store.expand(request.sizeBytes);
        return { op: 'expand' };
      case 'checksums': {
        const { range } = request;
        this.checkRange(range.offsetBytes, range.lengthBytes);
        const chunks = Math.ceil(range.lengthBytes / checksumChunkSizeBytes);
        if (chunks > replicaChecksumChunksPerRequestMax) {
          throw new Refusal('limit_exceeded', `checksums of ${chunks} chunks; at most ${replicaChecksumChunksPerRequestMax} a request`);
        }
        return { op: 'checksums', checksums: await store.checksums(request.snapshotName, range) };
      }
      case 'layer_extents': {
        const { range } = request;
        this.checkRange(range.offsetBytes, range.lengthBytes);
        const extents = await store.layerExtents(request.layerName, range);
        const endOfRange = range.offsetBytes + range.lengthBytes;
        if (extents.length <= replicaExtentsPerReplyMax) return { op: 'layer_extents', extents, endOffsetBytes: endOfRange };
        // Cut the list; the caller asks again from the first extent it did not get.
        const endOffsetBytes = extents[replicaExtentsPerReplyMax]!.offsetBytes;
        return { op: 'layer_extents', extents: extents.slice(0, replicaExtentsPerReplyMax), endOffsetBytes };
      }
      case 'read_layer':
        this.checkRange(request.offsetBytes, request.lengthBytes);
        return { op: 'read_layer', data: await store.readLayer(request.layerName, request.offsetBytes, request.lengthBytes) };
      case 'stage_reset':
        await this.receiver().reset();
        return { op: 'stage_reset' };
      case 'stage_layer':
        await this.receiver().stageLayer(request.spec);
        return { op: 'stage_layer' };
      case 'stage_write':
        this.checkRange(request.offsetBytes, request.data.length);
        await this.receiver().write(request.layerName, request.offsetBytes, request.data);
        return { op: 'stage_write' };
      case 'stage_extent':
        this.checkRange(request.range.offsetBytes, request.range.lengthBytes);
        await this.receiver().extent(request.layerName, request.range, request.source);
        return { op: 'stage_extent' };
      case 'stage_install':
        await this.receiver().install();
        return { op: 'stage_install' };
      default:
        return unreachable(request, 'replica request');
    }
  }
}
