// An engine that meets a newer engine's epoch on any replica stops: it drops nobody, records no
// generation on the replicas not yet fenced and fails every request (scenario S29: a new engine
// that died while fencing left the old one going on with the unfenced replicas).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplicaClientError } from './replica-client.ts';
import { memoryEngine } from './testing/memory-engine.ts';

const block = (fill: number): Uint8Array => new Uint8Array(4096).fill(fill);

const stale = (address: string): ReplicaClientError =>
  new ReplicaClientError('stale_epoch', `Replica ${address}: epoch 1 is older than the accepted epoch 2`, { replicaEpoch: 2 });

test('a write refused with stale_epoch by one replica fences the engine: no new generation on the others, every later request fails', async () => {
  const { links, engine, log } = memoryEngine(3);
  await engine.write(0, block(1));
  links[0]!.refuseWith = stale('r1');
  await assert.rejects(engine.write(0, block(2)), /fenced by a newer one .*r1/);
  for (const link of links) assert.equal(link.generation, 1, `${link.address}: no membership recorded after the fence`);
  assert.deepEqual(links[1]!.ops.filter((op) => op === 'setMembership'), []);
  assert.deepEqual(engine.status().replicas.map((r) => r.mode), ['err', 'err', 'err']);
  assert.ok(log.some((m) => m.includes('fenced by a newer engine')));
  const writesBefore = links[1]!.ops.length;
  await assert.rejects(engine.write(4096, block(3)), /fenced/);
  await assert.rejects(engine.read(0, 4096), /fenced/);
  await assert.rejects(engine.flush(), /fenced/);
  assert.equal(links[1]!.ops.length, writesBefore, 'nothing more reaches the unfenced replicas');
});

test('a read refused with stale_epoch fences too, even from the last rw replica', async () => {
  const { links, engine } = memoryEngine(1);
  links[0]!.refuseWith = stale('r1');
  await assert.rejects(engine.read(0, 4096), /fenced by a newer one/);
  links[0]!.refuseWith = null;
  await assert.rejects(engine.write(0, block(1)), /fenced/, 'the fence is for good');
});

test('a membership record refused with stale_epoch fences instead of dropping the refusing replica', async () => {
  const { links, engine } = memoryEngine(3);
  // r3 dies; while the engine records {r1, r2}, r2 turns out to be fenced by a newer engine.
  links[2]!.broken = 'dead';
  links[1]!.beforeOp = (op) => {
    if (op === 'setMembership') links[1]!.refuseWith = stale('r2');
  };
  await assert.rejects(engine.write(0, block(1)), /fenced/);
  assert.deepEqual(links[0]!.members, ['r1', 'r2'], 'r1 keeps the record that names r2, never one without it');
  assert.equal(links[0]!.generation, 2);
});

test('other failures still just drop the replica (no fence)', async () => {
  const { links, engine } = memoryEngine(3);
  links[0]!.broken = 'dead';
  await engine.write(0, block(1));
  assert.deepEqual(engine.status().replicas.map((r) => r.mode), ['err', 'rw', 'rw']);
  await engine.write(4096, block(2));
});
