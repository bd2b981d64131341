// Resource changes for the UI and scripts: one store watch per kind of interest feeds a bounded
// history (GET /v1/events) and every live stream subscriber (GET /v1/events/stream). When a
// watch must restart (history compacted, connection lost) subscribers get a RESYNC event: the
// changes in between are not replayed, so a client refetches what it shows.
import { setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { Clock } from '../lib/clock.ts';
import { toError } from '../lib/errors.ts';
import type { Resource } from '../control/resources/object-meta.ts';
import { resourceKinds, type KindName } from '../control/resources/resource-kinds.ts';
import type { Volume } from '../control/resources/volume.ts';
import { isStoreError, type ResourceStore, type WatchEventType } from '../control/store/resource-store.ts';
import { apiEventHistoryMax } from '../lib/limits.ts';
import { resourceView, volumeView, type ResourceView } from './resource-view.ts';

export interface ChangeEvent {
  /** ADDED, MODIFIED, DELETED as the store reports them; RESYNC: refetch, changes may be missing. */
  readonly type: WatchEventType | 'RESYNC';
  readonly kind: string;
  readonly name: string;
  readonly resourceVersion: string;
  readonly time: string;
  readonly object?: ResourceView;
}

export type ChangeListener = (event: ChangeEvent) => void;

/** Kinds the hub follows: what the UI shows and scripts wait on. */
export const eventKinds: readonly KindName[] = ['Volume', 'VolumeAttachment', 'Engine', 'Replica', 'Node', 'Setting', 'Snapshot', 'RecurringJob', 'Backup', 'BackupVolume', 'BackupTarget'];

const restartDelayMs = 500;

export function viewOf(resource: Resource): ResourceView {
  if (resource.kind === 'Volume') return volumeView(resource as Volume);
  const plural = (resourceKinds as Record<string, { plural: string } | undefined>)[resource.kind]?.plural ?? resource.kind.toLowerCase();
  return resourceView(plural, resource);
}

export class EventHub {
  private readonly store: ResourceStore;
  private readonly clock: Clock;
  private readonly log: (message: string) => void;
  private readonly abort = new AbortController();
  private readonly recent: ChangeEvent[] = [];
  private readonly listeners = new Set<ChangeListener>();
  private loops: Promise<void>[] = [];

  constructor(options: { store: ResourceStore; clock: Clock; log: (message: string) => void }) {
    this.store = options.store;
    this.clock = options.clock;
    this.log = options.log;
  }

  start(kinds: readonly KindName[] = eventKinds): void {
    // One watch per kind shares the signal (and a restart delay may add one more each): more
    // than node's default of 10 listeners is by design here, not a leak.
    setMaxListeners(2 * kinds.length + 10, this.abort.signal);
    this.loops = kinds.map((kind) => this.follow(kind));
  }

  history(): readonly ChangeEvent[] {
    return this.recent;
  }

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.loops);
  }

  private publish(event: ChangeEvent): void {
    this.recent.push(event);
    if (this.recent.length > apiEventHistoryMax) this.recent.splice(0, this.recent.length - apiEventHistoryMax);
    for (const listener of this.listeners) listener(event);
  }

  private now(): string {
    return new Date(this.clock.nowMs()).toISOString();
  }

  /** List, then watch from the list's version; start over after 'gone' or 'unavailable'. */
  private async follow(kind: string): Promise<void> {
    const { signal } = this.abort;
    let first = true;
    while (!signal.aborted) {
      try {
        const { resourceVersion } = await this.store.list(kind);
        if (!first) this.publish({ type: 'RESYNC', kind, name: '', resourceVersion, time: this.now() });
        first = false;
        for await (const event of this.store.watch(kind, { resourceVersion, signal })) {
          const object = event.object;
          this.publish({
            type: event.type,
            kind,
            name: object.metadata.name,
            resourceVersion: object.metadata.resourceVersion ?? '',
            time: this.now(),
            object: viewOf(object),
          });
        }
      } catch (error) {
        if (signal.aborted || isStoreError(error, 'closed')) return;
        if (!isStoreError(error, 'gone') && !isStoreError(error, 'unavailable')) {
          this.log(`watch of ${kind} failed, restarting: ${toError(error).message}`);
        }
        try {
          await delay(restartDelayMs, undefined, { signal });
        } catch (aborted) {
          if (signal.aborted) return;
          throw aborted;
        }
      }
    }
  }
}
