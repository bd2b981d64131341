// Per-chunk checksums of the head (checksums(null, …)): what the engine compares after an unclean
// stop (src/engine/start-repair.ts). They follow the head as it is written, cover only the head's
// own content (not older layers), hash the same content the same way however it was written, and
// equal the checksums of the sealed layer the head becomes at the next snapshot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ManualClock } from '../lib/clock.ts';
import { checksumChunkSizeBytes } from '../lib/limits.ts';
import { MemoryReplicaFiles } from './memory-replica-files.ts';
import { createReplicaStore } from './layered-store.ts';

const clock = new ManualClock();
const sizeBytes = 4 * checksumChunkSizeBytes;
const whole = { offsetBytes: 0, lengthBytes: sizeBytes };
const empty = createHash('sha256').digest('hex');

function store(dir: string) {
  return createReplicaStore({ dir, files: new MemoryReplicaFiles(), clock, volumeName: 'vol', sizeBytes });
}

test('head checksums follow writes and trims, ignore older layers, and equal the sealed layer after a snapshot', async () => {
  const a = await store('/a');
  await a.write(0, new Uint8Array(65536).fill(1));
  await a.snapshot({ name: 's0', kind: 'user' });
  assert.deepEqual((await a.checksums(null, whole)).map((c) => c.digest), [empty, empty, empty, empty], 'a new head holds nothing');
  await a.write(2 * checksumChunkSizeBytes + 8192, new Uint8Array(8192).fill(2));
  await a.trim(4096, 4096);
  const head = await a.checksums(null, whole);
  assert.deepEqual(head.map((c) => c.offsetBytes), [0, 1, 2, 3].map((i) => i * checksumChunkSizeBytes));
  assert.notEqual(head[0]!.digest, empty, 'a trim is head content');
  assert.equal(head[1]!.digest, empty);
  assert.notEqual(head[2]!.digest, empty);
  // Asking for one chunk gives that chunk's digest.
  const one = await a.checksums(null, { offsetBytes: 2 * checksumChunkSizeBytes, lengthBytes: 4096 });
  assert.deepEqual(one, [head[2]]);
  await a.write(2 * checksumChunkSizeBytes + 8192, new Uint8Array(4096).fill(3));
  assert.notEqual((await a.checksums(null, whole))[2]!.digest, head[2]!.digest, 'a new write changes the digest');
  const before = await a.checksums(null, whole);
  await a.snapshot({ name: 's1', kind: 'user' });
  assert.deepEqual(await a.checksums('s1', whole), before, 'the sealed layer hashes as the head did');
  await a.close();
});

test('the same head content hashes the same however it was written', async () => {
  const a = await store('/a');
  const b = await store('/b');
  const data = new Uint8Array(3 * 4096).map((_, i) => i % 251);
  await a.write(4096, data);
  for (let i = 2; i >= 0; i--) await b.write(4096 + i * 4096, data.subarray(i * 4096, (i + 1) * 4096));
  await b.flush();
  assert.deepEqual(await a.checksums(null, whole), await b.checksums(null, whole));
  await Promise.all([a.close(), b.close()]);
});
