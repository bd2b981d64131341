import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../lib/clock.ts';
import type { Resource } from '../resources/object-meta.ts';
import { SqliteStore } from '../store/sqlite-store.ts';
import type { ResourceStore } from '../store/resource-store.ts';
import { Controller, type Action, type Reconciler } from './controller.ts';
import { Informer } from './informer.ts';
import { LeaseKeeper } from './lease-keeper.ts';
import { leaseLiveness, managerLeaseName, ownerIdOf } from './ownership.ts';
import { ManualTimers, realTimers, systemClock, type Timers } from './timers.ts';
import { waitUntil } from './testing/wait-until.ts';
import { manualHostClock } from '../store/host-clock.ts';

// A toy reconciler: a Volume asks for spec.replicas Replica objects; status.readyReplicas says
// how many exist. Pure: (desired, observed) → actions.
interface Observed { readonly replicas: readonly Resource[] }

function replicaReconciler(replicas: Informer): Reconciler<Observed> {
  return {
    name: 'replicas',
    observe: (name) => ({ replicas: replicas.list().filter((r) => r.metadata.labels?.['volume'] === name) }),
    reconcile(desired, observed) {
      const actions: Action[] = [];
      const want = desired === undefined ? 0 : (desired.spec as { replicas: number }).replicas;
      const names = new Set(observed.replicas.map((r) => r.metadata.name));
      const volumeName = desired?.metadata.name ?? observed.replicas[0]?.metadata.labels?.['volume'];
      if (volumeName === undefined) return actions;
      for (let i = 0; i < want; i++) {
        const name = `${volumeName}-r${i}`;
        if (!names.has(name)) {
          actions.push({ type: 'create', object: { apiVersion: 'shorthorn.io/v1', kind: 'Replica', metadata: { name, labels: { volume: volumeName } }, spec: {} } });
        }
      }
      for (const replica of observed.replicas) {
        if (Number(replica.metadata.name.split('-r')[1]) >= want) actions.push({ type: 'delete', kind: 'Replica', name: replica.metadata.name });
      }
      const status = (desired?.status ?? {}) as Record<string, unknown>;
      if (desired !== undefined && actions.length === 0 && status['readyReplicas'] !== want) {
        actions.push({ type: 'updateStatus', object: { ...desired, status: { ...status, readyReplicas: want } } });
      }
      return actions;
    },
  };
}

interface Harness {
  readonly store: ResourceStore;
  readonly volumes: Informer;
  readonly replicas: Informer;
  readonly controller: Controller<Observed>;
  stop(): Promise<void>;
}

interface HarnessOptions {
  readonly timers?: Timers;
  readonly resyncMs?: number;
  readonly ownership?: ConstructorParameters<typeof Controller<Observed>>[0]['ownership'];
  /** Where the informers read from, if not the store the controller writes to. */
  readonly cacheStore?: ResourceStore;
}

async function startHarness(store: ResourceStore, options: HarnessOptions = {}): Promise<Harness> {
  const timers = options.timers ?? realTimers;
  const volumes = new Informer(options.cacheStore ?? store, 'Volume', { timers: realTimers });
  const replicas = new Informer(options.cacheStore ?? store, 'Replica', { timers: realTimers });
  const controller = new Controller<Observed>({
    store, primary: volumes, reconciler: replicaReconciler(replicas), clock: systemClock, timers, backoffBaseMs: 1,
    ...(options.resyncMs === undefined ? {} : { resyncMs: options.resyncMs }),
    ...(options.ownership === undefined ? {} : { ownership: options.ownership }),
  });
  controller.watchRelated(replicas, (r) => [r.metadata.labels?.['volume'] ?? ''].filter((k) => k !== ''));
  volumes.start();
  replicas.start();
  await Promise.all([volumes.waitForSync(), replicas.waitForSync()]);
  controller.start();
  return {
    store, volumes, replicas, controller,
    async stop() {
      await controller.stop();
      await volumes.stop();
      await replicas.stop();
    },
  };
}

const volume = (name: string, replicas: number): Resource => ({ apiVersion: 'shorthorn.io/v1', kind: 'Volume', metadata: { name }, spec: { replicas } });

async function converged(store: ResourceStore, name: string, want: number): Promise<boolean> {
  const replicas = (await store.list('Replica', { labelSelector: `volume=${name}` })).items.length;
  const status = (await store.get('Volume', name)).status as { readyReplicas?: number } | undefined;
  return replicas === want && status?.readyReplicas === want;
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'shorthorn-controller-'));
}

