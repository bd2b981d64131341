// A plain in-memory model of a replica (full images, no layers) and a seeded random workload that
// drives a ReplicaStore and the model side by side, checking that every read equals the model.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SeededRandom } from '../../lib/random.ts';
import { ManualClock } from '../../lib/clock.ts';
import { checksumChunkSizeBytes } from '../../lib/limits.ts';
import type { ReplicaStore } from '../replica-store.ts';
import type { ReplicaFiles } from '../replica-files.ts';
import type { MemoryReplicaFiles } from '../memory-replica-files.ts';
import { createReplicaStore, openReplicaStore } from '../layered-store.ts';

const block = 4096;

/** A Buffer view (no copy) for fast comparison. */
function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

interface ModelSnapshot {
  image: Uint8Array;
  parent: string | null;
  removed: boolean;
}

export class ReplicaModel {
  head: Uint8Array;
  headParent: string | null = null;
  readonly snapshots = new Map<string, ModelSnapshot>();

  constructor(sizeBytes: number) {
    this.head = new Uint8Array(sizeBytes);
  }

  write(offset: number, data: Uint8Array): void {
    this.head.set(data, offset);
  }

  zero(offset: number, length: number): void {
    this.head.fill(0, offset, offset + length);
  }

  snapshot(name: string): void {
    this.snapshots.set(name, { image: this.head.slice(), parent: this.headParent, removed: false });
    this.headParent = name;
  }

  revert(name: string): void {
    const image = this.snapshots.get(name)!.image;
    this.head = new Uint8Array(this.head.length);
    this.head.set(image.subarray(0, Math.min(image.length, this.head.length)));
    this.headParent = name;
  }

  expand(sizeBytes: number): void {
    const next = new Uint8Array(sizeBytes);
    next.set(this.head);
    this.head = next;
  }

  /** What purge must take out, by the rule: removed, not under the head, at most one child. */
  purgeable(): string[] {
    const out: string[] = [];
    const parents = new Map([...this.snapshots].map(([n, s]) => [n, s.parent]));
    for (;;) {
      const name = [...this.snapshots.keys()].find((n) => {
        const s = this.snapshots.get(n)!;
        if (!s.removed || this.headParent === n) return false;
        return [...parents.values()].filter((p) => p === n).length <= 1;
      });
      if (name === undefined) return out;
      const parent = this.snapshots.get(name)!.parent;
      for (const [n, p] of parents) if (p === name) parents.set(n, parent);
      for (const [n, s] of this.snapshots) if (s.parent === name) this.snapshots.set(n, { ...s, parent });
      parents.delete(name);
      this.snapshots.delete(name);
      out.push(name);
    }
  }
}

/** The seeds to run: SEED=n replays one; SEEDS=k runs k seeds from `first` (default `count`). */
export function seedList(first: number, count: number): number[] {
  const seed = process.env['SEED'];
  if (seed !== undefined) return [Number(seed)];
  const seeds = Number(process.env['SEEDS'] ?? count);
  return Array.from({ length: seeds }, (_, i) => first + i);
}

export function stepsFromEnv(fallback: number): number {
  const steps = process.env['STEPS'];
  return steps === undefined ? fallback : Number(steps);
}

export async function expectEqualToModel(store: ReplicaStore, model: ReplicaModel, where: string): Promise<void> {
  assert.equal(store.sizeBytes(), model.head.length, `${where}: size`);
  const bytes = await store.read(0, model.head.length);
  if (!view(bytes).equals(view(model.head))) {
    let i = 0;
    while (bytes[i] === model.head[i]) i++;
    assert.fail(`${where}: read differs from the model first at byte ${i} (block ${Math.floor(i / block)}): got ${bytes[i]}, want ${model.head[i]}`);
  }
  const chain = store.chain();
  assert.equal(chain.headParent, model.headParent, `${where}: head parent`);
  assert.deepEqual(chain.snapshots.map((s) => s.name).sort(), [...model.snapshots.keys()].sort(), `${where}: snapshot names`);
  for (const s of chain.snapshots) {
    const m = model.snapshots.get(s.name)!;
    assert.equal(s.parent, m.parent, `${where}: parent of ${s.name}`);
    assert.equal(s.removed, m.removed, `${where}: removed flag of ${s.name}`);
  }
}

/** Flatten the head's ancestry through layerExtents/readLayer (what a rebuild copies) and compare. */
export async function expectLayersFlattenToModel(store: ReplicaStore, model: ReplicaModel, where: string): Promise<void> {
  const size = store.sizeBytes();
  const chain = store.chain();
  const ancestry: (string | null)[] = [null];
  for (let n = chain.headParent; n !== null; n = chain.snapshots.find((s) => s.name === n)!.parent) ancestry.unshift(n);
  const image = new Uint8Array(size);
  for (const layer of ancestry) {
    for (const e of await store.layerExtents(layer, { offsetBytes: 0, lengthBytes: size })) {
      if (e.kind === 'zero') image.fill(0, e.offsetBytes, e.offsetBytes + e.lengthBytes);
      else image.set(await store.readLayer(layer, e.offsetBytes, e.lengthBytes), e.offsetBytes);
    }
  }
  assert.ok(view(image).equals(view(model.head)), `${where}: layers do not flatten to the model`);
}

