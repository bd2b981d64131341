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
      open: () => new SqliteStore({ dataDir, clock, pollIntervalMs: 5 }),
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
