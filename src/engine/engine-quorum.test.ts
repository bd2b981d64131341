// The engine's side of the quorum start rule (start-choice.ts, scenario S09): an engine below its
// minimum of write replicas never promotes its way back, a promotion that w of the old rw
// replicas did not record is undone, and a start gives up when an older engine moved a record
// between the start's first read and its fence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { startEngine } from './engine-start.ts';
import { MemoryReplicaLink } from './testing/memory-replica-link.ts';
import { memoryEngine, memoryEngineSizeBytes as sizeBytes } from './testing/memory-engine.ts';

const block = (fill: number): Uint8Array => new Uint8Array(4096).fill(fill);

test('below its minimum the engine acknowledges nothing and refuses to promote a joiner back up to it', async () => {
  const { links, engine } = memoryEngine(3, { minimumWriteReplicas: 2 });
  await engine.write(0, block(1));
  links[1]!.broken = 'partitioned';
  links[2]!.broken = 'partitioned';
  await assert.rejects(engine.write(0, block(2)), /1 rw replicas, fewer than the minimum 2/);
  assert.equal(links[0]!.generation, 2, 'the drop is recorded on the survivor');
  assert.deepEqual(links[0]!.members, ['r1']);
  const joiner = new MemoryReplicaLink('r9', sizeBytes);
  await engine.addReplica(joiner);
  await assert.rejects(engine.promoteReplica('r9'), /Cannot promote r9: 1 rw replicas, fewer than the minimum 2/);
  assert.equal(engine.modeOf('r9'), 'wo', 'the joiner stays a joiner');
  assert.deepEqual(joiner.members, [], 'and is recorded as no member');
  await assert.rejects(engine.write(0, block(3)), /fewer than the minimum 2/);
});

test('a promotion that fewer than w of the former rw replicas recorded is undone', async () => {
  const { links, engine, log } = memoryEngine(2, { minimumWriteReplicas: 2 });
  const joiner = new MemoryReplicaLink('r9', sizeBytes);
  await engine.addReplica(joiner);
  // r2 is cut off just as the promotion is recorded: r1 and the joiner alone would be two rw
  // replicas, enough to acknowledge, that no engine starting on r2's side could know of.
  links[1]!.beforeOp = (op) => {
    if (op === 'setMembership') links[1]!.broken = 'partitioned';
  };
  await assert.rejects(engine.promoteReplica('r9'), /Promotion of r9 undone: 1 of the 2 rw replicas recorded it, fewer than the minimum 2/);
  assert.deepEqual(engine.status().replicas.map((r) => [r.address, r.mode]), [['r1', 'rw'], ['r2', 'err'], ['r9', 'err']]);
  assert.deepEqual(links[0]!.members, ['r1'], 'the last record names r1 alone');
  assert.ok(log.some((m) => m.includes('promotion undone')));
  await assert.rejects(engine.write(0, block(4)), /fewer than the minimum 2/);
});

test('promotions with the minimum kept, or after a salvage, go on', async () => {
  const { links, engine } = memoryEngine(2, { minimumWriteReplicas: 2 });
  const joiner = new MemoryReplicaLink('r9', sizeBytes);
  await engine.addReplica(joiner);
  await engine.promoteReplica('r9');
  assert.deepEqual(links[0]!.members, ['r1', 'r2', 'r9']);
  const salvaged = memoryEngine(2, { minimumWriteReplicas: 2, promoteBelowMinimum: true });
  salvaged.links[1]!.broken = 'gone';
  await assert.rejects(salvaged.engine.write(0, block(1)), /fewer than the minimum 2/);
  const rebuilt = new MemoryReplicaLink('r8', sizeBytes);
  await salvaged.engine.addReplica(rebuilt);
  await salvaged.engine.promoteReplica('r8');
  await salvaged.engine.write(0, block(5));
  assert.deepEqual(salvaged.links[0]!.members, ['r1', 'r8']);
});

test('S09 in memory: a new engine starts on r2, r3 by quorum; the old one can no longer write to them', async () => {
  const old = memoryEngine(3, { minimumWriteReplicas: 2 });
  const [r1, r2, r3] = old.links as [MemoryReplicaLink, MemoryReplicaLink, MemoryReplicaLink];
  await old.engine.write(0, block(1));
  // The new engine's links to r1 fail (the old engine's host is cut off), to r2 and r3 they work.
  const cutR1 = new MemoryReplicaLink('r1', sizeBytes);
  cutR1.broken = 'timed out';
  const log: string[] = [];
  const started = await startEngine({ volumeName: 'vol', sizeBytes, links: [cutR1, r2, r3], clock: new ManualClock(), log: (m) => log.push(m), epoch: 5, minimumWriteReplicas: 2 });
  assert.deepEqual(started.engine.status().replicas.map((r) => r.address), ['r2', 'r3']);
  assert.ok(log.some((m) => /by quorum: 1 of 3 members missing \(r1\)/.test(m)), log.join('\n'));
  assert.deepEqual([r2.epoch, r3.epoch], [5, 5]);
  // The old engine's links are the same objects here; a real replica refuses an older epoch.
  // Model that: requests from the old engine to r2, r3 now fail.
  r2.beforeOp = (op) => {
    if (op === 'write') r2.broken = 'stale epoch 1';
  };
  r3.beforeOp = (op) => {
    if (op === 'write') r3.broken = 'stale epoch 1';
  };
  await assert.rejects(old.engine.write(0, block(9)), /fewer than the minimum 2/);
  assert.equal(r1.generation, 2);
  assert.deepEqual(r1.members, ['r1']);
  // The new engine recorded above anything the old one could still record on r1 (1 + 2 * 3).
  assert.equal(r2.generation, 8);
  assert.ok(started.engine.status().generation > r1.generation);
  // The write that failed reached r1 only; the new engine never serves it.
  // (Both of the new engine's replicas must answer: with a minimum of 2, reads need 2 that do.)
  for (const r of [r2, r3]) {
    r.broken = null;
    r.beforeOp = null;
  }
  assert.deepEqual(await started.engine.read(0, 4096), block(1));
});

test('startEngine() gives up when a chosen replica\'s record moved between its first read and the fence', async () => {
  const links = ['a', 'b', 'c'].map((address) => {
    const link = new MemoryReplicaLink(address, sizeBytes);
    link.generation = 4;
    link.members = ['a', 'b', 'c'];
    return link;
  });
  const [a, b] = links as [MemoryReplicaLink, MemoryReplicaLink];
  const cutC = new MemoryReplicaLink('c', sizeBytes);
  cutC.broken = 'timed out';
  // The old engine drops c and records generation 5 {a, b} after our read, before our fence.
  a.beforeOp = (op) => {
    if (op === 'acceptEpoch') {
      a.generation = 5;
      a.members = ['a', 'b'];
    }
  };
  await assert.rejects(
    startEngine({ volumeName: 'vol', sizeBytes, links: [a, b, cutC], clock: new ManualClock(), log: () => undefined, epoch: 7, minimumWriteReplicas: 2 }),
    /an older engine recorded a new write set before the fence \(a: generation 4 -> 5\)/,
  );
  assert.equal(b.generation, 4, 'nothing recorded');
  a.beforeOp = null;
  const again = await startEngine({ volumeName: 'vol', sizeBytes, links: [a, b, cutC], clock: new ManualClock(), log: () => undefined, epoch: 8, minimumWriteReplicas: 2 });
  assert.deepEqual(again.engine.status().replicas.map((r) => r.address), ['a'], 'generation 5 {a, b}: a holds it, b is stale');
});
