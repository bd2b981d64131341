// The embedded store: one SQLite database in the data directory, shared safely by every process
// on the host (WAL journal, busy timeout, BEGIN IMMEDIATE write transactions). A single counter
// row is the revision: every write bumps it, stamps the object with it and appends an event, all
// in one transaction, so a process killed mid-write leaves the old state or the new, never half.
// Watchers learn of writes by other processes by polling the event log (see poll()).
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Clock } from '../../lib/clock.ts';
import { leaseTtlMaxMs, leaseTtlMinMs, storeEventRetentionCount } from '../../lib/limits.ts';
import type { Resource } from '../resources/object-meta.ts';
import { realTimers, systemClock, type Timers } from '../runtime/timers.ts';
import { matchesLabels, parseLabelSelector } from './label-selector.ts';
import {
  checkKind, checkName, checkWrite, decodeObject, encodeObject, parseResourceVersion, prepareCreate,
  prepareDelete, prepareStatusUpdate, prepareUpdate, type WriteDecision,
} from './object-rules.ts';
import {
  StoreError, type DeleteOptions, type LeaseInfo, type ListOptions, type ListResult, type ResourceStore,
  type Watch, type WatchEvent, type WatchEventType, type WatchOptions,
} from './resource-store.ts';
import { WatchChannel } from './watch-channel.ts';
import { systemHostClock, type HostClock } from './host-clock.ts';

export interface SqliteStoreOptions {
  /** Directory holding store.sqlite (created if missing). */
  readonly dataDir: string;
  readonly clock?: Clock;
  /** What leases expire by (default: this host's monotonic clock; see host-clock.ts). */
  readonly hostClock?: HostClock;
  readonly timers?: Timers;
  /**
   * How often watchers look for writes made by other processes. SQLite has no cross-process
   * notification; reading one counter row costs a few microseconds, so a short interval buys low
   * watch latency cheaply. Writes made through this instance are delivered at once, unpolled.
   */
  readonly pollIntervalMs?: number;
  /** Events kept for watchers to resume from (default limits.storeEventRetentionCount). */
  readonly eventRetentionCount?: number;
  /** How long a write waits for another process's transaction before failing 'unavailable'. */
  readonly busyTimeoutMs?: number;
  readonly newUid?: () => string;
}

export const defaultPollIntervalMs = 20;
const pollBatchMax = 1000;

interface ObjectRow { rv: number; data: string }
interface EventRow { rv: number; kind: string; type: WatchEventType; data: string }
/**
 * expires_ms is on the host clock of boot boot_id. Rows written before leases moved off the wall
 * clock have boot_id '' and expire by the wall clock, as they did.
 */
interface LeaseRow { holder: string; ttl_ms: number; expires_ms: number; boot_id: string }

interface WriteTarget {
  readonly kind: string;
  readonly name: string;
  /** The stored text before this write: what a DELETED event carries. */
  readonly previousData?: string;
}

interface Watcher {
  readonly kind: string;
  readonly channel: WatchChannel;
  /** The last revision this watcher has been given (or skipped past). */
  after: number;
}


export class SqliteStore implements ResourceStore {
  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly hostClock: HostClock;
  private readonly timers: Timers;
  private readonly pollIntervalMs: number;
  private readonly retention: number;
  private readonly newUid: () => string;
  private readonly watchers = new Set<Watcher>();
  private cancelPoll: (() => void) | undefined;
  private pollQueued = false;
  private closed = false;

