import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { IoError } from '../lib/errors.ts';
import { SeededRandom } from '../lib/random.ts';
import { Engine } from './engine.ts';
import { MemoryReplicaLink } from './testing/memory-replica-link.ts';

const sizeBytes = 1024 * 1024;

function setup(count: number, options: { minimumWriteReplicas?: number } = {}) {
  const links = Array.from({ length: count }, (_, i) => new MemoryReplicaLink(`r${i}`, sizeBytes));
  const log: string[] = [];
  const engine = new Engine({
    volumeName: 'vol',
    sizeBytes,
    epoch: 1,
    generation: 1,
    members: links,
    clock: new ManualClock(),
    log: (m) => log.push(m),
    ...options,
  });
  return { links, engine, log };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

test('Engine.write() reaches every replica and read() returns it', async () => {
  const { links, engine } = setup(3);
  const data = new Uint8Array(8192).fill(7);
  await engine.write(4096, data);
  for (const link of links) assert.deepEqual(link.data.subarray(4096, 12288), data);
  assert.deepEqual(await engine.read(4096, 8192), data);
});

test('Engine.write() merges partial blocks with what the replicas hold', async () => {
  const { links, engine } = setup(2);
  await engine.write(0, new Uint8Array(8192).fill(1));
  await engine.write(4000, new Uint8Array(200).fill(2));
  const expected = new Uint8Array(8192).fill(1);
  expected.fill(2, 4000, 4200);
  for (const link of links) assert.deepEqual(link.data.subarray(0, 8192), expected);
  // Replicas only ever saw whole-block writes.
  assert.ok(links[0]!.ops.includes('read'));
});

test('Engine: concurrent overlapping unaligned writes apply in arrival order on every replica', async () => {
  const seed = Number(process.env['SEED'] ?? 0) || Date.now() % 100000;
  const random = new SeededRandom(seed);
  const { links, engine } = setup(3);
  const model = new Uint8Array(sizeBytes);
  const pending: Promise<void>[] = [];
  for (let i = 0; i < 400; i++) {
    const offset = random.int(64 * 1024);
    const length = 1 + random.int(9000);
    const kind = random.int(10);
    if (kind === 0) {
      pending.push(engine.writeZeroes(offset, length));
      model.fill(0, offset, offset + length);
    } else {
      const data = random.fill(new Uint8Array(length));
      pending.push(engine.write(offset, data));
      model.set(data, offset);
    }
  }
  await Promise.all(pending);
  for (const link of links) {
    assert.deepEqual(link.data, model, `replica ${link.address} differs from the model (SEED=${seed})`);
  }
});

test('Engine: a failed replica leaves the write set and the survivors record a new generation first', async () => {
  const { links, engine } = setup(3);
  links[1]!.broken = 'connection reset';
  const gate = deferred();
  const originalSet = links[0]!.setMembership.bind(links[0]);
  links[0]!.setMembership = async (m) => {
    await gate.promise;
    return originalSet(m);
  };
  let acknowledged = false;
  const write = engine.write(0, new Uint8Array(4096).fill(9)).then(() => {
    acknowledged = true;
  });
  // Let every microtask run: the write must still wait for the membership record on r0.
  await new Promise((r) => setImmediate(r));
  assert.equal(acknowledged, false, 'write acknowledged before the new generation was recorded');
  gate.resolve();
  await write;
  const status = engine.status();
  assert.deepEqual(status.replicas.map((r) => r.mode), ['rw', 'err', 'rw']);
  assert.equal(status.generation, 2);
  for (const survivor of [links[0]!, links[2]!]) {
    assert.equal(survivor.generation, 2);
    assert.deepEqual(survivor.members, ['r0', 'r2']);
  }
  assert.equal(links[1]!.generation, 0);
});

test('Engine: writes fail when every replica fails', async () => {
  const { links, engine } = setup(2);
  for (const link of links) link.broken = 'gone';
  await assert.rejects(engine.write(0, new Uint8Array(4096)), (e: unknown) => e instanceof IoError && e.code === 'io');
});

test('Engine: minimumWriteReplicas refuses to acknowledge with fewer rw replicas', async () => {
  const { links, engine } = setup(2, { minimumWriteReplicas: 2 });
  links[0]!.broken = 'gone';
  await assert.rejects(engine.write(0, new Uint8Array(4096)), /fewer than the minimum 2/);
});

test('Engine.read() fails over when the read source fails', async () => {
  const { links, engine } = setup(3);
  await engine.write(0, new Uint8Array(4096).fill(5));
  links[0]!.broken = 'disk error';
  assert.deepEqual(await engine.read(0, 4096), new Uint8Array(4096).fill(5));
  assert.equal(engine.status().replicas[0]?.mode, 'err');
});

test('Engine.flush() drops a replica whose flush fails and reaches the others', async () => {
  const { links, engine } = setup(2);
  links[1]!.beforeOp = (op) => {
    if (op === 'flush') links[1]!.broken = 'fsync failed';
  };
  await engine.flush();
  assert.deepEqual(engine.status().replicas.map((r) => r.mode), ['rw', 'err']);
  assert.ok(links[0]!.ops.includes('flush'));
});

test('Engine.snapshot() waits for in-flight writes and holds new ones', async () => {
  const { links, engine } = setup(2);
  const gate = deferred();
  const originalWrite = links[0]!.write.bind(links[0]);
  let held = true;
  links[0]!.write = async (offset, data) => {
    if (held) await gate.promise;
    return originalWrite(offset, data);
  };
  const first = engine.write(0, new Uint8Array(4096).fill(1));
  await new Promise((r) => setImmediate(r));
  const snap = engine.snapshot({ name: 's1', kind: 'user' });
  await new Promise((r) => setImmediate(r));
  const second = engine.write(8192, new Uint8Array(4096).fill(2));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(links[1]!.snapshots, [], 'snapshot ran before the in-flight write drained');
  held = false;
  gate.resolve();
  await Promise.all([first, snap, second]);
  for (const link of links) {
    const snapIndex = link.ops.indexOf('snapshot');
    const writes = link.ops.map((op, i) => (op === 'write' ? i : -1)).filter((i) => i >= 0);
    assert.equal(writes.length, 2);
    assert.ok(writes[0]! < snapIndex && snapIndex < writes[1]!, `order on ${link.address}: ${link.ops.join(',')}`);
  }
});

test('Engine.addReplica() joins as wo: receives writes, serves no reads, is not a member until promoted', async () => {
  const { links, engine } = setup(1);
  const fresh = new MemoryReplicaLink('r9', sizeBytes);
  await engine.addReplica(fresh);
  await engine.write(0, new Uint8Array(4096).fill(3));
  assert.deepEqual(fresh.data.subarray(0, 4096), new Uint8Array(4096).fill(3));
  assert.ok(!fresh.ops.includes('read'));
  // Recorded as outside the current generation, so no start-up can pick it before promotion.
  assert.equal(fresh.generation, 1);
  assert.deepEqual(fresh.members, []);
  await engine.promoteReplica('r9');
  assert.deepEqual(fresh.members, ['r0', 'r9']);
  assert.equal(links[0]!.generation, fresh.generation);
});

test('Engine rejects out-of-range and oversized requests with typed errors', async () => {
  const { engine } = setup(1);
  await assert.rejects(engine.read(sizeBytes - 10, 20), (e: unknown) => e instanceof IoError && e.code === 'out_of_range');
  await assert.rejects(engine.read(-1, 1), (e: unknown) => e instanceof IoError && e.code === 'invalid_argument');
  await assert.rejects(engine.expand(1000), /whole 4096-byte blocks/);
});

test('Engine.expand() grows every replica under the barrier', async () => {
  const { links, engine } = setup(2);
  await engine.expand(sizeBytes * 2);
  assert.equal(engine.sizeBytes(), sizeBytes * 2);
  for (const link of links) assert.equal(link.data.length, sizeBytes * 2);
  await engine.write(sizeBytes, new Uint8Array(4096).fill(4));
});

test('startEngine() fences with a higher epoch, records a generation, and skips stale replicas', async () => {
  const { startEngine } = await import('./engine-start.ts');
  const links = ['a', 'b', 'c'].map((a) => new MemoryReplicaLink(a, sizeBytes));
  for (const link of links) {
    link.epoch = 4;
    link.generation = 7;
    link.members = ['a', 'c'];
  }
  links[1]!.generation = 6;
  const log: string[] = [];
  const started = await startEngine({ volumeName: 'vol', sizeBytes, links, clock: new ManualClock(), log: (m) => log.push(m) });
  assert.deepEqual(started.stale, ['b']);
  assert.equal(links[0]!.epoch, 5);
  assert.equal(links[0]!.generation, 8);
  assert.deepEqual(links[2]!.members, ['a', 'c']);
  assert.equal(links[1]!.epoch, 5, 'the stale replica is fenced too (an older engine may not go on with it)');
  assert.equal(links[1]!.generation, 6, 'and otherwise left alone');
  assert.ok(log.some((m) => m.includes('stale')));
  await started.engine.write(0, new Uint8Array(4096).fill(1));
  assert.equal(links[1]!.data[0], 0);
});

test('Engine splits trims and zero ranges larger than one replica request', async () => {
  const big = 80 * 1024 * 1024;
  const links = [new MemoryReplicaLink('r0', big)];
  const engine = new Engine({ volumeName: 'vol', sizeBytes: big, epoch: 1, generation: 1, members: links, clock: new ManualClock(), log: () => undefined });
  await engine.write(big - 4096, new Uint8Array(4096).fill(1));
  await engine.trim(0, big);
  assert.equal(links[0]!.ops.filter((op) => op === 'trim').length, 3);
  assert.equal(links[0]!.data[big - 1], 0);
});

test('Engine keeps its replicas when every one of them refuses a request as malformed', async () => {
  const { links, engine } = setup(2);
  for (const link of links) {
    link.write = () => Promise.reject(Object.assign(new Error('refused'), { code: 'bad_request' }));
  }
  await assert.rejects(engine.write(0, new Uint8Array(4096)), /refused/);
  assert.deepEqual(engine.status().replicas.map((r) => r.mode), ['rw', 'rw']);
});
