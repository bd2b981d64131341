// Crash tests on memory files: the machine dies at seeded points (any file operation, or a named
// fault point inside snapshot, purge, revert and expand), loses unsynced writes (all of them, or a
// random subset, some torn), and the replica reopens with every flushed write, nothing fabricated,
// and each chain operation wholly done or wholly absent. Replay with SEED=n; SEEDS=k for more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../lib/random.ts';
import { ManualClock } from '../lib/clock.ts';
import { MemoryReplicaFiles } from './memory-replica-files.ts';
import { createReplicaStore, openReplicaStore, type FaultPointHook } from './layered-store.ts';
import type { ReplicaStore } from './replica-store.ts';
import { SectorModel, randomSectorRange, sectorBytes } from './testing/crash-workload.ts';
import { seedList } from './testing/replica-model.ts';

const block = 4096;

type ChainOp =
  | { kind: 'data' }
  | { kind: 'snapshot'; name: string }
  | { kind: 'markRemoved'; name: string }
  | { kind: 'purge' }
  | { kind: 'revert'; name: string }
  | { kind: 'expand'; sizeBytes: number };

interface Harness {
  random: SeededRandom;
  memory: MemoryReplicaFiles;
  clock: ManualClock;
  model: SectorModel;
  store: ReplicaStore;
  counter: number;
  /** Name of the fault point that throws (a simulated crash), if any. */
  armed: string | null;
  /** The operation running (or that ran last). */
  inFlight: ChainOp;
}

const faultPoint =
  (h: { armed: string | null }): FaultPointHook =>
  (name) => {
    if (name === h.armed) throw new Error(`simulated crash at ${name}`);
  };

async function newHarness(seed: number): Promise<Harness> {
  const random = new SeededRandom(seed);
  const memory = new MemoryReplicaFiles();
  const clock = new ManualClock();
  const model = new SectorModel((16 + random.int(48)) * block);
  const h = { random, memory, clock, model, counter: 0, armed: null, inFlight: { kind: 'data' } } as unknown as Harness;
  h.store = await createReplicaStore({ dir: '/r', files: memory, clock, volumeName: 'vol', sizeBytes: model.sectors * sectorBytes, faultPoint: faultPoint(h) });
  return h;
}

/** One random operation; the model is updated for what the operation promises once it returns. */
async function randomOp(h: Harness): Promise<ChainOp> {
  const { random, model, store } = h;
  const chain = store.chain();
  const live = chain.snapshots.filter((s) => !s.removed).map((s) => s.name);
  const roll = random.int(100);
  h.inFlight = { kind: 'data' };
  if (roll < 45) {
    const [first, count] = randomSectorRange(random, model.sectors);
    await store.write(first * sectorBytes, model.write(first, count));
  } else if (roll < 55) {
    const [first, count] = randomSectorRange(random, model.sectors);
    model.zero(first, count);
    await (random.next() < 0.5 ? store.trim(first * sectorBytes, count * sectorBytes) : store.writeZeroes(first * sectorBytes, count * sectorBytes));
  } else if (roll < 65) {
    await store.flush();
    model.flushed();
  } else if (roll < 77 && chain.snapshots.length < 30) {
    const op = { kind: 'snapshot', name: `s${++h.counter}` } as const;
    await store.snapshot({ name: op.name, kind: 'user' });
    model.snapshot(op.name);
    return op;
  } else if (roll < 84 && live.length > 0) {
    const op = { kind: 'markRemoved', name: random.pick(live) } as const;
    await store.markRemoved(op.name);
    return op;
  } else if (roll < 90) {
    await store.purge();
    return { kind: 'purge' };
  } else if (roll < 96 && live.length > 0) {
    const op = { kind: 'revert', name: random.pick(live) } as const;
    h.inFlight = op;
    await store.revert(op.name);
    model.reverted(op.name);
    return op;
  } else if (model.sectors * sectorBytes < 256 * block) {
    const op = { kind: 'expand', sizeBytes: model.sectors * sectorBytes + (1 + random.int(8)) * block } as const;
    await store.expand(op.sizeBytes);
    model.flushed();
    model.expanded(op.sizeBytes);
    return op;
  }
  return { kind: 'data' };
}