test('controller converges the world to the spec and follows changes', async () => {
  const dir = tempDir();
  const store = new SqliteStore({ dataDir: dir, pollIntervalMs: 5 });
  const harness = await startHarness(store);
  try {
    const v = await store.create(volume('v', 3));
    await waitUntil('3 replicas', () => converged(store, 'v', 3));
    await store.update({ ...(await store.get('Volume', 'v')), spec: { replicas: 1 } });
    await waitUntil('1 replica', () => converged(store, 'v', 1));
    await store.delete('Volume', v.metadata.name);
    await waitUntil('no replicas', async () => (await store.list('Replica')).items.length === 0);
    assert.equal(harness.controller.stats.failures, 0);
  } finally {
    await harness.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a conflict from a stale cache is retried with back-off until it succeeds', async () => {
  const dir = tempDir();
  // The informers read through an instance that polls only when told, and the controller writes
  // through another: after its first write, its cache is stale until we let it poll.
  const pollTimers = new ManualTimers(new ManualClock());
  const cacheStore = new SqliteStore({ dataDir: dir, timers: pollTimers, pollIntervalMs: 10 });
  const store = new SqliteStore({ dataDir: dir });
  await store.create(volume('v', 0));
  const harness = await startHarness(store, { cacheStore });
  try {
    await waitUntil('the first status write', () => converged(store, 'v', 0));
    harness.controller.queue.add('v');
    await waitUntil('conflicts', () => harness.controller.stats.failures >= 2);
    assert.ok(harness.controller.queue.failureCount('v') >= 1);
    await waitUntil('the cache to catch up and the retries to stop', () => harness.controller.queue.failureCount('v') === 0,
      { step: () => pollTimers.advance(10) });
    assert.ok(await converged(store, 'v', 0));
  } finally {
    await harness.stop();
    await cacheStore.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ownership: one manager owns an object; when its lease expires another takes over', async () => {
  const dir = tempDir();
  const clock = new ManualClock(Date.now());
  const ttlMs = 3000;
  const stores = [0, 1].map(() => new SqliteStore({ dataDir: dir, clock, hostClock: manualHostClock(clock), pollIntervalMs: 5 }));
  const leaseTimers = [0, 1].map(() => new ManualTimers(new ManualClock()));
  const resyncTimers = [0, 1].map(() => new ManualTimers(new ManualClock()));
  const ids = ['m1', 'm2'];
  const keepers = ids.map((id, i) => new LeaseKeeper(stores[i]!, { name: managerLeaseName(id), holder: id, ttlMs, timers: leaseTimers[i]! }));
  for (const keeper of keepers) assert.equal(await keeper.start(), 'held');
  const claims: string[] = [];
  const harnesses = await Promise.all(ids.map((self, i) => startHarness(stores[i]!, {
    timers: resyncTimers[i]!, resyncMs: 1000,
    ownership: { self, isLive: leaseLiveness(stores[i]!), onClaim: (name, reason) => claims.push(`${self} ${name}: ${reason}`) },
  })));
  try {
    await stores[0]!.create(volume('v', 2));
    await waitUntil('2 replicas', () => converged(stores[0]!, 'v', 2));
    const first = ownerIdOf(await stores[0]!.get('Volume', 'v'));
    assert.ok(first === 'm1' || first === 'm2');
    const owner = ids.indexOf(first);
    const survivor = 1 - owner;
    // The owner dies: its lease is no longer renewed, and its controller stops.
    await harnesses[owner]!.stop();
    clock.advance(ttlMs + 1);
    leaseTimers[survivor]!.advance(ttlMs); // the survivor renews its own lease
    assert.equal(keepers[survivor]!.state, 'held');
    await waitUntil('the survivor to renew', async () => (await stores[survivor]!.getLease(managerLeaseName(ids[survivor]!)))?.holder === ids[survivor]);
    assert.equal(await stores[survivor]!.getLease(managerLeaseName(first)), null);
    // Its periodic resync notices the dead owner and takes the volume over.
    await waitUntil('the takeover', async () => ownerIdOf(await stores[survivor]!.get('Volume', 'v')) === ids[survivor], { step: () => resyncTimers[survivor]!.advance(1000) });
    // Each ownership change is reported with its reason (the volume controller logs it).
    assert.deepEqual(claims, [`${first} v: it had no owner`, `${ids[survivor]!} v: owner ${first} is not alive (its lease expired)`]);
    await stores[survivor]!.update({ ...(await stores[survivor]!.get('Volume', 'v')), spec: { replicas: 1 } });
    await waitUntil('the new owner to reconcile', () => converged(stores[survivor]!, 'v', 1));
  } finally {
    await Promise.all(harnesses.map((h) => h.stop()));
    for (const store of stores) await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