  constructor(options: SqliteStoreOptions) {
    this.clock = options.clock ?? systemClock;
    this.hostClock = options.hostClock ?? systemHostClock();
    this.timers = options.timers ?? realTimers;
    this.pollIntervalMs = options.pollIntervalMs ?? defaultPollIntervalMs;
    this.retention = options.eventRetentionCount ?? storeEventRetentionCount;
    this.newUid = options.newUid ?? randomUUID;
    mkdirSync(options.dataDir, { recursive: true });
    this.db = new Database(join(options.dataDir, 'store.sqlite'));
    this.db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    this.db.pragma('journal_mode = WAL');
    // FULL: a commit survives power loss, not only a crash of the process (WAL's NORMAL does not).
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = OFF');
    this.db.transaction(() => {
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
        CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, name TEXT NOT NULL, rv INTEGER NOT NULL,
          data TEXT NOT NULL, PRIMARY KEY (kind, name)) STRICT;
        CREATE TABLE IF NOT EXISTS events (rv INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
          type TEXT NOT NULL, data TEXT NOT NULL) STRICT;
        CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, ttl_ms INTEGER NOT NULL,
          expires_ms INTEGER NOT NULL) STRICT;
        INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0), ('compacted', 0), ('format', 1);
      `);
      const columns = this.db.prepare('SELECT name FROM pragma_table_info(\'leases\')').all() as { name: string }[];
      if (!columns.some((c) => c.name === 'boot_id')) this.db.exec(`ALTER TABLE leases ADD COLUMN boot_id TEXT NOT NULL DEFAULT ''`);
    }).immediate();
  }

  private revision(): number {
    return (this.db.prepare(`SELECT value FROM meta WHERE key = 'revision'`).get() as { value: number }).value;
  }

  /** The lowest revision whose event is still in the log; a watch must start at or after it. */
  private compactedRevision(): number {
    return (this.db.prepare(`SELECT value FROM meta WHERE key = 'compacted'`).get() as { value: number }).value;
  }

  private guard<T>(what: string, fn: () => T): T {
    if (this.closed) throw new StoreError('closed', `${what}: the store is closed`);
    try {
      return fn();
    } catch (error) {
      if (error instanceof Database.SqliteError && (error.code === 'SQLITE_BUSY' || error.code === 'SQLITE_LOCKED')) {
        throw new StoreError('unavailable', `${what}: the database stayed locked by another process`, { cause: error });
      }
      throw error;
    }
  }

  get(kind: string, name: string): Promise<Resource> {
    return Promise.resolve().then(() => {
      checkKind(kind);
      checkName(kind, name);
      const row = this.guard('get', () => this.readRow(kind, name));
      if (row === undefined) throw new StoreError('not_found', `${kind} ${name} not found`);
      return decodeObject(row.data, row.rv);
    });
  }

  private readRow(kind: string, name: string): ObjectRow | undefined {
    return this.db.prepare('SELECT rv, data FROM objects WHERE kind = ? AND name = ?').get(kind, name) as ObjectRow | undefined;
  }

  list(kind: string, options: ListOptions = {}): Promise<ListResult> {
    return Promise.resolve().then(() => {
      checkKind(kind);
      const selector = parseLabelSelector(options.labelSelector ?? '');
      // One read transaction: the rows and the revision come from the same snapshot.
      const { rows, revision } = this.guard('list', () => this.db.transaction(() => ({
        rows: this.db.prepare('SELECT rv, data FROM objects WHERE kind = ? ORDER BY name').all(kind) as ObjectRow[],
        revision: this.revision(),
      }))());
      const items = rows.map((r) => decodeObject(r.data, r.rv)).filter((o) => matchesLabels(selector, o.metadata.labels));
      return { items, resourceVersion: String(revision) };
    });
  }

  /** Apply one decision at the next revision; the caller holds the write transaction. */
  private apply(target: WriteTarget, decision: WriteDecision, eventType: WatchEventType): Resource | undefined {
    if (decision.action === 'none') return undefined;
    const { kind, name } = target;
    const rv = this.revision() + 1;
    const data = encodeObject(decision.object);
    if (decision.action === 'put') {
      this.db.prepare('INSERT INTO objects (kind, name, rv, data) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (kind, name) DO UPDATE SET rv = excluded.rv, data = excluded.data').run(kind, name, rv, data);
    } else {
      this.db.prepare('DELETE FROM objects WHERE kind = ? AND name = ?').run(kind, name);
    }
    // As in Kubernetes (and etcd's prev_kv), a DELETED event carries the last stored state.
    const type = decision.action === 'remove' ? 'DELETED' : eventType;
    const eventData = decision.action === 'remove' ? (target.previousData ?? data) : data;
    this.db.prepare('INSERT INTO events (rv, kind, name, type, data) VALUES (?, ?, ?, ?, ?)').run(rv, kind, name, type, eventData);
    this.db.prepare(`UPDATE meta SET value = ? WHERE key = 'revision'`).run(rv);
    // Bounded retention: drop the oldest events in the same transaction (cheap: the key is rv).
    const keepFrom = rv - this.retention + 1;
    if (keepFrom > this.compactedRevision()) this.compactTo(keepFrom);
    return decodeObject(data, rv);
  }

  private compactTo(keepFrom: number): void {
    this.db.prepare('DELETE FROM events WHERE rv < ?').run(keepFrom);
    this.db.prepare(`UPDATE meta SET value = ? WHERE key = 'compacted'`).run(keepFrom);
  }

  private write<T>(what: string, fn: () => T): Promise<T> {
    return Promise.resolve().then(() => {
      const result = this.guard(what, () => this.db.transaction(fn).immediate());
      this.queuePoll();
      return result;
    });
  }

  create(object: Resource): Promise<Resource> {
    return this.write('create', () => {
      const stored = prepareCreate(object, { uid: this.newUid(), nowMs: this.clock.nowMs() });
      const { kind, metadata: { name } } = stored;
      if (this.readRow(kind, name) !== undefined) throw new StoreError('already_exists', `${kind} ${name} already exists`);
      const created = this.apply({ kind, name }, { action: 'put', object: stored }, 'ADDED');
      if (created === undefined) throw new StoreError('invalid', 'create wrote nothing');
      return created;
    });
  }

  private writeExisting(
    op: string,
    value: Resource,
    decide: (stored: Resource, incoming: Resource) => WriteDecision,
  ): Promise<Resource> {
    return this.write(op, () => {
      const { object, expectedVersion } = checkWrite(value, op);
      const { kind, metadata: { name } } = object;
      const row = this.readRow(kind, name);
      if (row === undefined) throw new StoreError('not_found', `${op}: ${kind} ${name} not found`);
      if (row.rv !== expectedVersion) {
        throw new StoreError('conflict', `${op}: ${kind} ${name} is at version ${row.rv}, not ${expectedVersion}`);
      }
      const stored = decodeObject(row.data, row.rv);
      const decision = decide(stored, object);
      return this.apply({ kind, name, previousData: row.data }, decision, 'MODIFIED') ?? stored;
    });
  }

  update(object: Resource): Promise<Resource> {
    return this.writeExisting('update', object, prepareUpdate);
  }

  updateStatus(object: Resource): Promise<Resource> {
    return this.writeExisting('updateStatus', object, prepareStatusUpdate);
  }

  delete(kind: string, name: string, options: DeleteOptions = {}): Promise<Resource> {
    return this.write('delete', () => {
      checkKind(kind);
      checkName(kind, name);
      const row = this.readRow(kind, name);
      if (row === undefined) throw new StoreError('not_found', `delete: ${kind} ${name} not found`);
      if (options.resourceVersion !== undefined && parseResourceVersion(options.resourceVersion) !== row.rv) {
        throw new StoreError('conflict', `delete: ${kind} ${name} is at version ${row.rv}, not ${options.resourceVersion}`);
      }
      const stored = decodeObject(row.data, row.rv);
      const decision = prepareDelete(stored, this.clock.nowMs());
      return this.apply({ kind, name, previousData: row.data }, decision, 'MODIFIED') ?? stored;
    });
  }

  /** Discard the event history before `resourceVersion` (watches from older versions get 'gone'). */
  compact(resourceVersion: string): Promise<void> {
    return this.write('compact', () => {
      const keepFrom = Math.min(parseResourceVersion(resourceVersion), this.revision());
      if (keepFrom > this.compactedRevision()) this.compactTo(keepFrom);
    });
  }

  watch(kind: string, options: WatchOptions = {}): Watch {
    checkKind(kind);
    const watcher: Watcher = {
      kind,
      after: 0,
      channel: new WatchChannel(() => {
        this.watchers.delete(watcher);
        if (this.watchers.size === 0) this.stopPolling();
      }, options.signal),
    };
    watcher.after = options.resourceVersion === undefined
      ? this.guard('watch', () => this.revision())
      : parseResourceVersion(options.resourceVersion);
    if (watcher.channel.done) return watcher.channel;
    this.watchers.add(watcher);
    this.queuePoll();
    return watcher.channel;
  }

  private queuePoll(): void {
    if (this.pollQueued || this.watchers.size === 0 || this.closed) return;
    this.pollQueued = true;
    queueMicrotask(() => {
      this.pollQueued = false;
      this.poll();
    });
  }

  private stopPolling(): void {
    this.cancelPoll?.();
    this.cancelPoll = undefined;
  }

  /**
   * Deliver every logged event newer than each watcher's position, then poll again after the
   * interval. An idle poll is one primary-key read of the revision counter.
   */
  private poll(): void {
    this.stopPolling();
    if (this.closed || this.watchers.size === 0) return;
    try {
      for (;;) {
        const from = Math.min(...[...this.watchers].map((w) => w.after));
        const { events, compacted, revision } = this.db.transaction(() => {
          const revisionNow = this.revision();
          if (revisionNow <= from) return { events: [] as EventRow[], compacted: 0, revision: revisionNow };
          return {
            events: this.db.prepare('SELECT rv, kind, type, data FROM events WHERE rv > ? ORDER BY rv LIMIT ?')
              .all(from, pollBatchMax) as EventRow[],
            compacted: this.compactedRevision(),
            revision: revisionNow,
          };
        })();
        for (const watcher of this.watchers) {
          if (watcher.after + 1 < compacted) {
            watcher.channel.fail(new StoreError('gone', `Watch of ${watcher.kind} from version ${watcher.after} is too old: history starts at ${compacted}; relist`));
            continue;
          }
          for (const event of events) {
            if (event.rv <= watcher.after) continue;
            watcher.after = event.rv;
            if (event.kind === watcher.kind) watcher.channel.push({ type: event.type, object: decodeObject(event.data, event.rv) } satisfies WatchEvent);
          }
        }
        const last = events.at(-1)?.rv ?? revision;
        if (events.length < pollBatchMax || last >= revision) {
          for (const watcher of this.watchers) watcher.after = Math.max(watcher.after, Math.min(last, revision));
          break;
        }
      }
    } catch (error) {
      // A locked database is transient: the next poll retries. Anything else ends the watches.
      if (!(error instanceof Database.SqliteError && (error.code === 'SQLITE_BUSY' || error.code === 'SQLITE_LOCKED'))) {
        for (const watcher of this.watchers) watcher.channel.fail(error instanceof Error ? error : new Error(String(error)));
        return;
      }
    }
    if (this.watchers.size > 0) this.cancelPoll = this.timers.after(this.pollIntervalMs, () => this.poll());
  }

  acquireLease(name: string, holder: string, ttlMs: number): Promise<LeaseInfo> {
    return this.write('acquireLease', () => {
      checkLease(name, holder, ttlMs);
      const row = this.db.prepare('SELECT holder, ttl_ms, expires_ms, boot_id FROM leases WHERE name = ?').get(name) as LeaseRow | undefined;
      const left = row === undefined ? 0 : this.leaseMsLeft(row);
      if (row !== undefined && row.holder !== holder && left > 0) {
        throw new StoreError('lease_held', `Lease ${name} is held by ${row.holder} for ${left} ms more`);
      }
      this.db.prepare('INSERT INTO leases (name, holder, ttl_ms, expires_ms, boot_id) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, ttl_ms = excluded.ttl_ms, expires_ms = excluded.expires_ms, boot_id = excluded.boot_id')
        .run(name, holder, ttlMs, this.hostClock.monotonicMs() + ttlMs, this.hostClock.bootId);
      return { name, holder, ttlMs };
    });
  }

  releaseLease(name: string, holder: string): Promise<void> {
    return this.write('releaseLease', () => {
      checkLease(name, holder, leaseTtlMinMs);
      this.db.prepare('DELETE FROM leases WHERE name = ? AND holder = ?').run(name, holder);
    });
  }

  getLease(name: string): Promise<LeaseInfo | null> {
    return Promise.resolve().then(() => {
      checkName('Lease', name);
      const row = this.guard('getLease', () => this.db.prepare('SELECT holder, ttl_ms, expires_ms, boot_id FROM leases WHERE name = ?').get(name)) as LeaseRow | undefined;
      if (row === undefined || this.leaseMsLeft(row) <= 0) return null;
      return { name, holder: row.holder, ttlMs: row.ttl_ms };
    });
  }

  /** Milliseconds until the lease expires (≤ 0: expired). One from an earlier boot has. */
  private leaseMsLeft(row: LeaseRow): number {
    if (row.boot_id === '') return row.expires_ms - this.clock.nowMs();
    if (row.boot_id !== this.hostClock.bootId) return 0;
    return row.expires_ms - this.hostClock.monotonicMs();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    for (const watcher of [...this.watchers]) watcher.channel.fail(new StoreError('closed', 'The store was closed'));
    this.stopPolling();
    this.closed = true;
    this.db.close();
    return Promise.resolve();
  }
}

export function checkLease(name: string, holder: string, ttlMs: number): void {
  checkName('Lease', name);
  checkName('Lease holder', holder);
  if (!Number.isInteger(ttlMs) || ttlMs < leaseTtlMinMs || ttlMs > leaseTtlMaxMs) {
    throw new StoreError('invalid', `Lease TTL ${ttlMs} ms is outside ${leaseTtlMinMs}..${leaseTtlMaxMs} ms`);
  }
}
