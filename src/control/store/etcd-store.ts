// The etcd store (etcd v3 API through the `etcd3` package's raw RPC clients): objects at
// `<prefix>/<kind>/<name>`, resourceVersion = the key's mod revision, optimistic concurrency by
// transactions that compare it, watches from a revision on our own gRPC stream, leases as keys
// bound to etcd leases (the server expires them, so no clock is trusted across hosts).
import { randomUUID } from 'node:crypto';
import {
  Etcd3, GRPCOutOfRangeError, type ICompare, type IOptions, type IKeyValue, type IRequestOp, type IWatchResponse,
} from 'etcd3';
import type { Clock } from '../../lib/clock.ts';
import type { Resource } from '../resources/object-meta.ts';
import { systemClock } from '../runtime/timers.ts';
import { matchesLabels, parseLabelSelector } from './label-selector.ts';
import {
  checkKind, checkName, checkWrite, decodeObject, encodeObject, parseResourceVersion, prepareCreate,
  prepareDelete, prepareStatusUpdate, prepareUpdate, type WriteDecision,
} from './object-rules.ts';
import {
  StoreError, type DeleteOptions, type LeaseInfo, type ListOptions, type ListResult, type ResourceStore,
  type Watch, type WatchOptions,
} from './resource-store.ts';
import { checkLease } from './sqlite-store.ts';
import { WatchChannel } from './watch-channel.ts';

export interface EtcdStoreOptions {
  /** Client URLs, e.g. ['http://127.0.0.1:2379']. */
  readonly endpoints: readonly string[];
  /** Key prefix of this cluster's data (default '/shorthorn'). */
  readonly prefix?: string;
  readonly clock?: Clock;
  readonly newUid?: () => string;
  /** Deadline of one request (default 10 s). */
  readonly requestTimeoutMs?: number;
}

/** Retries of a delete/lease step that lost a race with another writer, before 'conflict'. */
const raceRetriesMax = 8;

type FaultPolicy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;
/**
 * No retries or circuit breaking inside the client: a write whose reply was lost must reach the
 * caller as 'unavailable' (it re-reads and decides) rather than be re-sent blindly, and a
 * restarted etcd must be usable at once, not after a breaker's cool-down.
 */
const noRetry = {
  // Async: the client calls execute(() => { throw … }).catch(…) to record failures.
  execute: async (fn: (context: { signal: AbortSignal; attempt: number }) => unknown) =>
    await fn({ signal: new AbortController().signal, attempt: 0 }),
} as unknown as FaultPolicy;

interface StoredLease { holder: string; ttlMs: number; leaseId: string }

