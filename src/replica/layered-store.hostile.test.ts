// Hostile files on disk: truncated, corrupted and newer-format metadata, extent, journal and
// checksum files get a clear typed error (or, for a torn journal tail, the documented recovery),
// never silently wrong data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { MemoryReplicaFiles } from './memory-replica-files.ts';
import { createReplicaStore, openReplicaStore } from './layered-store.ts';
import { ReplicaError } from './replica-error.ts';
import { encodeMeta, decodeMeta } from './replica-meta.ts';

const block = 4096;
const clock = new ManualClock();

/** A replica with snapshots a (block 0 = 1s) and b (block 1 = 2s), head holding block 2 = 3s and
 * block 3 = 4s in two flushes. */
async function setup(): Promise<MemoryReplicaFiles> {
  const files = new MemoryReplicaFiles();
  const store = await createReplicaStore({ dir: '/r', files, clock, volumeName: 'vol', sizeBytes: 64 * block });
  await store.write(0, new Uint8Array(block).fill(1));
  await store.snapshot({ name: 'a', kind: 'user' });
  await store.write(block, new Uint8Array(block).fill(2));
  await store.snapshot({ name: 'b', kind: 'user' });
  await store.write(2 * block, new Uint8Array(block).fill(3));
  await store.flush();
  await store.write(3 * block, new Uint8Array(block).fill(4));
  await store.flush();
  await store.close();
  return files;
}

const open = (files: MemoryReplicaFiles): ReturnType<typeof openReplicaStore> => openReplicaStore({ dir: '/r', files, clock });

async function expectCode(files: MemoryReplicaFiles, code: string, what: string): Promise<void> {
  await assert.rejects(open(files), (error: unknown) => {
    assert.ok(error instanceof ReplicaError, `${what}: not a ReplicaError: ${String(error)}`);
    assert.equal(error.code, code, `${what}: ${error.message}`);
    return true;
  });
}

function fileOf(files: MemoryReplicaFiles, suffix: string, index = 0): string {
  const meta = decodeMeta(files.peek('/r/replica.meta')!, 'meta');
  const names = [meta.head.journalFile, ...meta.snapshots.map((s) => s.extentFile), meta.head.dataFile].filter((n) => n.endsWith(suffix));
  return `/r/${names[index]!}`;
}

function mutate(files: MemoryReplicaFiles, path: string, change: (bytes: Uint8Array) => Uint8Array): void {
  files.plant(path, change(files.peek(path)!.slice()));
}

test('openReplicaStore() refuses a directory without a replica (not_found) and create refuses a used one', async () => {
  const files = new MemoryReplicaFiles();
  await files.mkdir('/r');
  await expectCode(files, 'not_found', 'empty dir');
  const store = await createReplicaStore({ dir: '/r', files, clock, volumeName: 'vol', sizeBytes: 8 * block });
  await store.close();
  await assert.rejects(createReplicaStore({ dir: '/r', files, clock, volumeName: 'vol', sizeBytes: 8 * block }), { code: 'already_exists' });
});

test('openReplicaStore() refuses truncated, corrupted and newer metadata with typed errors', async () => {
  const files = await setup();
  const good = files.peek('/r/replica.meta')!;
  for (const length of [0, 5, 23, 24, good.length - 1]) {
    files.plant('/r/replica.meta', good.slice(0, length));
    await expectCode(files, 'corrupt', `meta truncated to ${length}`);
  }
  for (const at of [0, 9, 13, 17, 21, 30, good.length - 2]) {
    const bad = good.slice();
    bad[at]! ^= 0x40;
    files.plant('/r/replica.meta', bad);
    await expectCode(files, at === 9 ? 'unsupported_version' : 'corrupt', `meta byte ${at} flipped`);
  }
  const newer = good.slice();
  newer[8] = 2;
  files.plant('/r/replica.meta', newer);
  await expectCode(files, 'unsupported_version', 'meta version 2');
  // Checksums right, content wrong: a snapshot whose parent does not exist.
  const meta = decodeMeta(good, 'meta');
  files.plant('/r/replica.meta', encodeMeta({ ...meta, snapshots: [{ ...meta.snapshots[1]!, parent: 'zzz' }] }));
  await expectCode(files, 'corrupt', 'unknown parent');
  files.plant('/r/replica.meta', encodeMeta({ ...meta, head: { ...meta.head, dataFile: '../../etc/passwd' } }));
  await expectCode(files, 'corrupt', 'path in a file name');
  files.plant('/r/replica.meta', good);
  const store = await open(files);
  assert.equal((await store.read(3 * block, 1))[0], 4);
  await store.close();
});

