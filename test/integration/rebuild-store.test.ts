// Rebuild through the engine over real replica stores (memory files, one process): a fresh
// replica and a returning one, with aligned, unaligned, trim and snapshot traffic aimed at
// not-yet-copied regions while the copy runs, and a source that dies mid-copy. Afterwards every
// replica reads the same and every sealed layer has the same per-chunk checksums.
// SEED=n replays a run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ManualClock } from '../../src/lib/clock.ts';
import { SeededRandom } from '../../src/lib/random.ts';
import { Engine } from '../../src/engine/engine.ts';
import { allChecksums, rebuildReplica } from '../../src/engine/rebuild.ts';
import { scrubVolume, snapshotTree } from '../../src/engine/volume-chain.ts';
import { MemoryReplicaFiles } from '../../src/replica/memory-replica-files.ts';
import { createReplicaStore } from '../../src/replica/layered-store.ts';
import { StoreReplicaLink } from '../harness/store-replica-link.ts';

const sizeBytes = 24 * 1024 * 1024;
const seed = Number(process.env['SEED'] ?? Date.now() % 100000);
console.log(`rebuild-store: SEED=${seed}`);

async function makeLink(name: string, clock: ManualClock): Promise<StoreReplicaLink> {
  const store = await createReplicaStore({ dir: `/${name}`, files: new MemoryReplicaFiles(), clock, volumeName: 'vol', sizeBytes });
  return new StoreReplicaLink(name, store);
}

async function hashOf(link: StoreReplicaLink): Promise<string> {
  const hash = createHash('sha256');
  for (let at = 0; at < sizeBytes; at += 4 * 1024 * 1024) hash.update(await link.read(at, 4 * 1024 * 1024));
  return hash.digest('hex');
}

async function assertIdentical(links: readonly StoreReplicaLink[]): Promise<void> {
  const hashes = await Promise.all(links.map((l) => hashOf(l)));
  assert.equal(new Set(hashes).size, 1, `replicas differ: ${hashes.join(' ')} (SEED=${seed})`);
  const chains = links.map((l) => l.store.chain());
  for (const s of chains[0]!.snapshots) {
    const sums = await Promise.all(links.map(async (l) => JSON.stringify(await allChecksums(l, s.name, sizeBytes))));
    assert.equal(new Set(sums).size, 1, `layer ${s.name} differs (SEED=${seed})`);
  }
}

async function randomTraffic(engine: Engine, random: SeededRandom, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const at = random.int((sizeBytes - 512 * 1024) / 512) * 512;
    const pick = random.int(10);
    if (pick < 4) await engine.write(at, random.fill(new Uint8Array(512 * (1 + random.int(16)))));
    else if (pick < 6) await engine.write(at - (at % 4096), random.fill(new Uint8Array(4096 * (1 + random.int(64)))));
    else if (pick < 8) await engine.trim(at, 4096 * (1 + random.int(32)));
    else await engine.writeZeroes(at, 512 * (1 + random.int(20)));
  }
}

