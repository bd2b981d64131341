// The engine's snapshot reader over real replica stores (memory files, one process): each
// snapshot of a volume under unaligned writes, trims and write-zeroes reads back as it was; the
// changed ranges cover every block that differs and no more than the layers above the base hold;
// purge and delete refuse under a pinned snapshot; the reader fails over to another replica; and
// src/backup's createBackup/restoreBackup through it give back each snapshot bit for bit.
// SEED=n replays a run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/lib/clock.ts';
import { MemoryBlockDevice } from '../../src/lib/memory-block-device.ts';
import { SeededRandom } from '../../src/lib/random.ts';
import { Engine } from '../../src/engine/engine.ts';
import { ReplicaSnapshotReader } from '../../src/engine/replica-snapshot-reader.ts';
import { deleteSnapshot, purgeSnapshots } from '../../src/engine/volume-chain.ts';
import { MemoryReplicaFiles } from '../../src/replica/memory-replica-files.ts';
import { createReplicaStore } from '../../src/replica/layered-store.ts';
import { BackupStore } from '../../src/backup/backup-store.ts';
import { createBackup } from '../../src/backup/create-backup.ts';
import { DirectoryTarget } from '../../src/backup/directory-target.ts';
import { restoreBackup } from '../../src/backup/restore-backup.ts';
import { StoreReplicaLink } from '../harness/store-replica-link.ts';

const mib = 1024 * 1024;
const backupBlock = 2 * mib;
const sizeBytes = 24 * mib;
const seed = Number(process.env['SEED'] ?? Date.now() % 100000);
console.log(`replica-snapshot-reader: SEED=${seed}`);

async function cluster(clock: ManualClock): Promise<{ engine: Engine; links: StoreReplicaLink[] }> {
  const links: StoreReplicaLink[] = [];
  for (const name of ['r0', 'r1', 'r2']) {
    const store = await createReplicaStore({ dir: `/${name}`, files: new MemoryReplicaFiles(), clock, volumeName: 'vol', sizeBytes });
    links.push(new StoreReplicaLink(name, store));
  }
  for (const l of links) await l.setMembership({ generation: 1, members: links.map((x) => x.address) });
  const engine = new Engine({ volumeName: 'vol', sizeBytes, epoch: 1, generation: 1, members: links, clock, log: () => {} });
  return { engine, links };
}

/** Writes (unaligned and whole-block), trims and write-zeroes confined to a few 2 MiB blocks. */
async function traffic(engine: Engine, random: SeededRandom, count: number, blocks: readonly number[]): Promise<void> {
  for (let i = 0; i < count; i++) {
    const base = blocks[random.int(blocks.length)]! * backupBlock;
    const at = base + random.int((backupBlock - 256 * 1024) / 512) * 512;
    const pick = random.int(10);
    if (pick < 4) await engine.write(at, random.fill(new Uint8Array(512 * (1 + random.int(64)))));
    else if (pick < 7) await engine.write(at - (at % 4096), random.fill(new Uint8Array(4096 * (1 + random.int(32)))));
    else if (pick < 9) await engine.trim(at, 4096 * (1 + random.int(16)));
    else await engine.writeZeroes(at, 512 * (1 + random.int(40)));
  }
}

async function image(source: { read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> }): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for (let at = 0; at < sizeBytes; at += backupBlock) parts.push(await source.read(at, backupBlock));
  return Buffer.concat(parts);
}

function blocksOf(ranges: readonly { offsetBytes: number; lengthBytes: number }[]): Set<number> {
  const out = new Set<number>();
  for (const r of ranges) {
    assert.equal(r.offsetBytes % backupBlock, 0);
    assert.equal(r.lengthBytes % backupBlock, 0);
    for (let at = r.offsetBytes; at < r.offsetBytes + r.lengthBytes; at += backupBlock) out.add(at / backupBlock);
  }
  return out;
}

