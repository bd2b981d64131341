// Unit tests of the layered store: concurrency (pipelined requests), deep chains, the file cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { SeededRandom } from '../lib/random.ts';
import { snapshotCountMax } from '../lib/limits.ts';
import { MemoryReplicaFiles } from './memory-replica-files.ts';
import { createReplicaStore, openReplicaStore } from './layered-store.ts';

const block = 4096;
const clock = new ManualClock();

test('LayeredReplicaStore.write() merges concurrent partial writes to one block (no lost update)', async () => {
  const files = new MemoryReplicaFiles();
  const store = await createReplicaStore({ dir: '/r', files, clock, volumeName: 'vol', sizeBytes: 16 * block });
  await store.write(0, new Uint8Array(block).fill(9));
  await Promise.all(Array.from({ length: 8 }, (_, i) => store.write(i * 512, new Uint8Array(512).fill(i + 1))));
  const bytes = await store.read(0, block);
  for (let i = 0; i < 8; i++) assert.ok(bytes.subarray(i * 512, (i + 1) * 512).every((b) => b === i + 1), `sector ${i}`);
  await store.close();
});

test('LayeredReplicaStore serves pipelined writes, reads, flushes and snapshots together', async () => {
  const files = new MemoryReplicaFiles();
  const random = new SeededRandom(3);
  const blocks = 256;
  const store = await createReplicaStore({ dir: '/r', files, clock, volumeName: 'vol', sizeBytes: blocks * block, openLayerFilesMax: 3 });
  const model = new Uint8Array(blocks * block);
  const ops: Promise<unknown>[] = [];
  for (let i = 0; i < blocks; i++) {
    // Each write owns its block (37 is coprime with 256), so the final state is known.
    const b = (i * 37) % blocks;
    const data = random.fill(new Uint8Array(block));
    model.set(data, b * block);
    ops.push(store.write(b * block, data));
    if (i % 50 === 25) ops.push(store.snapshot({ name: `s${i}`, kind: 'system' }));
    if (i % 20 === 10) ops.push(store.flush());
    if (i % 7 === 0) ops.push(store.read(random.int(blocks) * block, block));
  }
  await Promise.all(ops);
  assert.ok(Buffer.from(await store.read(0, blocks * block)).equals(Buffer.from(model)));
  await store.close();
  const again = await openReplicaStore({ dir: '/r', files, clock, openLayerFilesMax: 3 });
  assert.ok(Buffer.from(await again.read(0, blocks * block)).equals(Buffer.from(model)), 'after reopen');
  await again.close();
});

test(`LayeredReplicaStore holds ${snapshotCountMax} snapshots, reads through all of them with a small file cache, and refuses one more`, async () => {
  const files = new MemoryReplicaFiles();
  const store = await createReplicaStore({ dir: '/r', files, clock, volumeName: 'vol', sizeBytes: 2048 * block, openLayerFilesMax: 16 });
  for (let i = 0; i < snapshotCountMax; i++) {
    await store.write(i * block, new Uint8Array(block).fill((i % 250) + 1));
    await store.snapshot({ name: `s${i}`, kind: 'user', labels: { i: String(i) } });
  }
  await assert.rejects(store.snapshot({ name: 'one-more', kind: 'user' }), { code: 'too_many_snapshots' });
  const check = async (s: typeof store): Promise<void> => {
    const bytes = await s.read(0, snapshotCountMax * block);
    await Promise.all(Array.from({ length: 64 }, (_, k) => s.read(((k * 97) % snapshotCountMax) * block, block)));
    for (let i = 0; i < snapshotCountMax; i++) assert.equal(bytes[i * block], (i % 250) + 1, `block ${i}`);
  };
  await check(store);
  assert.equal(store.chain().snapshots.length, snapshotCountMax);
  await store.close();
  const again = await openReplicaStore({ dir: '/r', files, clock, openLayerFilesMax: 16 });
  await check(again);
  await again.close();
});

test('LayeredReplicaStore compacts a long head journal and survives a crash at each step of it', async () => {
  for (const point of [null, 'compact:written', 'compact:committed']) {
    const files = new MemoryReplicaFiles();
    const hook = { armed: null as string | null };
    const faultPoint = (name: string): void => {
      if (name === hook.armed) throw new Error(`simulated crash at ${name}`);
    };
    const options = { dir: '/r', files, clock, journalCompactBytes: 2048, faultPoint };
    const store = await createReplicaStore({ ...options, volumeName: 'vol', sizeBytes: 64 * block });
    const model = new Uint8Array(64 * block);
    const random = new SeededRandom(11);
    let crashed = false;
    for (let i = 0; i < 300 && !crashed; i++) {
      const b = random.int(64);
      const data = random.fill(new Uint8Array(block));
      await store.write(b * block, data);
      if (i === 100) hook.armed = point;
      try {
        await store.flush();
        model.set(data, b * block);
      } catch (error) {
        assert.match(String(error), /simulated crash/);
        model.set(data, b * block); // the flush itself completed before the compaction step
        crashed = true;
      }
    }
    assert.equal(crashed, point !== null, `crash at ${point ?? 'none'} happened`);
    if (!crashed) await store.close();
    files.crash({ random });
    hook.armed = null;
    const again = await openReplicaStore(options);
    assert.ok(Buffer.from(await again.read(0, 64 * block)).equals(Buffer.from(model)), `data after ${point ?? 'no crash'}`);
    const journals = (await files.list('/r')).filter((n) => n.endsWith('.journal'));
    assert.equal(journals.length, 1, `one journal: ${journals.join(',')}`);
    assert.ok(files.peek(`/r/${journals[0]!}`)!.length < 6000, 'the journal stays short (300 flush records would be 9.6 KB)');
    await again.close();
  }
});