/** Recompute a snapshot's chunk digests from layerExtents/readLayer and compare with checksums(). */
export async function expectChecksumsMatchLayer(store: ReplicaStore, name: string, where: string): Promise<void> {
  const size = store.sizeBytes();
  const sums = await store.checksums(name, { offsetBytes: 0, lengthBytes: size });
  const extents = await store.layerExtents(name, { offsetBytes: 0, lengthBytes: size });
  for (const sum of sums) {
    const hash = createHash('sha256');
    for (const e of extents) {
      const from = Math.max(e.offsetBytes, sum.offsetBytes);
      const to = Math.min(e.offsetBytes + e.lengthBytes, sum.offsetBytes + checksumChunkSizeBytes);
      if (from >= to) continue;
      const d = Buffer.alloc(24);
      d.writeBigUInt64LE(BigInt(from - sum.offsetBytes), 0);
      d.writeBigUInt64LE(BigInt(to - from), 8);
      d.writeBigUInt64LE(e.kind === 'zero' ? 2n : 1n, 16);
      hash.update(d);
      if (e.kind !== 'zero') hash.update(await store.readLayer(name, from, to - from));
    }
    assert.equal(sum.digest, hash.digest('hex'), `${where}: checksum of ${name} at ${sum.offsetBytes}`);
  }
}

export interface WorkloadOptions {
  readonly seed: number;
  readonly steps: number;
  readonly files: ReplicaFiles;
  readonly dir: string;
  /** Set for memory files: some steps flush, crash the machine and reopen. */
  readonly memory?: MemoryReplicaFiles;
  /** Full comparison after every step (else every 10th and at the end). */
  readonly checkEveryStep?: boolean;
}

/** Run a seeded workload against a fresh store and the model; throws with the seed on a mismatch. */
export async function runModelWorkload(options: WorkloadOptions): Promise<void> {
  const random = new SeededRandom(options.seed);
  const clock = new ManualClock();
  const initialBlocks = 16 + random.int(112);
  const model = new ReplicaModel(initialBlocks * block);
  const open = (): Promise<ReplicaStore> => openReplicaStore({ dir: options.dir, files: options.files, clock, openLayerFilesMax: 4 });
  let store: ReplicaStore = await createReplicaStore({ dir: options.dir, files: options.files, clock, volumeName: 'vol', sizeBytes: model.head.length, openLayerFilesMax: 4 });
  let snapshotCounter = 0;
  let step = 0;
  let op = '';
  try {
    for (; step < options.steps; step++) {
      const size = model.head.length;
      const names = [...model.snapshots.keys()];
      const roll = random.int(100);
      clock.advance(1000);
      if (roll < 25) {
        const b = random.int(size / block);
        const n = 1 + random.int(Math.min(8, size / block - b));
        const data = random.fill(new Uint8Array(n * block));
        op = `write ${b * block}+${data.length}`;
        await store.write(b * block, data);
        model.write(b * block, data);
      } else if (roll < 40) {
        const offset = random.int(size);
        const data = random.fill(new Uint8Array(1 + random.int(Math.min(3 * block, size - offset))));
        op = `unaligned write ${offset}+${data.length}`;
        await store.write(offset, data);
        model.write(offset, data);
      } else if (roll < 55) {
        const offset = random.next() < 0.5 ? random.int(size / block) * block : random.int(size);
        const length = 1 + random.int(Math.min(10 * block, size - offset));
        const trim = random.next() < 0.5;
        op = `${trim ? 'trim' : 'writeZeroes'} ${offset}+${length}`;
        await (trim ? store.trim(offset, length) : store.writeZeroes(offset, length));
        model.zero(offset, length);
      } else if (roll < 62) {
        op = 'flush';
        await store.flush();
      } else if (roll < 70 && names.length < 40) {
        const name = `s${++snapshotCounter}`;
        op = `snapshot ${name}`;
        await store.snapshot({ name, kind: random.next() < 0.5 ? 'user' : 'system', labels: { step: String(step) } });
        model.snapshot(name);
      } else if (roll < 76 && names.length > 0) {
        const name = random.pick(names);
        op = `markRemoved ${name}`;
        await store.markRemoved(name);
        model.snapshots.get(name)!.removed = true;
      } else if (roll < 80) {
        op = 'purge';
        const purged = await store.purge();
        assert.deepEqual([...purged].sort(), model.purgeable().sort(), 'purged names');
      } else if (roll < 84 && names.some((n) => !model.snapshots.get(n)!.removed)) {
        const name = random.pick(names.filter((n) => !model.snapshots.get(n)!.removed));
        op = `revert ${name}`;
        await store.revert(name);
        model.revert(name);
      } else if (roll < 86 && size < initialBlocks * block * 4) {
        const next = size + (1 + random.int(16)) * block;
        op = `expand ${next}`;
        await store.expand(next);
        model.expand(next);
      } else if (roll < 90) {
        op = 'close and reopen';
        await store.close();
        store = await open();
      } else if (roll < 93 && options.memory !== undefined) {
        op = 'flush, crash, reopen';
        await store.flush();
        options.memory.crash({ random });
        store = await open();
      } else if (roll < 96) {
        op = 'flatten layers';
        await expectLayersFlattenToModel(store, model, `step ${step}`);
      } else if (names.length > 0) {
        const name = random.pick(names);
        op = `checksums ${name}`;
        await expectChecksumsMatchLayer(store, name, `step ${step}`);
      } else {
        op = 'read';
        const offset = random.int(size);
        const length = 1 + random.int(size - offset);
        assert.ok(view(await store.read(offset, length)).equals(view(model.head.subarray(offset, offset + length))), 'partial read');
      }
      if (options.checkEveryStep !== false || step % 10 === 0) await expectEqualToModel(store, model, `after step ${step} (${op})`);
    }
    await expectEqualToModel(store, model, 'at the end');
    await store.close();
  } catch (error) {
    console.error(`replica model workload failed: SEED=${options.seed} at step ${step} (${op}); replay with SEED=${options.seed}`);
    throw error;
  }
}