/** The end of a key range covering every key that starts with `prefix` (etcd's prefix idiom). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] ?? 0) < 0xff) {
      end[i] = (end[i] ?? 0) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export class EtcdStore implements ResourceStore {
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly clock: Clock;
  private readonly newUid: () => string;
  private readonly watches = new Set<WatchChannel>();
  private readonly requestTimeoutMs: number;
  private closed = false;

  constructor(options: EtcdStoreOptions) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.client = new Etcd3({
      hosts: [...options.endpoints],
      faultHandling: { host: () => noRetry, global: noRetry },
      // A watch catching up gets up to 1000 revisions per message, each with its previous value:
      // far beyond gRPC's 4 MiB default for objects of a few KiB. Objects are bounded
      // (limits.resourceSizeMaxBytes); the batch is etcd's to bound.
      grpcOptions: { 'grpc.max_receive_message_length': -1 },
      // Watch and keep-alive streams live as long as they are wanted; only unary calls time out.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + this.requestTimeoutMs }),
    });
    this.prefix = options.prefix ?? '/shorthorn';
    if (!/^\/[A-Za-z0-9_.\-/]*$/.test(this.prefix) || this.prefix.endsWith('/')) {
      throw new StoreError('invalid', `Bad etcd key prefix ${JSON.stringify(this.prefix)}`);
    }
    this.clock = options.clock ?? systemClock;
    this.newUid = options.newUid ?? randomUUID;
  }

  private key(kind: string, name: string): Buffer {
    return Buffer.from(`${this.prefix}/${kind}/${name}`);
  }

  private kindPrefix(kind: string): Buffer {
    return Buffer.from(`${this.prefix}/${kind}/`);
  }

  private leaseKey(name: string): Buffer {
    // '_' cannot start a kind, so leases never share a range with objects.
    return Buffer.from(`${this.prefix}/_leases/${name}`);
  }

  /** Run one etcd call, translating transport failures into 'unavailable'. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('closed', `${what}: the store is closed`);
    try {
      return await fn();
    } catch (error) {
      if (error instanceof StoreError) throw error;
      throw new StoreError('unavailable', `${what}: etcd: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  private async readKey(what: string, key: Buffer): Promise<IKeyValue | undefined> {
    const response = await this.call(what, () => this.client.kv.range({ key }));
    return response.kvs[0];
  }

  private async txn(what: string, compare: ICompare[], success: IRequestOp[]): Promise<{ succeeded: boolean; revision: number }> {
    const response = await this.call(what, () => this.client.kv.txn({ compare, success, failure: [] }));
    return { succeeded: response.succeeded, revision: Number(response.header.revision) };
  }

  async get(kind: string, name: string): Promise<Resource> {
    checkKind(kind);
    checkName(kind, name);
    const kv = await this.readKey('get', this.key(kind, name));
    if (kv === undefined) throw new StoreError('not_found', `${kind} ${name} not found`);
    return decodeObject(kv.value.toString('utf8'), Number(kv.mod_revision));
  }

  async list(kind: string, options: ListOptions = {}): Promise<ListResult> {
    checkKind(kind);
    const selector = parseLabelSelector(options.labelSelector ?? '');
    const start = this.kindPrefix(kind);
    const response = await this.call('list', () => this.client.kv.range({ key: start, range_end: prefixEnd(start) }));
    const items = response.kvs
      .map((kv) => decodeObject(kv.value.toString('utf8'), Number(kv.mod_revision)))
      .filter((o) => matchesLabels(selector, o.metadata.labels))
      .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
    return { items, resourceVersion: response.header.revision };
  }

  async create(object: Resource): Promise<Resource> {
    const stored = prepareCreate(object, { uid: this.newUid(), nowMs: this.clock.nowMs() });
    const { kind, metadata: { name } } = stored;
    const key = this.key(kind, name);
    const data = encodeObject(stored);
    const result = await this.txn('create', [{ key, target: 'Create', result: 'Equal', create_revision: 0 }],
      [{ request_put: { key, value: Buffer.from(data) } }]);
    if (!result.succeeded) throw new StoreError('already_exists', `${kind} ${name} already exists`);
    return decodeObject(data, result.revision);
  }

  /** Write a decision if the key is still at `modRevision`; false when somebody got there first. */
  private async commit(key: Buffer, modRevision: number, decision: WriteDecision): Promise<Resource | false | undefined> {
    if (decision.action === 'none') return undefined;
    const data = encodeObject(decision.object);
    const op: IRequestOp = decision.action === 'put'
      ? { request_put: { key, value: Buffer.from(data) } }
      : { request_delete_range: { key } };
    const result = await this.txn('write', [{ key, target: 'Mod', result: 'Equal', mod_revision: modRevision }], [op]);
    return result.succeeded ? decodeObject(data, result.revision) : false;
  }

  private async writeExisting(
    op: string,
    value: Resource,
    decide: (stored: Resource, incoming: Resource) => WriteDecision,
  ): Promise<Resource> {
    const { object, expectedVersion } = checkWrite(value, op);
    const { kind, metadata: { name } } = object;
    const key = this.key(kind, name);
    const kv = await this.readKey(op, key);
    if (kv === undefined) throw new StoreError('not_found', `${op}: ${kind} ${name} not found`);
    const modRevision = Number(kv.mod_revision);
    if (modRevision !== expectedVersion) {
      throw new StoreError('conflict', `${op}: ${kind} ${name} is at version ${modRevision}, not ${expectedVersion}`);
    }
    const stored = decodeObject(kv.value.toString('utf8'), modRevision);
    const written = await this.commit(key, modRevision, decide(stored, object));
    if (written === false) throw new StoreError('conflict', `${op}: ${kind} ${name} changed after version ${expectedVersion}`);
    return written ?? stored;
  }

  update(object: Resource): Promise<Resource> {
    return this.writeExisting('update', object, prepareUpdate);
  }

  updateStatus(object: Resource): Promise<Resource> {
    return this.writeExisting('updateStatus', object, prepareStatusUpdate);
  }

  async delete(kind: string, name: string, options: DeleteOptions = {}): Promise<Resource> {
    checkKind(kind);
    checkName(kind, name);
    const expected = options.resourceVersion === undefined ? undefined : parseResourceVersion(options.resourceVersion);
    const key = this.key(kind, name);
    // Without a precondition a delete must not fail because a controller updated the object
    // meanwhile: re-read and try again.
    for (let attempt = 0; attempt < raceRetriesMax; attempt++) {
      const kv = await this.readKey('delete', key);
      if (kv === undefined) throw new StoreError('not_found', `delete: ${kind} ${name} not found`);
      const modRevision = Number(kv.mod_revision);
      if (expected !== undefined && expected !== modRevision) {
        throw new StoreError('conflict', `delete: ${kind} ${name} is at version ${modRevision}, not ${expected}`);
      }
      const stored = decodeObject(kv.value.toString('utf8'), modRevision);
      const written = await this.commit(key, modRevision, prepareDelete(stored, this.clock.nowMs()));
      if (written !== false) return written ?? stored;
      if (expected !== undefined) break;
    }
    throw new StoreError('conflict', `delete: ${kind} ${name} kept changing; try again`);
  }

  /** Discard etcd's history before `resourceVersion` (watches from older versions get 'gone'). */
  async compact(resourceVersion: string): Promise<void> {
    const revision = parseResourceVersion(resourceVersion);
    await this.call('compact', () => this.client.kv.compact({ revision, physical: true }));
  }

  watch(kind: string, options: WatchOptions = {}): Watch {
    checkKind(kind);
    const after = options.resourceVersion === undefined ? undefined : parseResourceVersion(options.resourceVersion);
    let stop: (() => void) | undefined;
    const channel = new WatchChannel(() => {
      this.watches.delete(channel);
      stop?.();
    }, options.signal);
    if (channel.done) return channel;
    if (this.closed) {
      channel.fail(new StoreError('closed', 'watch: the store is closed'));
      return channel;
    }
    this.watches.add(channel);
    const start = this.kindPrefix(kind);
    // The etcd3 package's own watch manager reconnects by itself, resuming after the revision of
    // the last *response header* rather than the last event delivered, which can skip events.
    // So each watch is its own stream, and a broken stream ends the watch with 'unavailable':
    // the caller resumes from the last resourceVersion it saw.
    const open = async (): Promise<void> => {
      const stream = await this.client.watchClient.watch();
      // Attached first: an 'error' without a listener would crash the process.
      stream.on('error', (error: Error) => {
        channel.fail(new StoreError('unavailable', `Watch of ${kind} lost its etcd stream: ${error.message}`, { cause: error }));
      });
      if (channel.done) {
        stream.end();
        stream.cancel();
        return;
      }
      let lastDelivered = after;
      stop = () => {
        stop = undefined;
        stream.end();
        stream.cancel();
      };
      stream.on('data', (response: IWatchResponse) => {
        if (channel.done) return;
        if (response.canceled) {
          const compactRevision = Number(response.compact_revision);
          if (compactRevision > 0) {
            channel.fail(new StoreError('gone', `Watch of ${kind} from version ${lastDelivered ?? 'now'} is too old: history starts at ${compactRevision}; relist`));
            return;
          }
          // Older etcd releases cancel without saying why: ask whether the start was compacted.
          this.explainCancel(start, (lastDelivered ?? 0) + 1).then((error) => channel.fail(error), (error: unknown) => channel.fail(error as Error));
          return;
        }
        for (const event of response.events) {
          const rv = Number(event.kv.mod_revision);
          lastDelivered = rv;
          if (event.type === 'Delete') {
            const previous = event.prev_kv?.value.toString('utf8');
            const object = previous === undefined ? tombstone(kind, event.kv.key.toString('utf8')) : decodeObject(previous, rv);
            object.metadata.resourceVersion = String(rv);
            channel.push({ type: 'DELETED', object });
          } else {
            const type = event.kv.create_revision === event.kv.mod_revision ? 'ADDED' : 'MODIFIED';
            channel.push({ type, object: decodeObject(event.kv.value.toString('utf8'), rv) });
          }
        }
      });
      stream.on('end', () => {
        channel.fail(new StoreError('unavailable', `Watch of ${kind}: etcd ended the stream`));
      });
      stream.write({
        create_request: {
          key: start,
          range_end: prefixEnd(start),
          prev_kv: true,
          ...(after === undefined ? {} : { start_revision: after + 1 }),
        },
      });
    };
    open().catch((error: unknown) => {
      channel.fail(new StoreError('unavailable', `Watch of ${kind}: cannot reach etcd`, { cause: error }));
    });
    return channel;
  }

  private async explainCancel(key: Buffer, revision: number): Promise<StoreError> {
    try {
      await this.client.kv.range({ key, revision, limit: 1 });
      return new StoreError('unavailable', 'etcd cancelled the watch');
    } catch (error) {
      if (error instanceof GRPCOutOfRangeError) {
        return new StoreError('gone', `Watch from version ${revision - 1} is too old (compacted); relist`, { cause: error });
      }
      return new StoreError('unavailable', 'etcd cancelled the watch', { cause: error });
    }
  }

  private async keepAliveOnce(leaseId: string): Promise<boolean> {
    const stream = await this.client.leaseClient.leaseKeepAlive();
    let timer: NodeJS.Timeout | undefined;
    try {
      const ttl = await new Promise<number>((resolve, reject) => {
        stream.on('data', (response: { TTL: string }) => resolve(Number(response.TTL)));
        stream.on('error', reject);
        stream.on('end', () => reject(new Error('keep-alive stream ended')));
        // Streams carry no deadline of their own (see defaultCallOptions).
        timer = setTimeout(() => reject(new Error(`no keep-alive answer in ${this.requestTimeoutMs} ms`)), this.requestTimeoutMs);
        stream.write({ ID: leaseId });
      });
      return ttl > 0;
    } finally {
      clearTimeout(timer);
      stream.end();
      stream.cancel();
    }
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<LeaseInfo> {
    checkLease(name, holder, ttlMs);
    const key = this.leaseKey(name);
    for (let attempt = 0; attempt < raceRetriesMax; attempt++) {
      const kv = await this.readKey('acquireLease', key);
      const current = kv === undefined ? undefined : (JSON.parse(kv.value.toString('utf8')) as StoredLease);
      if (current !== undefined && current.holder !== holder) {
        throw new StoreError('lease_held', `Lease ${name} is held by ${current.holder}`);
      }
      if (current !== undefined && await this.call('renewLease', () => this.keepAliveOnce(current.leaseId))) {
        return { name, holder, ttlMs: current.ttlMs };
      }
      // Free (or ours but expired): bind the key to a fresh etcd lease, if nobody beat us to it.
      const granted = await this.call('acquireLease', () =>
        this.client.leaseClient.leaseGrant({ TTL: Math.ceil(ttlMs / 1000) }));
      const value: StoredLease = { holder, ttlMs, leaseId: granted.ID };
      const compare: ICompare = kv === undefined
        ? { key, target: 'Create', result: 'Equal', create_revision: 0 }
        : { key, target: 'Mod', result: 'Equal', mod_revision: kv.mod_revision };
      const result = await this.txn('acquireLease', [compare],
        [{ request_put: { key, value: Buffer.from(JSON.stringify(value)), lease: granted.ID } }]);
      if (result.succeeded) return { name, holder, ttlMs };
      await this.call('acquireLease', () => this.client.leaseClient.leaseRevoke({ ID: granted.ID }));
    }
    throw new StoreError('lease_held', `Lease ${name} kept changing hands; try again`);
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    checkName('Lease', name);
    checkName('Lease holder', holder);
    const kv = await this.readKey('releaseLease', this.leaseKey(name));
    if (kv === undefined) return;
    const current = JSON.parse(kv.value.toString('utf8')) as StoredLease;
    if (current.holder !== holder) return;
    // Revoking the etcd lease deletes the key with it.
    await this.call('releaseLease', () => this.client.leaseClient.leaseRevoke({ ID: current.leaseId }));
  }

  async getLease(name: string): Promise<LeaseInfo | null> {
    checkName('Lease', name);
    const kv = await this.readKey('getLease', this.leaseKey(name));
    if (kv === undefined) return null;
    const current = JSON.parse(kv.value.toString('utf8')) as StoredLease;
    return { name, holder: current.holder, ttlMs: current.ttlMs };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const channel of [...this.watches]) channel.fail(new StoreError('closed', 'The store was closed'));
    this.closed = true;
    this.client.close();
    return Promise.resolve();
  }
}

/** A DELETED event whose previous value etcd no longer has: name and kind only. */
function tombstone(kind: string, key: string): Resource {
  const name = key.slice(key.lastIndexOf('/') + 1);
  return { apiVersion: 'shorthorn.io/v1', kind, metadata: { name }, spec: null };
}
