// The one suite every ResourceStore implementation passes (STYLE.md: one interface, several
// implementations, one shared test suite). Invoked from test/integration/<backend>-store.test.ts
// with a factory for fresh, empty backends. Random tests take STORE_SEED to replay.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { SeededRandom } from '../../lib/random.ts';
import { resourceSizeMaxBytes } from '../../lib/limits.ts';
import type { Resource } from '../resources/object-meta.ts';
import type { StoreSpec } from './open-store.ts';
import { isStoreError, type ResourceStore, type StoreErrorCode, type Watch, type WatchEvent } from './resource-store.ts';

export type CompactableStore = ResourceStore & { compact(resourceVersion: string): Promise<void> };

export interface ConformanceBackend {
  /** Another independent instance on the same data (as if it were another process). */
  open(): CompactableStore;
  /** How a child process opens this backend. */
  readonly spec: StoreSpec;
  /** Let `ms` of lease time pass: advance a manual clock, or wait in real time. */
  passTime(ms: number): Promise<void>;
  dispose(): Promise<void>;
}

export interface StoreConformanceTarget {
  readonly name: string;
  /** A fresh, empty backend. */
  createBackend(): Promise<ConformanceBackend>;
  /** The compiled child-process script (test/harness/store-child.js). */
  readonly childScript: string;
  /** The shortest lease TTL the backend honours exactly (etcd: whole seconds). */
  readonly leaseTtlMs: number;
}

const kind = 'Volume';
/** Each test's limit: a hang fails that test by name instead of the whole file at the runner's 600 s. */
const testTimeoutMs = 120_000;

export function volume(name: string, spec: unknown = { size: 1 }, labels?: Record<string, string>): Resource {
  return { apiVersion: 'shorthorn.io/v1', kind, metadata: { name, ...(labels === undefined ? {} : { labels }) }, spec };
}

export async function expectCode(promise: Promise<unknown>, code: StoreErrorCode, what = ''): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isStoreError(error), `${what}: expected StoreError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, `${what}: ${error.message}`);
    return true;
  });
}

/** The next `count` events of a watch, or a failure naming what arrived before the deadline. */
export async function nextEvents(iterator: AsyncIterator<WatchEvent>, count: number, timeoutMs = 10_000): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${events.length} of ${count} events: ${JSON.stringify(events.map(brief))}`)), timeoutMs);
  });
  try {
    while (events.length < count) {
      const result = await Promise.race([iterator.next(), deadline]);
      if (result.done === true) throw new Error(`watch ended after ${events.length} of ${count} events`);
      events.push(result.value);
    }
    return events;
  } finally {
    clearTimeout(timer);
  }
}

function brief(event: WatchEvent): string {
  return `${event.type} ${event.object.metadata.name}@${event.object.metadata.resourceVersion ?? '?'}`;
}

async function waitFor(what: string, condition: () => Promise<boolean>, step: () => Promise<void>, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await step();
  }
}

