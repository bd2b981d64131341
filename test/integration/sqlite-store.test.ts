// The store conformance suite against the embedded SQLite store, plus what only it has:
// bounded event retention and polling across instances.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManualClock } from '../../src/lib/clock.ts';
import { SqliteStore } from '../../src/control/store/sqlite-store.ts';
import { manualHostClock } from '../../src/control/store/host-clock.ts';
import { isStoreError } from '../../src/control/store/resource-store.ts';
import { storeConformance, volume, nextEvents } from '../../src/control/store/store.conformance.ts';

const childScript = fileURLToPath(new URL('../harness/store-child.js', import.meta.url));

storeConformance({
  name: 'embedded (SQLite)',
  childScript,
  leaseTtlMs: 1000,
  createBackend() {
    const dataDir = mkdtempSync(join(tmpdir(), 'shorthorn-store-'));
    const clock = new ManualClock(Date.now());
    return Promise.resolve({
      spec: { backend: 'embedded', dataDir, pollIntervalMs: 5 },
      open: () => new SqliteStore({ dataDir, clock, hostClock: manualHostClock(clock), pollIntervalMs: 5 }),
      passTime: (ms: number) => {
        clock.advance(ms);
        return Promise.resolve();
      },
      dispose: () => {
        rmSync(dataDir, { recursive: true, force: true });
        return Promise.resolve();
      },
    });
  },
});

test('embedded store: retention keeps the newest events; older watches get gone', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'shorthorn-store-'));
  const store = new SqliteStore({ dataDir, eventRetentionCount: 10, pollIntervalMs: 5 });
  try {
    let object = await store.create(volume('r'));
    const first = object.metadata.resourceVersion ?? '';
    for (let i = 0; i < 20; i++) object = await store.update({ ...object, spec: { i } });
    const old = store.watch('Volume', { resourceVersion: first });
    await assert.rejects(old[Symbol.asyncIterator]().next(), (e: unknown) => isStoreError(e, 'gone'));
    // The oldest still-retained start point works: 9 events after it remain.
    const fromRetained = String(Number(object.metadata.resourceVersion) - 9);
    const events = await nextEvents(store.watch('Volume', { resourceVersion: fromRetained })[Symbol.asyncIterator](), 9);
    assert.equal(events.at(-1)?.object.metadata.resourceVersion, object.metadata.resourceVersion);
  } finally {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('embedded store: leases run on the host monotonic clock; wall-clock steps move nothing; another boot frees them', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'shorthorn-store-'));
  const clock = new ManualClock(Date.now());
  const open = (bootId: string): SqliteStore => new SqliteStore({ dataDir, clock, hostClock: manualHostClock(clock, bootId), pollIntervalMs: 5 });
  const a = open('boot-1');
  const b = open('boot-1');
  try {
    await a.acquireLease('node-a', 'agent-a', 10_000);
    // NTP steps a day forward: the lease has 10 s of real time left, so it is still held.
    clock.jumpWall(24 * 3600_000);
    assert.equal((await b.getLease('node-a'))?.holder, 'agent-a');
    await assert.rejects(b.acquireLease('node-a', 'agent-b', 10_000), (e: unknown) => isStoreError(e, 'lease_held'));
    // A day back: the holder stops renewing, and the lease ends 10 s of real time later, not a day.
    clock.jumpWall(-2 * 24 * 3600_000);
    clock.advance(10_001);
    assert.equal(await b.getLease('node-a'), null);
    assert.equal((await b.acquireLease('node-a', 'agent-b', 10_000)).holder, 'agent-b');
    // After a reboot the monotonic clock starts again: a lease of the old boot has expired.
    const rebooted = open('boot-2');
    try {
      assert.equal(await rebooted.getLease('node-a'), null);
      assert.equal((await rebooted.acquireLease('node-a', 'agent-c', 10_000)).holder, 'agent-c');
      assert.equal(await a.getLease('node-a'), null, 'boot-1 sees boot-2\'s lease as not its own clock\'s');
    } finally {
      await rebooted.close();
    }
  } finally {
    await a.close();
    await b.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('embedded store: a lease row from before the host clock (no boot id) still expires by the wall clock', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'shorthorn-store-'));
  const clock = new ManualClock(Date.now());
  const store = new SqliteStore({ dataDir, clock, hostClock: manualHostClock(clock), pollIntervalMs: 5 });
  try {
    await store.close();
    // The table as the older release left it: no boot_id column, expiry on the wall clock.
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(join(dataDir, 'store.sqlite'));
    db.exec('DROP TABLE leases; CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, ttl_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL) STRICT');
    db.prepare('INSERT INTO leases VALUES (?, ?, ?, ?)').run('node-a', 'old-agent', 5000, clock.nowMs() + 5000);
    db.close();
    const reopened = new SqliteStore({ dataDir, clock, hostClock: manualHostClock(clock), pollIntervalMs: 5 });
    try {
      assert.equal((await reopened.getLease('node-a'))?.holder, 'old-agent');
      clock.jumpWall(5001);
      assert.equal(await reopened.getLease('node-a'), null);
      await reopened.acquireLease('node-a', 'new-agent', 5000);
      clock.jumpWall(3600_000);
      assert.equal((await reopened.getLease('node-a'))?.holder, 'new-agent', 'a row written now follows the host clock');
    } finally {
      await reopened.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