function differingBlocks(a: Buffer, b: Buffer): Set<number> {
  const out = new Set<number>();
  for (let at = 0; at < sizeBytes; at += backupBlock) if (Buffer.compare(a.subarray(at, at + backupBlock), b.subarray(at, at + backupBlock)) !== 0) out.add(at / backupBlock);
  return out;
}

test(`each snapshot reads back as it was; changed ranges cover every changed block and only the touched ones (SEED=${seed})`, async () => {
  const clock = new ManualClock();
  const random = new SeededRandom(seed);
  const { engine } = await cluster(clock);
  const images = new Map<string, Buffer>();
  const touched = new Map<string, number[]>();
  const zero = Buffer.alloc(sizeBytes);
  for (let i = 0; i < 4; i++) {
    // Each round touches its own few 2 MiB blocks; the first round touches more.
    const blocks = i === 0 ? [0, 1, 2, 5, 6, 9, 11] : [random.int(12), random.int(12)];
    await traffic(engine, random, i === 0 ? 120 : 30, blocks);
    clock.advance(1000);
    await engine.snapshot({ name: `s${i}`, kind: 'user' });
    images.set(`s${i}`, await image(engine));
    touched.set(`s${i}`, blocks);
  }
  await traffic(engine, random, 20, [3, 4]); // the head moves on; no snapshot sees it
  for (let i = 0; i < 4; i++) {
    const name = `s${i}`;
    const reader = await ReplicaSnapshotReader.open(engine, name, { holder: 'test' });
    try {
      assert.equal(reader.sizeBytes(), sizeBytes);
      assert.ok(Buffer.compare(await image(reader), images.get(name)!) === 0, `${name} reads as it was (SEED=${seed})`);
      const full = blocksOf(await reader.changedRanges(undefined, backupBlock));
      for (const b of differingBlocks(images.get(name)!, zero)) assert.ok(full.has(b), `full backup of ${name} covers block ${b} (SEED=${seed})`);
      for (let j = 0; j < i; j++) {
        assert.equal(await reader.hasSnapshot(`s${j}`), true);
        const changed = blocksOf(await reader.changedRanges(`s${j}`, backupBlock));
        for (const b of differingBlocks(images.get(`s${j}`)!, images.get(name)!)) assert.ok(changed.has(b), `${name} since s${j} covers block ${b} (SEED=${seed})`);
        const allowed = new Set([...Array(i - j).keys()].flatMap((k) => touched.get(`s${j + 1 + k}`)!));
        for (const b of changed) assert.ok(allowed.has(b), `${name} since s${j} names block ${b}, which no layer above s${j} touched (SEED=${seed})`);
      }
      assert.equal(await reader.hasSnapshot(name), false, 'a snapshot is not its own base');
      assert.equal(await reader.hasSnapshot('nope'), false);
      await assert.rejects(reader.changedRanges('nope', backupBlock), (e: Error & { code?: string }) => e.code === 'invalid_argument');
    } finally {
      reader.close();
    }
  }
  await assert.rejects(ReplicaSnapshotReader.open(engine, 'nope', { holder: 'test' }), (e: Error & { code?: string }) => e.code === 'not_found');
  assert.deepEqual(engine.pins.list(), [], 'a failed open leaves no pin');
  await engine.close();
});