async function reopenAfterCrash(h: Harness): Promise<ReplicaStore> {
  h.armed = null;
  if (h.random.next() < 0.5) h.memory.crash();
  else h.memory.crash({ random: h.random });
  return openReplicaStore({ dir: '/r', files: h.memory, clock: h.clock, faultPoint: faultPoint(h) });
}

/** Check the reopened replica against the state before the interrupted op (and, for chain ops, after it). */
async function checkAfterCrash(h: Harness, before: { names: Map<string, boolean>; headParent: string | null; sizeBytes: number }, where: string): Promise<void> {
  const chain = h.store.chain();
  const names = new Map(chain.snapshots.map((s) => [s.name, s.removed]));
  const added = [...names.keys()].filter((n) => !before.names.has(n));
  const gone = [...before.names.keys()].filter((n) => !names.has(n));
  assert.ok(added.length <= 1, `${where}: more than one snapshot appeared: ${added.join(',')}`);
  for (const n of gone) assert.equal(before.names.get(n), true, `${where}: snapshot ${n} vanished but was not marked removed`);
  if (added.length === 1) {
    // A committed snapshot flushed first: it holds everything written before it.
    assert.equal(chain.headParent, added[0], `${where}: a new snapshot is not under the head`);
    h.model.snapshot(added[0]!);
  }
  if (chain.sizeBytes !== before.sizeBytes) {
    assert.ok(chain.sizeBytes > before.sizeBytes, `${where}: size shrank`);
    h.model.expanded(chain.sizeBytes);
  }
  // A committed revert shows the target's image wholly; otherwise the old head's durable state.
  const revertedTo = h.inFlight.kind === 'revert' && chain.headParent === h.inFlight.name ? h.inFlight.name : null;
  if (revertedTo !== null && h.model.images.has(revertedTo) && (await h.model.matchesImage(h.store, h.model.images.get(revertedTo)!))) {
    h.model.reverted(revertedTo);
    return;
  }
  await h.model.expectPlausible(h.store, where);
}

function chainState(store: ReplicaStore): { names: Map<string, boolean>; headParent: string | null; sizeBytes: number } {
  const chain = store.chain();
  return { names: new Map(chain.snapshots.map((s) => [s.name, s.removed])), headParent: chain.headParent, sizeBytes: chain.sizeBytes };
}

test('LayeredReplicaStore survives a crash at any seeded file operation', async () => {
  for (const seed of seedList(5000, 60)) {
    const h = await newHarness(seed);
    try {
      for (let i = 0, n = 3 + h.random.int(40); i < n; i++) await randomOp(h);
      assert.ok(await h.model.matchesImage(h.store, h.model.current), 'before the crash the store equals the model');
      h.memory.haltAfter(h.random.int(60));
      let before = chainState(h.store);
      for (let i = 0; i < 200; i++) {
        before = chainState(h.store);
        try {
          await randomOp(h);
        } catch (error) {
          if (!(error instanceof Error)) throw error;
          break;
        }
      }
      h.store = await reopenAfterCrash(h);
      await checkAfterCrash(h, before, `seed ${seed}`);
      // The reopened replica works: adopt what it shows, then run more operations and check them.
      await h.model.adopt(h.store);
      for (let i = 0; i < 10; i++) await randomOp(h);
      assert.ok(await h.model.matchesImage(h.store, h.model.current), 'after reopening the store equals the model');
      await h.store.close();
    } catch (error) {
      console.error(`crash test failed: SEED=${seed}`);
      throw error;
    }
  }
});