test('openReplicaStore() refuses damaged extent files with typed errors', async () => {
  const files = await setup();
  const path = fileOf(files, '.extents', 0);
  const good = files.peek(path)!;
  mutate(files, path, (b) => b.subarray(0, b.length - 3));
  await expectCode(files, 'corrupt', 'extents truncated');
  mutate(files, path, () => {
    const b = good.slice();
    b[good.length - 5]! ^= 1;
    return b;
  });
  await expectCode(files, 'corrupt', 'extent entry flipped');
  mutate(files, path, () => {
    const b = good.slice();
    b[8] = 9;
    return b;
  });
  await expectCode(files, 'unsupported_version', 'extents version 9');
  files.plant(path, good);
  const store = await open(files);
  assert.equal((await store.read(0, 1))[0], 1);
  await store.close();
});

test('a torn journal tail is cut off; writes of earlier flushes survive', async () => {
  const files = await setup();
  const path = fileOf(files, '.journal');
  const good = files.peek(path)!;
  // The last record (the second flush: block 3) is torn: 7 bytes of it are gone.
  files.plant(path, good.subarray(0, good.length - 7));
  const store = await open(files);
  assert.equal((await store.read(2 * block, 1))[0], 3, 'the first flush survives');
  assert.equal((await store.read(3 * block, 1))[0], 0, 'the torn flush is gone, and nothing else shows');
  assert.ok(files.peek(path)!.length < good.length - 7, 'the torn tail was cut');
  await store.write(4 * block, new Uint8Array(block).fill(5));
  await store.close();
  const again = await open(files);
  assert.equal((await again.read(4 * block, 1))[0], 5, 'appends after the cut replay');
  await again.close();
});

test('journal damage before a valid record is corruption, not a torn tail', async () => {
  const files = await setup();
  const path = fileOf(files, '.journal');
  const good = files.peek(path)!;
  const bad = good.slice();
  bad[32 + 20]! ^= 0xff; // inside the first record's first entry
  files.plant(path, bad);
  await expectCode(files, 'corrupt', 'first journal record damaged');
  const header = good.slice();
  header[3]! ^= 1;
  files.plant(path, header);
  await expectCode(files, 'corrupt', 'journal magic');
});

test('checksums() refuses a damaged checksum file; a short data file is an error, not zeros', async () => {
  const files = await setup();
  let store = await open(files);
  const sums = await store.checksums('a', { offsetBytes: 0, lengthBytes: 64 * block });
  assert.equal(sums.length, 1);
  assert.equal(store.chain().snapshots[0]!.checksumState, 'computed');
  await store.close();
  const sumPath = `${fileOf(files, '.extents', 0)}.sum`;
  mutate(files, sumPath, (b) => {
    b[b.length - 1]! ^= 1;
    return b;
  });
  store = await open(files);
  await assert.rejects(store.checksums('a', { offsetBytes: 0, lengthBytes: block }), { code: 'corrupt' });
  await store.close();
  const meta = decodeMeta(files.peek('/r/replica.meta')!, 'meta');
  files.plant(`/r/${meta.snapshots[0]!.dataFile}`, new Uint8Array(10));
  store = await open(files);
  await assert.rejects(store.read(0, block), { code: 'corrupt' });
  await store.close();
});

test('acceptEpoch() refuses a lower epoch with stale_epoch; membership persists atomically', async () => {
  const files = await setup();
  const store = await open(files);
  await store.acceptEpoch(5);
  await assert.rejects(store.acceptEpoch(4), { code: 'stale_epoch' });
  await store.setMembership({ generation: 3, members: ['r1', 'r2'] });
  await assert.rejects(store.setMembership({ generation: 2, members: ['r1'] }), { code: 'conflict' });
  files.crash();
  const again = await open(files);
  assert.deepEqual(again.chain().membership, { epoch: 5, generation: 3, members: ['r1', 'r2'] });
  await assert.rejects(again.acceptEpoch(1), { code: 'stale_epoch' });
  await again.close();
});

test('a failed flush fails the replica for good; EIO and ENOSPC on writes are typed', async () => {
  const files = await setup();
  const store = await open(files);
  files.injectFault({ op: 'write', pathIncludes: '.data', errno: 'ENOSPC' });
  await assert.rejects(store.write(0, new Uint8Array(block)), { code: 'no_space' });
  files.injectFault({ op: 'write', pathIncludes: '.data', errno: 'EIO' });
  await assert.rejects(store.write(0, new Uint8Array(block)), { code: 'io' });
  await store.write(5 * block, new Uint8Array(block).fill(6));
  files.injectFault({ op: 'sync', pathIncludes: '.data', errno: 'EIO' });
  await assert.rejects(store.flush(), { code: 'io' });
  await assert.rejects(store.flush(), { code: 'failed' });
  await assert.rejects(store.read(0, 1), { code: 'failed' });
  await store.close();
  files.crash();
  const again = await open(files);
  assert.equal((await again.read(3 * block, 1))[0], 4, 'flushed data survives');
  await again.close();
});