test('a pinned snapshot: delete and purge refused while it is read, allowed after; a purge running refuses the reader', async () => {
  const clock = new ManualClock();
  const random = new SeededRandom(seed + 1);
  const { engine } = await cluster(clock);
  for (let i = 0; i < 3; i++) {
    await traffic(engine, random, 20, [i, i + 4]);
    await engine.snapshot({ name: `s${i}`, kind: 'user' });
  }
  const s2 = await image(engine);
  await traffic(engine, random, 20, [2, 3]);
  const reader = await ReplicaSnapshotReader.open(engine, 's2', { holder: 'backup b-1' });
  await assert.rejects(deleteSnapshot(engine, 's2'), (e: Error & { code?: string }) => e.code === 'conflict' && /backup b-1/.test(e.message));
  await deleteSnapshot(engine, 's1'); // an ancestor may be marked …
  await assert.rejects(purgeSnapshots(engine), (e: Error & { code?: string }) => e.code === 'conflict' && /backup b-1 reads snapshot s2/.test(e.message));
  assert.equal(engine.chainBusy, null, 'a refused purge leaves the chain free');
  assert.ok(Buffer.compare(await image(reader), s2) === 0, 'the reader still reads s2');
  reader.close();
  await purgeSnapshots(engine); // … and purged once the backup is done
  const after = await ReplicaSnapshotReader.open(engine, 's2', { holder: 'test' });
  assert.ok(Buffer.compare(await image(after), s2) === 0, 's2 reads the same after s1 was coalesced into it');
  assert.deepEqual((await after.changedRanges('s0', backupBlock)).length > 0, true);
  after.close();
  engine.chainBusy = 'purge';
  await assert.rejects(ReplicaSnapshotReader.open(engine, 's2', { holder: 'test' }), (e: Error & { code?: string }) => e.code === 'conflict');
  engine.chainBusy = null;
  await engine.close();
});

test('the reader fails over to another rw replica when its replica fails, and fails when none is left', async () => {
  const clock = new ManualClock();
  const random = new SeededRandom(seed + 2);
  const { engine, links } = await cluster(clock);
  await traffic(engine, random, 60, [0, 3, 7, 10]);
  await engine.snapshot({ name: 's0', kind: 'user' });
  const expected = await image(engine);
  const reader = await ReplicaSnapshotReader.open(engine, 's0', { holder: 'test' });
  assert.equal(reader.sourceAddress, 'r0');
  links[0]!.readLayer = () => Promise.reject(new Error('r0 died'));
  assert.ok(Buffer.compare(await image(reader), expected) === 0);
  assert.equal(reader.sourceAddress, 'r1');
  for (const l of links) l.readLayer = () => Promise.reject(new Error(`${l.address} died`));
  await assert.rejects(reader.read(0, backupBlock), (e: Error & { code?: string }) => e.code === 'io' && /no rw replica left/.test(e.message));
  reader.close();
  await assert.rejects(reader.read(0, backupBlock), (e: Error & { code?: string }) => e.code === 'closed');
  await engine.close();
});

test(`createBackup and restoreBackup through the reader: full, then incremental reading one block; both restore bit for bit (SEED=${seed})`, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shorthorn-reader-'));
  try {
    const clock = new ManualClock();
    const random = new SeededRandom(seed + 3);
    const { engine } = await cluster(clock);
    await traffic(engine, random, 100, [0, 1, 2, 4, 8, 9]);
    await engine.snapshot({ name: 's1', kind: 'user' });
    const s1 = await image(engine);
    await engine.write(10 * mib + 4096, random.fill(new Uint8Array(8192)));
    await engine.snapshot({ name: 's2', kind: 'user' });
    const s2 = await image(engine);
    const store = new BackupStore(new DirectoryTarget(dir));
    const lock = { settleMs: 0 };
    const r1 = await ReplicaSnapshotReader.open(engine, 's1', { holder: 'test' });
    const full = await createBackup(store, r1, { volumeName: 'vol', backupName: 'b1', lock });
    r1.close();
    const r2 = await ReplicaSnapshotReader.open(engine, 's2', { holder: 'test' });
    const incremental = await createBackup(store, r2, { volumeName: 'vol', backupName: 'b2', lock });
    r2.close();
    assert.equal(full.mode, 'full');
    assert.equal(incremental.mode, 'incremental');
    assert.equal(incremental.blocksRead, 1, 'only the 2 MiB block at 10 MiB changed');
    assert.equal(incremental.blocksUploaded, 1);
    for (const [name, expected] of [['b1', s1], ['b2', s2]] as const) {
      const device = new MemoryBlockDevice(sizeBytes);
      await restoreBackup(store, device, { volumeName: 'vol', backupName: name, lock });
      assert.ok(Buffer.compare(await image(device), expected) === 0, `${name} restores bit for bit (SEED=${seed})`);
    }
    await engine.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