test('rebuild of a fresh and of a returning replica under unaligned writes, trims and snapshots', async () => {
  const clock = new ManualClock();
  const random = new SeededRandom(seed);
  const links = await Promise.all(['r0', 'r1', 'r2'].map((n) => makeLink(n, clock)));
  const log: string[] = [];
  const engine = new Engine({ volumeName: 'vol', sizeBytes, epoch: 1, generation: 1, members: links, clock, log: (m) => log.push(m) });
  for (const l of links) await l.setMembership({ generation: 1, members: links.map((x) => x.address) });
  for (let i = 0; i < 3; i++) {
    await randomTraffic(engine, random, 60);
    await engine.snapshot({ name: `s${i}`, kind: 'user' });
  }
  await randomTraffic(engine, random, 40);

  // A fresh replica, with traffic and a snapshot racing the copy.
  const fresh = await makeLink('r3', clock);
  const snapshotDuringCopy: Promise<void>[] = [];
  const traffic: Promise<void>[] = [];
  const progress = await rebuildReplica({
    engine,
    target: fresh,
    clock,
    log: (m) => log.push(m),
    joinName: 'rebuild-1',
    onProgress: (p) => {
      if (p.doneBytes > 0 && traffic.length < 6) traffic.push(randomTraffic(engine, random, 10));
      if (snapshotDuringCopy.length === 0 && p.doneBytes > p.totalBytes / 2) snapshotDuringCopy.push(engine.snapshot({ name: 'during', kind: 'user' }));
    },
  });
  await Promise.all(traffic);
  await Promise.all(snapshotDuringCopy);
  assert.equal(progress.state, 'done');
  assert.ok(progress.totalBytes > 0 && progress.doneBytes === progress.totalBytes, JSON.stringify(progress));
  assert.equal(engine.modeOf('r3'), 'rw');
  await engine.flush();
  await assertIdentical([...links, fresh]);

  // A returning replica: r1 leaves, writes go on (in whole chunks here), r1 comes back.
  await engine.failReplica('r1', new Error('test: r1 leaves'));
  const r1 = links[1]!;
  const changedBytes = 4 * 1024 * 1024;
  await engine.write(8 * 1024 * 1024, random.fill(new Uint8Array(changedBytes)));
  const back = await rebuildReplica({ engine, target: r1, clock, log: (m) => log.push(m), joinName: 'rebuild-2' });
  assert.equal(back.state, 'done');
  console.log(`returning replica: ${back.doneBytes} bytes sent for ${changedBytes} changed, ${back.skippedBytes} matched`);
  assert.ok(back.doneBytes <= 1.2 * changedBytes, `sent ${back.doneBytes} for ${changedBytes} changed`);
  await assertIdentical([links[0]!, r1, links[2]!, fresh]);
  const tree = snapshotTree('r0', links[0]!.store.chain());
  assert.deepEqual(tree.snapshots.map((s) => s.name), ['s0', 's1', 's2', 'rebuild-1', 'during', 'rebuild-2']);
  const scrub = await scrubVolume(engine, { markErr: false });
  assert.equal(scrub.mismatches.length, 0);
  assert.equal(scrub.layersChecked, 6);
});

test('rebuild retries from another source when the source dies mid-copy, and fails cleanly when none is left', async () => {
  const clock = new ManualClock();
  const random = new SeededRandom(seed + 1);
  const links = await Promise.all(['a', 'b', 'c'].map((n) => makeLink(n, clock)));
  const engine = new Engine({ volumeName: 'vol', sizeBytes, epoch: 1, generation: 1, members: links, clock, log: () => {} });
  await engine.write(0, random.fill(new Uint8Array(16 * 1024 * 1024)));
  await engine.snapshot({ name: 'base', kind: 'user' });
  const target = await makeLink('d', clock);
  // The first source ('a', the read source) dies at ~50 %.
  const readLayer = links[0]!.readLayer.bind(links[0]);
  let reads = 0;
  links[0]!.readLayer = (...args) => (++reads > 2 ? Promise.reject(new Error('source died')) : readLayer(...args));
  const progress = await rebuildReplica({ engine, target, clock, log: () => {}, joinName: 'rb' });
  assert.equal(progress.state, 'done');
  assert.equal(progress.source, 'b');
  assert.equal(engine.modeOf('a'), 'err');
  await assertIdentical([links[1]!, links[2]!, target]);

  // Every other source dies: the rebuild fails and the target goes to err, the volume keeps working.
  const target2 = await makeLink('e', clock);
  links[1]!.readLayer = () => Promise.reject(new Error('b died'));
  links[2]!.layerExtents = () => Promise.reject(new Error('c refuses'));
  target.readLayer = () => Promise.reject(new Error('d died'));
  const logs: string[] = [];
  const outcome = await rebuildReplica({ engine, target: target2, clock, log: (m) => logs.push(m), joinName: 'rb2' }).then(
    (p) => `resolved ${JSON.stringify(p)}`,
    (error: unknown) => `rejected ${String(error)}`,
  );
  assert.match(outcome, /^rejected/, logs.join('\n'));
  assert.equal(engine.modeOf('e'), 'err');
  assert.equal(engine.chainBusy, null);
});