/** One child process speaking the store-child line protocol. */
class StoreChild {
  readonly process: ChildProcess;
  private readonly lines: AsyncIterator<string>;
  constructor(script: string, spec: StoreSpec) {
    this.process = spawn(process.execPath, [script, JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const stdout = this.process.stdout;
    assert.ok(stdout !== null);
    this.lines = createInterface({ input: stdout })[Symbol.asyncIterator]();
  }
  async read(): Promise<Record<string, unknown>> {
    const line = await this.lines.next();
    if (line.done === true) throw new Error(`child ${this.process.pid ?? '?'} exited`);
    return JSON.parse(line.value) as Record<string, unknown>;
  }
  async request(command: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.process.stdin?.write(`${JSON.stringify(command)}\n`);
    return this.read();
  }
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.process;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (child.pid !== undefined) process.kill(child.pid, signal);
    await done;
  }
}

function seedFromEnv(): number {
  const fromEnv = process.env['STORE_SEED'];
  return fromEnv === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(fromEnv);
}

async function withSeed(name: string, body: (random: SeededRandom) => Promise<void>): Promise<void> {
  const seed = seedFromEnv();
  try {
    await body(new SeededRandom(seed));
  } catch (error) {
    throw new Error(`${name} failed with STORE_SEED=${seed} (replay: STORE_SEED=${seed} node scripts/run-tests.mjs store)`, { cause: error });
  }
}

/** Register the suite for one implementation. */
export function storeConformance(target: StoreConformanceTarget): void {
  const withStore = async (body: (store: CompactableStore, backend: ConformanceBackend) => Promise<void>): Promise<void> => {
    const backend = await target.createBackend();
    const store = backend.open();
    try {
      await body(store, backend);
    } finally {
      await store.close();
      await backend.dispose();
    }
  };

  describe(`store conformance: ${target.name}`, () => {
    test('create assigns identity and version; get and list return it', { timeout: testTimeoutMs }, () => withStore(async (store) => {
      const created = await store.create(volume('v1', { size: 10 }, { app: 'a' }));
      assert.equal(created.metadata.generation, 1);
      assert.match(created.metadata.uid ?? '', /^[0-9a-f-]{36}$/);
      assert.match(created.metadata.resourceVersion ?? '', /^[1-9][0-9]*$/);
      assert.ok(!Number.isNaN(Date.parse(created.metadata.creationTimestamp ?? '')));
      assert.deepEqual(await store.get(kind, 'v1'), created);
      const listed = await store.list(kind);
      assert.deepEqual(listed.items, [created]);
      assert.ok(Number(listed.resourceVersion) >= Number(created.metadata.resourceVersion));
      await expectCode(store.create(volume('v1')), 'already_exists');
      await expectCode(store.get(kind, 'nope'), 'not_found');
      await expectCode(store.create({ ...volume('v2'), metadata: { name: 'v2', resourceVersion: '5' } }), 'invalid');
      await expectCode(store.create({ ...volume('v2'), metadata: { name: 'v2', deletionTimestamp: 'x' } }), 'invalid');
      assert.deepEqual((await store.list('Node')).items, [], 'kinds are separate');
    }));

    test('hostile names, kinds and shapes are refused with invalid', { timeout: testTimeoutMs }, () => withStore(async (store) => {
      const names = ['../x', 'a/b', '', 'x'.repeat(300), 'UPPER', 'a b', 'a\u0000b', '.', '..', '-a', 'a-', 'é', '%2e%2e'];
      for (const name of names) {
        await expectCode(store.create(volume(name)), 'invalid', `create ${JSON.stringify(name)}`);
        await expectCode(store.get(kind, name), 'invalid', `get ${JSON.stringify(name)}`);
        await expectCode(store.delete(kind, name), 'invalid', `delete ${JSON.stringify(name)}`);
        await expectCode(store.update({ ...volume(name), metadata: { name, resourceVersion: '1' } }), 'invalid', `update ${name}`);
        await expectCode(store.acquireLease(name, 'holder', target.leaseTtlMs), 'invalid', `lease ${name}`);
        await expectCode(store.acquireLease('lease', name, target.leaseTtlMs), 'invalid', `holder ${name}`);
      }
      for (const badKind of ['', 'volume', '../Volume', 'Vol/ume', 'V'.repeat(64), '_leases']) {
        await expectCode(store.list(badKind), 'invalid', `kind ${badKind}`);
        await expectCode(store.create({ ...volume('ok'), kind: badKind }), 'invalid', `kind ${badKind}`);
        assert.throws(() => store.watch(badKind), (e: unknown) => isStoreError(e, 'invalid'));
      }
      const shapes: unknown[] = [
        null, 'x', [], {}, { apiVersion: 'shorthorn.io/v1', kind, spec: {} },
        { apiVersion: 'shorthorn.io/v1', kind, metadata: {}, spec: {} },
        { apiVersion: 'shorthorn.io/v1', kind, metadata: { name: 'ok' } },
        { kind, metadata: { name: 'ok' }, spec: {} },
        { ...volume('ok'), metadata: { name: 'ok', labels: { a: 1 } } },
        { ...volume('ok'), metadata: { name: 'ok', finalizers: 'f' } },
        { ...volume('ok'), metadata: { name: 'ok', surprise: true } },
        { ...volume('ok'), extra: 1 },
        volume('ok', { blob: 'x'.repeat(resourceSizeMaxBytes) }),
      ];
      for (const shape of shapes) {
        await expectCode(store.create(shape as Resource), 'invalid', JSON.stringify(shape)?.slice(0, 80));
      }
      await expectCode(store.list(kind, { labelSelector: 'a in (b' }), 'invalid');
      await expectCode(store.update({ ...volume('ok'), metadata: { name: 'ok', resourceVersion: '-1' } }), 'invalid');
      assert.deepEqual((await store.list(kind)).items, [], 'nothing was written');
    }));

    test('update: optimistic concurrency, generation on spec changes, status kept', { timeout: testTimeoutMs }, () => withStore(async (store) => {
      const v1 = await store.create({ ...volume('v1', { size: 1 }), status: { state: 'creating' } });
      const { resourceVersion: _unused, ...unversioned } = v1.metadata;
      await expectCode(store.update({ ...v1, metadata: unversioned }), 'invalid');
      const labelled = await store.update({ ...v1, metadata: { ...v1.metadata, labels: { a: 'b' } }, status: { state: 'ignored' } });
      assert.equal(labelled.metadata.generation, 1, 'metadata changes keep the generation');
      assert.deepEqual(labelled.status, { state: 'creating' }, 'update keeps the stored status');
      assert.ok(Number(labelled.metadata.resourceVersion) > Number(v1.metadata.resourceVersion));
      await expectCode(store.update({ ...v1, spec: { size: 2 } }), 'conflict', 'stale version');
      const grown = await store.update({ ...labelled, spec: { size: 2 } });
      assert.equal(grown.metadata.generation, 2);
      assert.equal(grown.metadata.uid, v1.metadata.uid);
      assert.equal(grown.metadata.creationTimestamp, v1.metadata.creationTimestamp);
      const same = await store.update(grown);
      assert.equal(same.metadata.resourceVersion, grown.metadata.resourceVersion, 'a no-op update writes nothing');
      await expectCode(store.update({ ...grown, metadata: { ...grown.metadata, uid: 'other' } }), 'conflict', 'uid');
      await expectCode(store.update({ ...volume('absent'), metadata: { name: 'absent', resourceVersion: '1' } }), 'not_found');

      const status = await store.updateStatus({ ...grown, spec: { size: 99 }, status: { state: 'ready' } });
      assert.deepEqual(status.spec, { size: 2 }, 'updateStatus ignores spec');
      assert.deepEqual(status.status, { state: 'ready' });
      assert.equal(status.metadata.generation, 2, 'status changes keep the generation');
      await expectCode(store.updateStatus({ ...grown, status: { state: 'x' } }), 'conflict');
      assert.deepEqual(await store.get(kind, 'v1'), status);
    }));

    test('delete honours finalizers', { timeout: testTimeoutMs }, () => withStore(async (store) => {
      const plain = await store.create(volume('plain'));
      await expectCode(store.delete(kind, 'plain', { resourceVersion: String(Number(plain.metadata.resourceVersion) + 1000) }), 'conflict');
      const gone = await store.delete(kind, 'plain', { resourceVersion: plain.metadata.resourceVersion ?? '' });
      assert.equal(gone.metadata.name, 'plain');
      await expectCode(store.get(kind, 'plain'), 'not_found');
      await expectCode(store.delete(kind, 'plain'), 'not_found');

      await store.create({ ...volume('held'), metadata: { name: 'held', finalizers: ['a', 'b'] } });
      const marked = await store.delete(kind, 'held');
      assert.ok(marked.metadata.deletionTimestamp !== undefined);
      assert.equal(marked.metadata.generation, 2);
      const again = await store.delete(kind, 'held');
      assert.equal(again.metadata.resourceVersion, marked.metadata.resourceVersion, 'a second delete changes nothing');
      await expectCode(store.update({ ...marked, metadata: { ...marked.metadata, finalizers: ['a', 'b', 'c'] } }), 'invalid');
      const { deletionTimestamp: _cleared, ...undeleted } = marked.metadata;
      const fewer = await store.update({ ...marked, metadata: { ...undeleted, finalizers: ['b'] } });
      assert.equal(fewer.metadata.deletionTimestamp, marked.metadata.deletionTimestamp, 'deletionTimestamp cannot be cleared');
      const status = await store.updateStatus({ ...fewer, status: { state: 'deleting' } });
      const removed = await store.update({ ...status, metadata: { ...status.metadata, finalizers: [] } });
      assert.ok(Number(removed.metadata.resourceVersion) > Number(status.metadata.resourceVersion));
      await expectCode(store.get(kind, 'held'), 'not_found');
      assert.deepEqual((await store.list(kind)).items, []);
    }));

    test('label selectors', { timeout: testTimeoutMs }, () => withStore(async (store) => {
      await store.create(volume('a', {}, { app: 'web', tier: 'front' }));
      await store.create(volume('b', {}, { app: 'db' }));
      await store.create(volume('c', {}));
      const names = async (labelSelector: string): Promise<string[]> =>
        (await store.list(kind, { labelSelector })).items.map((o) => o.metadata.name);
      assert.deepEqual(await names(''), ['a', 'b', 'c']);
      assert.deepEqual(await names('app=web'), ['a']);
      assert.deepEqual(await names('app!=web'), ['b', 'c']);
      assert.deepEqual(await names('app in (web,db)'), ['a', 'b']);
      assert.deepEqual(await names('app notin (web)'), ['b', 'c']);
      assert.deepEqual(await names('tier'), ['a']);
      assert.deepEqual(await names('!app'), ['c']);
      assert.deepEqual(await names('app,!tier'), ['b']);
    }));

    test('watch delivers every change in order, from a version or from now', { timeout: testTimeoutMs }, () => withStore(async (store, backend) => {
      const other = backend.open();
      try {
        const start = await store.list(kind);
        const fromStart = store.watch(kind, { resourceVersion: start.resourceVersion })[Symbol.asyncIterator]();
        const live = other.watch(kind);
        const v = await other.create({ ...volume('w'), metadata: { name: 'w', finalizers: ['f'] } });
        await other.create({ ...volume('x'), kind: 'Node' });
        const m = await other.update({ ...v, spec: { size: 5 } });
        const s = await other.updateStatus({ ...m, status: { ok: true } });
        const d = await other.delete(kind, 'w');
        const r = await other.update({ ...d, metadata: { ...d.metadata, finalizers: [] } });
        const events = await nextEvents(fromStart, 5);
        assert.deepEqual(events.map((e) => e.type), ['ADDED', 'MODIFIED', 'MODIFIED', 'MODIFIED', 'DELETED']);
        assert.deepEqual(events.map((e) => e.object.metadata.resourceVersion),
          [v, m, s, d, r].map((o) => o.metadata.resourceVersion));
        assert.deepEqual(events[2]?.object, s);
        assert.deepEqual(events[4]?.object.metadata.finalizers, ['f'], 'DELETED carries the last stored state');
        // A watch "from now" starts when the backend sets it up (etcd: asynchronously), so it may
        // begin a little after the first write; from wherever it begins it misses nothing.
        const liveIt = live[Symbol.asyncIterator]();
        const liveEvents: WatchEvent[] = [];
        while (liveEvents.at(-1)?.object.metadata.resourceVersion !== r.metadata.resourceVersion) liveEvents.push(...await nextEvents(liveIt, 1));
        assert.deepEqual(liveEvents, events.slice(events.length - liveEvents.length), 'a watch from now sees a gapless suffix');
        // History: a new watch from the first version replays what followed it.
        const replay = store.watch(kind, { resourceVersion: v.metadata.resourceVersion ?? '' });
        assert.deepEqual(await nextEvents(replay[Symbol.asyncIterator](), 4), events.slice(1));
        replay.close();
        live.close();
      } finally {
        await other.close();
      }
    }));

    test('watch stops cleanly: close, break, abort, store close', { timeout: testTimeoutMs }, () => withStore(async (store, backend) => {
      const closed = store.watch(kind);
      closed.close();
      assert.equal((await closed[Symbol.asyncIterator]().next()).done, true);
      const controller = new AbortController();
      const aborted = store.watch(kind, { signal: controller.signal });
      const pending = aborted[Symbol.asyncIterator]().next();
      controller.abort();
      assert.equal((await pending).done, true);
      // From a version, not "from now": etcd sets a watch up asynchronously, so one from now
      // may begin after the create and then wait forever (CI: the etcd suite hung 600 s).
      const broken = store.watch(kind, { resourceVersion: (await store.list(kind)).resourceVersion });
      await store.create(volume('one'));
      for await (const event of broken) {
        assert.equal(event.object.metadata.name, 'one');
        break;
      }
      const other = backend.open();
      const orphan = other.watch(kind)[Symbol.asyncIterator]();
      await other.close();
      await assert.rejects(orphan.next(), (e: unknown) => isStoreError(e, 'closed'));
    }));

    test('watch resumed from the last version seen misses and repeats nothing (seeded)', { timeout: testTimeoutMs }, () =>
      withSeed('watch resume', (random) => withStore(async (writer, backend) => {
        const reader = backend.open();
        try {
          const start = (await reader.list(kind)).resourceVersion;
          const reference = reader.watch(kind, { resourceVersion: start });
          const referenceIt = reference[Symbol.asyncIterator]();
          const writes = async (): Promise<void> => {
            for (let i = 0; i < 60; i++) {
              const name = `r${random.int(4)}`;
              try {
                const current = await writer.get(kind, name);
                const choice = random.int(4);
                if (choice === 0) await writer.delete(kind, name);
                else if (choice === 1) await writer.updateStatus({ ...current, status: { i } });
                else await writer.update({ ...current, spec: { i } });
              } catch (error) {
                if (!isStoreError(error, 'not_found')) throw error;
                await writer.create(volume(name, { i }));
              }
            }
            // The last write: both readers stop when they see it.
            await writer.create(volume('sentinel'));
          };
          const isLast = (event: WatchEvent | undefined): boolean => event?.object.metadata.name === 'sentinel';
          const resumed: WatchEvent[] = [];
          const consume = async (): Promise<void> => {
            let from = start;
            while (!isLast(resumed.at(-1))) {
              const watch: Watch = reader.watch(kind, { resourceVersion: from });
              const it = watch[Symbol.asyncIterator]();
              const want = 1 + random.int(5);
              for (let got = 0; got < want && !isLast(resumed.at(-1)); got++) {
                const [event] = await nextEvents(it, 1);
                assert.ok(event !== undefined);
                resumed.push(event);
                from = event.object.metadata.resourceVersion ?? from;
              }
              watch.close();
            }
          };
          await Promise.all([consume(), writes()]);
          const all: WatchEvent[] = [];
          while (!isLast(all.at(-1))) all.push(...await nextEvents(referenceIt, 1));
          reference.close();
          assert.deepEqual(resumed.map(brief), all.map(brief));
          // Replaying the events gives what list() says.
          const state = new Map<string, Resource>();
          for (const event of all) {
            if (event.type === 'DELETED') state.delete(event.object.metadata.name);
            else state.set(event.object.metadata.name, event.object);
          }
          const listed = await reader.list(kind);
          assert.deepEqual([...state.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)), listed.items);
        } finally {
          await reader.close();
        }
      })));

    test('compacted history answers gone; relist and watch from the list', { timeout: testTimeoutMs }, () => withStore(async (store) => {
      const first = await store.create(volume('c1'));
      let last = first;
      for (let i = 0; i < 5; i++) last = await store.update({ ...last, spec: { i } });
      await store.compact(last.metadata.resourceVersion ?? '');
      const old = store.watch(kind, { resourceVersion: first.metadata.resourceVersion ?? '' });
      await assert.rejects(old[Symbol.asyncIterator]().next(), (e: unknown) => isStoreError(e, 'gone'));
      const listed = await store.list(kind);
      assert.deepEqual(listed.items, [last]);
      const fresh = store.watch(kind, { resourceVersion: listed.resourceVersion })[Symbol.asyncIterator]();
      const next = await store.update({ ...last, spec: { i: 99 } });
      assert.deepEqual((await nextEvents(fresh, 1))[0]?.object, next);
    }));

    test('leases: one holder at a time, renewal, release, expiry', { timeout: testTimeoutMs }, () => withStore(async (store, backend) => {
      const ttl = target.leaseTtlMs;
      const other = backend.open();
      try {
        assert.equal(await store.getLease('node-a'), null);
        assert.deepEqual(await store.acquireLease('node-a', 'm1', ttl), { name: 'node-a', holder: 'm1', ttlMs: ttl });
        await expectCode(other.acquireLease('node-a', 'm2', ttl), 'lease_held');
        assert.equal((await other.acquireLease('node-a', 'm1', ttl)).holder, 'm1', 'the holder renews from anywhere');
        assert.equal((await other.getLease('node-a'))?.holder, 'm1');
        await expectCode(store.acquireLease('node-a', 'm1', 10), 'invalid', 'ttl too short');
        await other.releaseLease('node-a', 'm2');
        assert.equal((await store.getLease('node-a'))?.holder, 'm1', 'only the holder releases');
        await store.releaseLease('node-a', 'm1');
        assert.equal(await store.getLease('node-a'), null);
        await other.acquireLease('node-a', 'm2', ttl);
        await waitFor('the lease to expire', async () => (await store.getLease('node-a')) === null, () => backend.passTime(ttl / 4));
        assert.equal((await store.acquireLease('node-a', 'm1', ttl)).holder, 'm1', 'an expired lease is free');
      } finally {
        await other.close();
      }
    }));

    test('two processes writing one object: conflicts are detected, no update is lost', { timeout: testTimeoutMs }, () => withStore(async (store, backend) => {
      await store.create(volume('shared', { counter: 0 }));
      const children = [new StoreChild(target.childScript, backend.spec), new StoreChild(target.childScript, backend.spec)];
      try {
        for (const child of children) assert.deepEqual(await child.read(), { ready: true });
        const rounds = 4;
        for (let round = 0; round < rounds; round++) {
          for (const child of children) assert.equal((await child.request({ op: 'read', kind, name: 'shared' }))['ok'], true);
          const replies = await Promise.all(children.map((child) => child.request({ op: 'increment' })));
          assert.deepEqual(replies.map((r) => r['ok']).sort(), [false, true], JSON.stringify(replies));
          assert.equal(replies.find((r) => r['ok'] === false)?.['code'], 'conflict');
        }
        const loops = await Promise.all(children.map((child) => child.request({ op: 'loop', kind, name: 'shared', n: 25 })));
        for (const reply of loops) assert.equal(reply['ok'], true, JSON.stringify(reply));
        assert.deepEqual((await store.get(kind, 'shared')).spec, { counter: rounds + 50 });
      } finally {
        await Promise.all(children.map((child) => child.stop()));
      }
    }));

    test('kill -9 of a writer mid-transaction leaves no partial object (seeded)', { timeout: testTimeoutMs }, () =>
      withSeed('kill -9', (random) => withStore(async (store, backend) => {
        const child = new StoreChild(target.childScript, backend.spec);
        const from = (await store.list(kind)).resourceVersion;
        let progress = -1;
        try {
          assert.deepEqual(await child.read(), { ready: true });
          const killAfter = 5 + random.int(40);
          child.process.stdin?.write(`${JSON.stringify({ op: 'churn', kind, names: 6, payloadBytes: 256 * 1024 })}\n`);
          while (progress < killAfter) progress = Number((await child.read())['progress']);
        } finally {
          await child.stop('SIGKILL');
        }
        const reopened = backend.open();
        try {
          const listed = await reopened.list(kind);
          assert.ok(listed.items.length >= Math.min(6, progress + 1));
          for (const item of listed.items) {
            const spec = item.spec as { seq: number; payload: string; digest: string };
            assert.equal(spec.payload.length, 256 * 1024);
            assert.ok(spec.payload.startsWith(`${spec.seq}:`));
            assert.equal(createHash('sha256').update(spec.payload).digest('hex'), spec.digest, `${item.metadata.name} is whole`);
            assert.equal(item.metadata.name, `churn-${spec.seq % 6}`);
          }
          const maxSeq = Math.max(...listed.items.map((i) => (i.spec as { seq: number }).seq));
          assert.ok(maxSeq >= progress, `last write ${maxSeq} is older than the acknowledged ${progress}`);
          // The event log agrees with the objects: replaying it from before the churn gives the list.
          const watch = reopened.watch(kind, { resourceVersion: from });
          const it = watch[Symbol.asyncIterator]();
          const state = new Map<string, string>();
          while ([...state.values()].sort().join() !== listed.items.map((i) => i.metadata.resourceVersion).sort().join()) {
            const [event] = await nextEvents(it, 1);
            assert.ok(event !== undefined && event.type !== 'DELETED');
            state.set(event.object.metadata.name, event.object.metadata.resourceVersion ?? '');
          }
          watch.close();
        } finally {
          await reopened.close();
        }
      })));
  });
}
