// The comparison and repair of the replicas after an unclean stop (DESIGN §2.8 rule 7) through
// startEngine, over real replica stores (memory files, one process): heads that differ where
// writes were in flight (a block on some replicas only, different data, a trim on one) are made
// equal to the read source's; reads stay on the source until then and spread after; a client
// write that arrives while a step holds its chunk is applied after the rewrite, never under it;
// and a second start finds nothing to rewrite. SEED=n replays the random data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ManualClock } from '../../src/lib/clock.ts';
import { SeededRandom } from '../../src/lib/random.ts';
import { startEngine } from '../../src/engine/engine-start.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { deleteSnapshot } from '../../src/engine/volume-chain.ts';
import { MemoryReplicaFiles } from '../../src/replica/memory-replica-files.ts';
import { createReplicaStore, openReplicaStore } from '../../src/replica/layered-store.ts';
import type { ChunkChecksum, LayerExtent } from '../../src/format/replica-chain.ts';
import { StoreReplicaLink } from '../harness/store-replica-link.ts';

const sizeBytes = 16 * 1024 * 1024;
const mib = 1024 * 1024;
const seed = Number(process.env['SEED'] ?? Date.now() % 100000);
console.log(`start-repair-store: SEED=${seed}`);

/** A store link that counts reads and can hold checksum requests at a gate. */
class WatchedLink extends StoreReplicaLink {
  reads = 0;
  gate: Promise<void> | null = null;
  checksumCalls = 0;
  /** Refuse head checksums as a replica that predates them would (bad_request). */
  old = false;
  override read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    this.reads++;
    return super.read(offsetBytes, lengthBytes);
  }
  override async checksums(snapshotName: string | null, range: LayerExtent): Promise<readonly ChunkChecksum[]> {
    this.checksumCalls++;
    if (this.gate !== null) await this.gate;
    if (this.old && snapshotName === null) throw Object.assign(new Error(`${this.address}: checksums: snapshot is not a name`), { code: 'bad_request' });
    return super.checksums(snapshotName, range);
  }
}

interface Machine {
  readonly name: string;
  readonly files: MemoryReplicaFiles;
}

const clock = new ManualClock();

async function createMachines(names: readonly string[]): Promise<Machine[]> {
  const machines = names.map((name) => ({ name, files: new MemoryReplicaFiles() }));
  for (const m of machines) {
    const store = await createReplicaStore({ dir: `/${m.name}`, files: m.files, clock, volumeName: 'vol', sizeBytes });
    await store.close();
  }
  return machines;
}

async function open(machines: readonly Machine[]): Promise<WatchedLink[]> {
  return Promise.all(machines.map(async (m) => new WatchedLink(m.name, await openReplicaStore({ dir: `/${m.name}`, files: m.files, clock }))));
}

async function start(links: readonly WatchedLink[]): Promise<Engine> {
  const log: string[] = [];
  const started = await startEngine({ volumeName: 'vol', sizeBytes, links, clock, log: (m) => log.push(m) });
  return started.engine;
}

async function flattened(link: StoreReplicaLink): Promise<Uint8Array> {
  return link.store.read(0, sizeBytes);
}

