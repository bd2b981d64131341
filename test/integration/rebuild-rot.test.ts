// A returning replica whose sealed layer rotted after its checksums were stored is not trusted by
// the rebuild: the rotten chunk is sent again (scenario S15 seed 1: the rebuild reused it because
// the receiver's stored checksum still matched the source's, and the engine then served the
// rotten bytes). Real replica stores on memory files, one process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/lib/clock.ts';
import { metadataSizeMaxBytes } from '../../src/lib/limits.ts';
import { Engine } from '../../src/engine/engine.ts';
import { allChecksums, rebuildReplica } from '../../src/engine/rebuild.ts';
import { verifyLayerData } from '../../src/engine/layer-verify.ts';
import { MemoryReplicaFiles } from '../../src/replica/memory-replica-files.ts';
import { createReplicaStore } from '../../src/replica/layered-store.ts';
import { readMeta } from '../../src/replica/replica-dir.ts';
import { StoreReplicaLink } from '../harness/store-replica-link.ts';

const sizeBytes = 4 * 1024 * 1024;

test('a rebuild re-sends a chunk of the receiver that no longer matches its own stored checksum', async () => {
  const clock = new ManualClock();
  const files = new MemoryReplicaFiles();
  const links = await Promise.all(['r0', 'r1'].map(async (n) => new StoreReplicaLink(n, await createReplicaStore({ dir: `/${n}`, files, clock, volumeName: 'vol', sizeBytes }))));
  const engine = new Engine({ volumeName: 'vol', sizeBytes, epoch: 1, generation: 1, members: links, clock, log: () => {} });
  const data = new Uint8Array(64 * 1024).map((_, i) => i % 251);
  await engine.write(1024 * 1024, data);
  await engine.snapshot({ name: 'sealed', kind: 'user' });
  // r2 joins and holds the layer, with its checksums computed and stored.
  const r2 = new StoreReplicaLink('r2', await createReplicaStore({ dir: '/r2', files, clock, volumeName: 'vol', sizeBytes }));
  assert.equal((await rebuildReplica({ engine, target: r2, clock, log: () => {}, joinName: 'rebuild-1' })).state, 'done');
  const stored = await allChecksums(r2, 'sealed', sizeBytes);
  // It leaves, and one byte of its sealed layer rots on disk.
  await engine.failReplica('r2', new Error('taken out by the test'));
  const meta = await readMeta({ files, dir: '/r2' }, metadataSizeMaxBytes);
  const dataFile = `/r2/${meta.snapshots.find((s) => s.name === 'sealed')!.dataFile}`;
  const bytes = files.peek(dataFile)!.slice();
  bytes[1024 * 1024 + 100] = bytes[1024 * 1024 + 100]! ^ 0x40;
  files.plant(dataFile, bytes);
  assert.deepEqual((await verifyLayerData({ link: r2, layer: 'sealed', sizeBytes, stored })).corruptOffsets, [0]);
  // The rebuild must not keep the rotten chunk because the stored digest still matches.
  const again = await rebuildReplica({ engine, target: r2, clock, log: () => {}, joinName: 'rebuild-2' });
  assert.equal(again.state, 'done', again.error ?? '');
  assert.deepEqual(await r2.read(1024 * 1024, data.length), data);
  const now = await allChecksums(r2, 'sealed', sizeBytes);
  assert.deepEqual((await verifyLayerData({ link: r2, layer: 'sealed', sizeBytes, stored: now })).corruptOffsets, []);
});
