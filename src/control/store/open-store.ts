// Opening a store from a plain, serialisable description: what the configuration (and a test's
// child process) names, turned into a ResourceStore.
import type { Clock } from '../../lib/clock.ts';
import type { Timers } from '../runtime/timers.ts';
import { EtcdStore } from './etcd-store.ts';
import { StoreError, type ResourceStore } from './resource-store.ts';
import { SqliteStore } from './sqlite-store.ts';

export type StoreSpec =
  | { readonly backend: 'embedded'; readonly dataDir: string; readonly pollIntervalMs?: number }
  | { readonly backend: 'etcd'; readonly endpoints: readonly string[]; readonly prefix?: string };

export interface StoreDependencies {
  readonly clock?: Clock;
  readonly timers?: Timers;
}

export function openStore(spec: StoreSpec, deps: StoreDependencies = {}): ResourceStore {
  switch (spec.backend) {
    case 'embedded':
      return new SqliteStore({ ...spec, ...deps });
    case 'etcd':
      return new EtcdStore({ ...spec, ...(deps.clock === undefined ? {} : { clock: deps.clock }) });
    default: {
      const unknown: unknown = (spec as { backend?: unknown }).backend;
      throw new StoreError('invalid', `Unknown store backend ${JSON.stringify(unknown)}: embedded or etcd`);
    }
  }
}