function digest(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function headSums(link: StoreReplicaLink): Promise<string> {
  return JSON.stringify(await link.store.checksums(null, { offsetBytes: 0, lengthBytes: sizeBytes }));
}

/** Replicas that agree on a sealed snapshot and on most of the head, and differ where "in-flight writes" landed on some only. */
async function divergedMachines(random: SeededRandom): Promise<Machine[]> {
  const machines = await createMachines(['r0', 'r1', 'r2']);
  const links = await open(machines);
  const engine = await start(links);
  await engine.whenStartRepairDone();
  await engine.write(0, random.fill(new Uint8Array(4 * mib)));
  await engine.snapshot({ name: 's1', kind: 'user' });
  await engine.write(2 * mib, random.fill(new Uint8Array(mib)));
  await engine.write(9 * mib, random.fill(new Uint8Array(64 * 1024)));
  await engine.flush();
  // What an engine crash leaves: writes that reached some replicas only (straight to the stores).
  const [r0, r1, r2] = links as [WatchedLink, WatchedLink, WatchedLink];
  await r1.store.write(6 * mib, random.fill(new Uint8Array(8192)));
  await r0.store.write(9 * mib + 4096, random.fill(new Uint8Array(4096)));
  await r2.store.write(9 * mib + 4096, random.fill(new Uint8Array(4096)));
  await r2.store.trim(mib, 256 * 1024);
  await r1.store.write(15 * mib, random.fill(new Uint8Array(4096)));
  await Promise.all(links.map((l) => l.store.flush()));
  await Promise.all(links.map((l) => l.store.close()));
  return machines;
}

test('after an unclean stop the replicas are compared with the read source and repaired; reads spread after', async () => {
  const random = new SeededRandom(seed);
  const machines = await divergedMachines(random);
  const links = await open(machines);
  const before = await Promise.all(links.map((l) => flattened(l)));
  assert.notEqual(digest(before[0]!), digest(before[1]!), 'the setup makes r0 and r1 differ');
  assert.notEqual(digest(before[0]!), digest(before[2]!), 'the setup makes r0 and r2 differ');
  // Hold the comparison until reads were checked: while it runs, reads go to the source only.
  let open1!: () => void;
  links[1]!.gate = new Promise((resolve) => (open1 = resolve));
  const engine = await start(links);
  assert.equal(engine.status().startRepair?.state, 'comparing');
  for (let i = 0; i < 6; i++) assert.equal(digest(await engine.read(0, sizeBytes)), digest(before[0]!), 'reads show the source (r0, first by address)');
  assert.equal(links[1]!.reads + links[2]!.reads, 0, 'no read reached another replica before the comparison');
  open1();
  links[1]!.gate = null;
  await engine.whenStartRepairDone();
  const repair = engine.status().startRepair!;
  assert.equal(repair.state, 'done', repair.error ?? '');
  assert.equal(repair.source, 'r0');
  assert.deepEqual(repair.replicas, ['r1', 'r2']);
  assert.ok(repair.chunksRepaired >= 3 && repair.chunksRepaired <= repair.chunksCompared, JSON.stringify(repair));
  // Chunks no head holds anything in are never compared (heads hold something in chunks 0, 1, 3, 4 and 7 of 8).
  assert.ok(repair.chunksCompared <= 5, JSON.stringify(repair));
  const after = await Promise.all(links.map((l) => flattened(l)));
  for (const data of after) assert.equal(digest(data), digest(before[0]!), `every replica now holds the source's data (SEED=${seed})`);
  const sums = await Promise.all(links.map((l) => headSums(l)));
  assert.equal(new Set(sums).size, 1, 'the heads are equal chunk for chunk, allocation included');
  // Now reads use every rw replica.
  for (let i = 0; i < 6; i++) await engine.read(i * 4096, 4096);
  assert.ok(links[1]!.reads > 0 && links[2]!.reads > 0, `reads spread: ${links.map((l) => l.reads).join(', ')}`);
  await engine.close();

  // A second start over the same replicas finds nothing to rewrite.
  const again = await open(machines);
  const engine2 = await start(again);
  await engine2.whenStartRepairDone();
  const second = engine2.status().startRepair!;
  assert.equal(second.state, 'done');
  assert.equal(second.chunksRepaired, 0, JSON.stringify(second));
  await engine2.close();
});

test('a client write to a chunk being compared waits for the step and lands after the rewrite, on every replica', async () => {
  const random = new SeededRandom(seed + 1);
  const machines = await divergedMachines(random);
  const links = await open(machines);
  let release!: () => void;
  links[2]!.gate = new Promise((resolve) => (release = resolve));
  const engine = await start(links);
  // Wait until the first step holds its chunks (the gated checksum request has been made).
  for (let i = 0; i < 1000 && links[2]!.checksumCalls === 0; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(links[2]!.checksumCalls > 0, 'the comparison reached r2');
  const data = random.fill(new Uint8Array(8192));
  let written = false;
  // Chunk 0 is in the first step (r2 trimmed part of it), the one held at r2's gate.
  const write = engine.write(mib + 4096, data).then(() => (written = true));
  const snapshot = engine.snapshot({ name: 'during', kind: 'user' });
  // Chain operations wait for the comparison instead of being refused.
  const deleted = deleteSnapshot(engine, 's1');
  for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(written, false, 'the write waits while the step holds its chunk');
  release();
  links[2]!.gate = null;
  await write;
  await snapshot;
  await deleted;
  await engine.whenStartRepairDone();
  assert.equal(engine.status().startRepair?.state, 'done');
  for (const link of links) assert.deepEqual(await link.store.read(mib + 4096, 8192), data, `${link.address} has the client's write`);
  const images = await Promise.all(links.map((l) => flattened(l)));
  assert.equal(new Set(images.map(digest)).size, 1, `replicas equal (SEED=${seed})`);
  await engine.close();
});

test('a replica that does not know head checksums leaves the volume as it is, reads on the source', async () => {
  const random = new SeededRandom(seed + 2);
  const machines = await divergedMachines(random);
  const links = await open(machines);
  links[2]!.old = true;
  const engine = await start(links);
  await engine.whenStartRepairDone();
  const status = engine.status();
  assert.equal(status.startRepair?.state, 'not_supported');
  assert.deepEqual(status.replicas.map((r) => r.mode), ['rw', 'rw', 'rw'], 'nobody was dropped for it');
  for (let i = 0; i < 4; i++) await engine.read(i * 4096, 4096);
  assert.equal(links[1]!.reads + links[2]!.reads, 0, 'reads stay on the source');
  await engine.close();
});
