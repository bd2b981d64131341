// An engine started with the epoch its manager assigned (Engine spec.epoch): a higher one fences
// older engines, the same one is a restart of the same attach, a lower one means a newer engine
// has already fenced this one and the start is refused before any replica is touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { startEngine } from './engine-start.ts';
import { MemoryReplicaLink } from './testing/memory-replica-link.ts';

const sizeBytes = 1024 * 1024;

function replicasAtEpoch(epoch: number): MemoryReplicaLink[] {
  return ['a', 'b'].map((address) => {
    const link = new MemoryReplicaLink(address, sizeBytes);
    link.epoch = epoch;
    link.generation = 3;
    link.members = ['a', 'b'];
    return link;
  });
}

test('startEngine() uses the assigned epoch when it is above what the replicas have seen', async () => {
  const links = replicasAtEpoch(4);
  const started = await startEngine({ volumeName: 'vol', sizeBytes, links, clock: new ManualClock(), log: () => undefined, epoch: 9 });
  assert.deepEqual(links.map((l) => l.epoch), [9, 9]);
  assert.equal(started.engine.status().epoch, 9);
});

test('startEngine() accepts the epoch the replicas have seen: a restart of the same attach', async () => {
  const links = replicasAtEpoch(4);
  const log: string[] = [];
  const started = await startEngine({ volumeName: 'vol', sizeBytes, links, clock: new ManualClock(), log: (m) => log.push(m), epoch: 4 });
  assert.equal(started.engine.status().epoch, 4);
  assert.equal(started.engine.status().generation, 4, 'a restart still records a new generation');
  assert.ok(log.some((m) => m.includes('restart of the same attach')));
});

test('startEngine() refuses an epoch below what a replica has seen, and leaves the replicas as they were', async () => {
  const links = replicasAtEpoch(4);
  links[1]!.epoch = 6;
  await assert.rejects(
    startEngine({ volumeName: 'vol', sizeBytes, links, clock: new ManualClock(), log: () => undefined, epoch: 5 }),
    /Cannot start with epoch 5: replicas have seen epoch 6/,
  );
  assert.deepEqual(links.map((l) => [l.epoch, l.generation]), [[4, 3], [6, 3]]);
});
