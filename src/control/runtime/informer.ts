// An informer keeps a local cache of one kind: list, then watch from the list's version, apply
// each event, resume from the last version seen when the watch breaks, and relist when the store
// answers 'gone'. A relist is diffed against the cache, so handlers see every change exactly as
// synthetic ADDED / MODIFIED / DELETED events and nothing is silently dropped.
import { AssertionError } from '../../lib/assert.ts';
import { toError } from '../../lib/errors.ts';
import { reconcileBackoffBaseMs } from '../../lib/limits.ts';
import type { Resource } from '../resources/object-meta.ts';
import { isStoreError, type ResourceStore, type Watch, type WatchEventType } from '../store/resource-store.ts';
import { sameJson } from '../store/object-rules.ts';
import type { Timers } from './timers.ts';

export interface InformerEvent {
  readonly type: WatchEventType;
  readonly object: Resource;
  /** The cached object before a MODIFIED or DELETED. */
  readonly old?: Resource;
}

export type InformerHandler = (event: InformerEvent) => void;

export interface InformerOptions {
  readonly timers: Timers;
  /** Told about failures the informer recovers from (watch lost, store unreachable). */
  readonly onError?: (error: Error) => void;
  /** Longest wait between attempts to reach an unavailable store (default 5 s). */
  readonly retryMaxMs?: number;
}

export class Informer {
  readonly kind: string;
  private readonly store: ResourceStore;
  private readonly timers: Timers;
  private readonly onError: (error: Error) => void;
  private readonly retryMaxMs: number;
  private readonly cache = new Map<string, Resource>();
  private readonly handlers: InformerHandler[] = [];
  private version: string | undefined;
  private watch: Watch | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private cancelDelay: (() => void) | undefined;
  private wakeDelay: (() => void) | undefined;
  private synced = false;
  private readonly syncWaiters: (() => void)[] = [];
  /** How many times the informer had to relist after 'gone' (for tests and metrics). */
  relists = 0;

  constructor(store: ResourceStore, kind: string, options: InformerOptions) {
    this.store = store;
    this.kind = kind;
    this.timers = options.timers;
    this.onError = options.onError ?? ((): void => undefined);
    this.retryMaxMs = options.retryMaxMs ?? 5000;
  }

  addHandler(handler: InformerHandler): void {
    this.handlers.push(handler);
  }

  get(name: string): Resource | undefined {
    return this.cache.get(name);
  }

  list(): Resource[] {
    return [...this.cache.values()];
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** The last resourceVersion the cache reflects. */
  get resourceVersion(): string | undefined {
    return this.version;
  }

  start(): void {
    if (this.running !== undefined) throw new AssertionError(`informer for ${this.kind} started twice`);
    this.running = this.run();
  }

  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watch?.close();
    this.cancelDelay?.();
    this.wakeDelay?.();
    for (const waiter of this.syncWaiters.splice(0)) waiter();
    await this.running;
  }

  private emit(event: InformerEvent): void {
    for (const handler of this.handlers) handler(event);
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeDelay = resolve;
      this.cancelDelay = this.timers.after(ms, resolve);
    });
  }

  private async run(): Promise<void> {
    let failures = 0;
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        failures = 0;
        await this.follow();
      } catch (error) {
        if (this.stopped) break;
        if (error instanceof AssertionError) throw error;
        if (isStoreError(error, 'closed')) {
          this.onError(toError(error));
          break;
        }
        if (isStoreError(error, 'gone')) {
          // Too far behind for the store's history: start over from a fresh list, at once.
          this.relists++;
          needList = true;
          continue;
        }
        this.onError(toError(error));
        failures++;
        await this.delay(Math.min(this.retryMaxMs, reconcileBackoffBaseMs * 2 ** Math.min(failures, 20)));
      }
    }
  }

  private async relist(): Promise<void> {
    const listed = await this.store.list(this.kind);
    if (this.stopped) return;
    const seen = new Set<string>();
    for (const object of listed.items) {
      const name = object.metadata.name;
      seen.add(name);
      const old = this.cache.get(name);
      this.cache.set(name, object);
      if (old === undefined) this.emit({ type: 'ADDED', object });
      else if (!sameJson(old, object)) this.emit({ type: 'MODIFIED', object, old });
    }
    for (const [name, old] of [...this.cache]) {
      if (seen.has(name)) continue;
      this.cache.delete(name);
      this.emit({ type: 'DELETED', object: old, old });
    }
    this.version = listed.resourceVersion;
    if (!this.synced) {
      this.synced = true;
      for (const waiter of this.syncWaiters.splice(0)) waiter();
    }
  }

  private async follow(): Promise<void> {
    const watch = this.store.watch(this.kind, this.version === undefined ? {} : { resourceVersion: this.version });
    this.watch = watch;
    try {
      for await (const event of watch) {
        const name = event.object.metadata.name;
        const old = this.cache.get(name);
        if (event.type === 'DELETED') {
          this.cache.delete(name);
          this.emit({ type: 'DELETED', object: event.object, ...(old === undefined ? {} : { old }) });
        } else {
          this.cache.set(name, event.object);
          this.emit(old === undefined ? { type: 'ADDED', object: event.object } : { type: 'MODIFIED', object: event.object, old });
        }
        this.version = event.object.metadata.resourceVersion ?? this.version;
      }
    } finally {
      watch.close();
      this.watch = undefined;
    }
  }
}