const faultPoints = [
  'snapshot:flushed',
  'snapshot:extents-written',
  'snapshot:head-created',
  'snapshot:committed',
  'purge:extents-written',
  'purge:intent-recorded',
  'purge:copied',
  'purge:committed',
  'purge:deleted',
  'revert:head-created',
  'revert:committed',
  'expand:head-extended',
  'expand:committed',
];

/** Writes over most of the volume, some flushed, some not. */
async function scribble(h: Harness, ops: number): Promise<void> {
  for (let i = 0; i < ops; i++) {
    const [first, count] = randomSectorRange(h.random, h.model.sectors);
    if (h.random.next() < 0.2) {
      h.model.zero(first, count);
      await h.store.trim(first * sectorBytes, count * sectorBytes);
    } else {
      await h.store.write(first * sectorBytes, h.model.write(first, count));
    }
  }
}

test('LayeredReplicaStore operations are wholly done or wholly absent after a crash at each fault point', async () => {
  for (const point of faultPoints) {
    for (const seed of seedList(7000, 4)) {
      const h = await newHarness(seed);
      const where = `${point}, seed ${seed}`;
      try {
        for (const name of ['a', 'b', 'c']) {
          await scribble(h, 12);
          await h.store.snapshot({ name, kind: 'user' });
          h.model.snapshot(name);
        }
        await scribble(h, 12);
        await h.store.flush();
        h.model.flushed();
        await scribble(h, 6);
        const op = point.split(':')[0]!;
        if (point === 'purge:deleted') {
          await h.store.revert('b');
          h.model.reverted('b');
          await h.store.markRemoved('c');
        } else if (op === 'purge') {
          await h.store.markRemoved('b');
        }
        const before = chainState(h.store);
        h.armed = point;
        if (op === 'revert') h.inFlight = { kind: 'revert', name: 'a' };
        const run =
          op === 'snapshot' ? h.store.snapshot({ name: 'd', kind: 'system' })
          : op === 'purge' ? h.store.purge()
          : op === 'revert' ? h.store.revert('a')
          : h.store.expand(h.model.sectors * sectorBytes + 4 * block);
        await assert.rejects(run, /simulated crash/, `${where}: the fault point was not reached`);
        h.store = await reopenAfterCrash(h);
        await checkAfterCrash(h, before, where);
        const after = h.store.chain();
        if (point.endsWith(':committed') || point === 'purge:intent-recorded' || point === 'purge:copied' || point === 'purge:deleted') {
          // Committed (or, for purge, its intent durable): the new state, wholly.
          if (op === 'snapshot') assert.ok(after.snapshots.some((s) => s.name === 'd'), `${where}: snapshot d missing`);
          if (op === 'purge') assert.ok(after.snapshots.length < before.names.size, `${where}: purge not rolled forward`);
          if (op === 'revert') assert.equal(after.headParent, 'a', `${where}: revert missing`);
          if (op === 'expand') assert.equal(after.sizeBytes, before.sizeBytes + 4 * block, `${where}: expand missing`);
        } else {
          assert.deepEqual(chainState(h.store).names, before.names, `${where}: chain changed`);
          assert.equal(after.sizeBytes, before.sizeBytes, `${where}: size changed`);
          assert.equal(after.headParent, before.headParent, `${where}: head moved`);
        }
        // No stray files: everything in the directory is referenced (the open removed leftovers).
        const listed = await h.memory.list('/r');
        assert.ok(!listed.some((n) => n.endsWith('.tmp')), `${where}: temp files left: ${listed.join(',')}`);
        // The operation can be run again and the replica keeps working.
        await h.model.adopt(h.store);
        await h.store.purge();
        await scribble(h, 5);
        await h.store.flush();
        h.model.flushed();
        assert.ok(await h.model.matchesImage(h.store, h.model.current), `${where}: the reopened store does not equal the model`);
        await h.store.close();
      } catch (error) {
        console.error(`fault point test failed: ${where} (SEED=${seed})`);
        throw error;
      }
    }
  }
});
