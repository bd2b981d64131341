// A replica that missed an expansion is rebuilt at the volume's new size (scenario S25 seed 2: it
// crashed at expand:head-extended, reopened at the old size, and its rebuild failed with
// "layer_extents: range 0+16777216 ends past the volume size 8388608"). Real replica stores on
// memory files, one process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/lib/clock.ts';
import { Engine } from '../../src/engine/engine.ts';
import { rebuildReplica } from '../../src/engine/rebuild.ts';
import { MemoryReplicaFiles } from '../../src/replica/memory-replica-files.ts';
import { createReplicaStore } from '../../src/replica/layered-store.ts';
import { StoreReplicaLink } from '../harness/store-replica-link.ts';

const oldSize = 4 * 1024 * 1024;
const newSize = 8 * 1024 * 1024;

async function makeLink(name: string, clock: ManualClock, sizeBytes: number): Promise<StoreReplicaLink> {
  const store = await createReplicaStore({ dir: `/${name}`, files: new MemoryReplicaFiles(), clock, volumeName: 'vol', sizeBytes });
  return new StoreReplicaLink(name, store);
}

test('a replica smaller than the volume is expanded before it joins, then rebuilt; a larger one is refused', async () => {
  const clock = new ManualClock();
  const links = await Promise.all(['r0', 'r1'].map((n) => makeLink(n, clock, oldSize)));
  const log: string[] = [];
  const engine = new Engine({ volumeName: 'vol', sizeBytes: oldSize, epoch: 1, generation: 1, members: links, clock, log: (m) => log.push(m) });
  await engine.write(0, new Uint8Array(4096).fill(1));
  await engine.snapshot({ name: 'before', kind: 'user' });
  await engine.expand(newSize);
  const pastOldEnd = new Uint8Array(8192).fill(7);
  await engine.write(newSize - 8192, pastOldEnd);
  await engine.snapshot({ name: 'after', kind: 'user' });

  const behind = await makeLink('r2', clock, oldSize);
  const progress = await rebuildReplica({ engine, target: behind, clock, log: (m) => log.push(m), joinName: 'rebuild-1' });
  assert.equal(progress.state, 'done', progress.error ?? '');
  assert.equal(behind.store.chain().sizeBytes, newSize);
  assert.equal(engine.modeOf('r2'), 'rw');
  assert.deepEqual(await behind.read(newSize - 8192, 8192), pastOldEnd);
  assert.deepEqual(await behind.read(0, 4096), new Uint8Array(4096).fill(1));
  assert.ok(log.some((m) => /expanded it from 4194304 to 8388608 bytes first/.test(m)), log.join('\n'));

  const ahead = await makeLink('r3', clock, 2 * newSize);
  await assert.rejects(rebuildReplica({ engine, target: ahead, clock, log: (m) => log.push(m), joinName: 'rebuild-2' }), /larger than the volume/);
  assert.equal(ahead.store.chain().sizeBytes, 2 * newSize);
  assert.equal(engine.chainBusy, null);
});
