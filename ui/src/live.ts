// The UI's live picture of the cluster: each collection is fetched once, then kept current from
// the API's event stream (GET /v1/events/stream, opened with the session cookie). A RESYNC event
// or a reconnect refetches, because changes may have been missed. Pages read it through
// useCollection(); they never poll for the kinds the stream carries.
import { useEffect, useState } from 'preact/hooks';
import type { ChangeEvent } from '../../src/api/event-hub.ts';
import type { ResourceView } from '../../src/api/resource-view.ts';
import { apiCall, errorText, getCollection } from './api.ts';

const eventKey = (e: ChangeEvent): string => `${e.kind}/${e.name}/${e.resourceVersion}/${e.type}`;

/** The kinds the API's event stream follows, and where their collections live. */
export const streamedKinds = {
  Volume: '/v1/volumes',
  VolumeAttachment: '/v1/volumeattachments',
  Engine: '/v1/engines',
  Replica: '/v1/replicas',
  Node: '/v1/nodes',
  Setting: '/v1/settings',
  Snapshot: '/v1/snapshots',
} as const;
export type StreamedKind = keyof typeof streamedKinds;

/** Events kept for the events page and the dashboard. */
const recentEventsMax = 300;

export type StreamState = 'connecting' | 'live' | 'reconnecting';

interface KindEntry {
  readonly items: Map<string, ResourceView>;
  loading: boolean;
  error?: string;
}

class LiveStore {
  private readonly kinds = new Map<StreamedKind, KindEntry>();
  private readonly listeners = new Set<() => void>();
  private source: EventSource | undefined;
  streamState: StreamState = 'connecting';
  recentEvents: ChangeEvent[] = [];
  historyError: string | undefined;
  /** Bumped on every change, so hooks re-render. */
  version = 0;

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    this.version++;
    for (const listener of this.listeners) listener();
  }

  start(): void {
    if (this.source !== undefined) return;
    void this.loadHistory();
    const source = new EventSource('/v1/events/stream');
    this.source = source;
    source.onopen = () => {
      const wasReconnecting = this.streamState === 'reconnecting';
      this.streamState = 'live';
      // Anything may have changed while the stream was down.
      if (wasReconnecting) for (const kind of this.kinds.keys()) void this.load(kind);
      this.changed();
    };
    source.onerror = () => {
      this.streamState = 'reconnecting';
      this.changed();
    };
    for (const type of ['ADDED', 'MODIFIED', 'DELETED', 'RESYNC'] as const) {
      source.addEventListener(type, (message: MessageEvent<string>) => this.apply(JSON.parse(message.data) as ChangeEvent));
    }
  }

  stop(): void {
    this.source?.close();
    this.source = undefined;
    this.kinds.clear();
    this.recentEvents = [];
    this.streamState = 'connecting';
  }

  /** The API's recent history (oldest first), under whatever the stream has brought meanwhile. */
  private async loadHistory(): Promise<void> {
    try {
      const history = await apiCall<{ data: ChangeEvent[] }>('GET', '/v1/events');
      const seen = new Set(this.recentEvents.map(eventKey));
      const older = history.data.filter((e) => !seen.has(eventKey(e))).reverse();
      this.recentEvents = [...this.recentEvents, ...older].slice(0, recentEventsMax);
      this.changed();
    } catch (error) {
      this.historyError = errorText(error);
      this.changed();
    }
  }

  private apply(event: ChangeEvent): void {
    if (event.type !== 'RESYNC') this.recentEvents = [event, ...this.recentEvents].slice(0, recentEventsMax);
    const kind = event.kind as StreamedKind;
    const entry = this.kinds.get(kind);
    if (entry !== undefined) {
      if (event.type === 'RESYNC' || kind === 'Setting') {
        // Settings carry their definition only in the collection's shape: refetch.
        void this.load(kind);
      } else if (event.type === 'DELETED') {
        entry.items.delete(event.name);
      } else if (event.object !== undefined) {
        entry.items.set(event.name, event.object);
      }
    }
    this.changed();
  }

  private async load(kind: StreamedKind): Promise<void> {
    let entry = this.kinds.get(kind);
    if (entry === undefined) {
      entry = { items: new Map(), loading: true };
      this.kinds.set(kind, entry);
    }
    try {
      const collection = await getCollection(streamedKinds[kind]);
      entry.items.clear();
      for (const item of collection.data) entry.items.set(item.id, item);
      delete entry.error;
    } catch (error) {
      entry.error = errorText(error);
    }
    entry.loading = false;
    this.changed();
  }

  ensure(kind: StreamedKind): KindEntry {
    const entry = this.kinds.get(kind);
    if (entry !== undefined) return entry;
    void this.load(kind);
    return this.kinds.get(kind) as KindEntry;
  }
}

export const live = new LiveStore();

/** Re-render when anything in the live store changes. */
export function useLiveVersion(): number {
  const [version, setVersion] = useState(live.version);
  useEffect(() => live.subscribe(() => setVersion(live.version)), []);
  return version;
}

export interface LiveCollection<T> {
  readonly items: readonly T[];
  readonly loading: boolean;
  readonly error: string | undefined;
}

export function useCollection<T extends ResourceView = ResourceView>(kind: StreamedKind): LiveCollection<T> {
  useLiveVersion();
  const entry = live.ensure(kind);
  const items = [...entry.items.values()].sort((a, b) => a.id.localeCompare(b.id)) as T[];
  return { items, loading: entry.loading, error: entry.error };
}
