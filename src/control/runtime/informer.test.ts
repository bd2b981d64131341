import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../lib/clock.ts';
import type { Resource } from '../resources/object-meta.ts';
import { SqliteStore } from '../store/sqlite-store.ts';
import { Informer, type InformerEvent } from './informer.ts';
import { ManualTimers, realTimers } from './timers.ts';
import { waitUntil } from './testing/wait-until.ts';

const volume = (name: string, spec: unknown = {}): Resource => ({ apiVersion: 'shorthorn.io/v1', kind: 'Volume', metadata: { name }, spec });

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'shorthorn-informer-'));
}

test('informer lists, then follows the watch into its cache', async () => {
  const dir = tempDir();
  const store = new SqliteStore({ dataDir: dir, pollIntervalMs: 5 });
  const informer = new Informer(store, 'Volume', { timers: realTimers });
  const events: string[] = [];
  informer.addHandler((e: InformerEvent) => events.push(`${e.type} ${e.object.metadata.name}`));
  try {
    const a = await store.create(volume('a'));
    await store.create(volume('b'));
    informer.start();
    await informer.waitForSync();
    assert.deepEqual(informer.list().map((o) => o.metadata.name).sort(), ['a', 'b']);
    await store.update({ ...a, spec: { size: 2 } });
    await store.delete('Volume', 'b');
    await store.create(volume('c'));
    await waitUntil('the cache to follow', () => events.length === 5);
    assert.deepEqual(events, ['ADDED a', 'ADDED b', 'MODIFIED a', 'DELETED b', 'ADDED c']);
    assert.deepEqual(informer.get('a')?.spec, { size: 2 });
    assert.equal(informer.get('b'), undefined);
  } finally {
    await informer.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('informer relists after its history was compacted away, and reports the difference', async () => {
  const dir = tempDir();
  // The informer's store polls only when we say, so another instance can write and compact
  // behind its back: its next poll finds its position gone.
  const pollTimers = new ManualTimers(new ManualClock());
  const reader = new SqliteStore({ dataDir: dir, timers: pollTimers, pollIntervalMs: 10 });
  const writer = new SqliteStore({ dataDir: dir });
  const informer = new Informer(reader, 'Volume', { timers: realTimers });
  const events: string[] = [];
  informer.addHandler((e) => events.push(`${e.type} ${e.object.metadata.name}`));
  try {
    await writer.create(volume('keep'));
    const change = await writer.create(volume('change'));
    await writer.create(volume('drop'));
    informer.start();
    await informer.waitForSync();
    events.length = 0;
    await writer.delete('Volume', 'drop');
    const changed = await writer.update({ ...change, spec: { size: 9 } });
    const added = await writer.create(volume('new'));
    await writer.compact(added.metadata.resourceVersion ?? '');
    await waitUntil('a relist', () => informer.relists === 1 && events.length === 3, { step: () => pollTimers.advance(10) });
    assert.deepEqual(events.sort(), ['ADDED new', 'DELETED drop', 'MODIFIED change']);
    assert.deepEqual(informer.list().map((o) => o.metadata.name).sort(), ['change', 'keep', 'new']);
    assert.deepEqual(informer.get('change'), changed);
    assert.equal(informer.resourceVersion, added.metadata.resourceVersion);
  } finally {
    await informer.stop();
    await reader.close();
    await writer.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
