// kill -9 of the real replica daemon at seeded moments during writes, flushes, snapshot, purge,
// revert and expand; then a restart on the same directory and a full check (TESTING.md 1, 2, 5):
// every flushed write is there, every block reads as zeros or as a version actually written at
// that address (self-describing blocks), and the operation in flight is wholly done or wholly
// absent in the chain. Seeds 1..CRASH_SEEDS (default 24) run in CI; SEED=n replays one seed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SeededRandom } from '../../src/lib/random.ts';
import { toError } from '../../src/lib/errors.ts';
import { connectReplica, ReplicaClientError, type ReplicaClient } from '../../src/engine/replica-client.ts';
import type { ChainInfo } from '../../src/format/replica-chain.ts';
import { type Daemon, startDaemon, stopAll, withTempDir } from '../harness/daemon.ts';
import { blockBytes, makeBlock, readBlock, volumeTag } from '../harness/self-describing-block.ts';

const volumeName = 'crash-vol';
const tag = volumeTag(volumeName);
const initialSizeBytes = 2 * 1024 * 1024;
const expandStepBytes = 1024 * 1024;
const categories = ['write', 'flush', 'snapshot', 'purge', 'revert', 'expand'] as const;
type Category = (typeof categories)[number];

after(stopAll);

interface Model {
  sizeBytes: number;
  /** Per block: the versions (write seqs; 0 = zeros) it may have held, oldest first. */
  history: number[][];
  /** Per block: index in history of the version a completed flush (or metadata commit) made durable. */
  durable: number[];
  snapshots: { name: string; removed: boolean }[];
  headParent: string | null;
  /** Per snapshot: the version of every block when it was taken. */
  content: Map<string, number[]>;
  seq: number;
  snapshotCount: number;
}

function newModel(): Model {
  const blocks = initialSizeBytes / blockBytes;
  return {
    sizeBytes: initialSizeBytes,
    history: Array.from({ length: blocks }, () => [0]),
    durable: new Array<number>(blocks).fill(0),
    snapshots: [],
    headParent: null,
    content: new Map(),
    seq: 0,
    snapshotCount: 0,
  };
}

const current = (model: Model): number[] => model.history.map((h) => h[h.length - 1]!);

function markAllDurable(model: Model): void {
  model.history.forEach((h, b) => (model.durable[b] = h.length - 1));
}

/** Non-overlapping writes of 1-4 blocks, all in flight at once. Versions join history when issued. */
function writeBatch(client: ReplicaClient, model: Model, random: SeededRandom, count: number): Promise<void>[] {
  const used = new Set<number>();
  const blocks = model.history.length;
  const writes: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const start = random.int(blocks);
    const length = Math.min(1 + random.int(4), blocks - start);
    const range = Array.from({ length }, (_, k) => start + k);
    if (range.some((b) => used.has(b))) continue;
    const data = new Uint8Array(length * blockBytes);
    for (const [k, b] of range.entries()) {
      used.add(b);
      const seq = ++model.seq;
      model.history[b]!.push(seq);
      data.set(makeBlock({ volumeTag: tag, blockIndex: b, seq }), k * blockBytes);
    }
    writes.push(client.write(start * blockBytes, data));
  }
  return writes;
}

async function flush(client: ReplicaClient, model: Model): Promise<void> {
  await client.flush();
  markAllDurable(model);
}

function liveSnapshots(model: Model): string[] {
  return model.snapshots.filter((s) => !s.removed).map((s) => s.name);
}

/** The operation under test: what it does, and how the model changes when it completes. */
interface CrashOp {
  readonly describe: string;
  readonly start: () => Promise<unknown>;
  readonly applyDone: (result: unknown) => void;
}

async function prepare(category: Category, client: ReplicaClient, model: Model, random: SeededRandom): Promise<CrashOp> {
  switch (category) {
    case 'write':
      return { describe: 'a batch of writes', start: () => Promise.all(writeBatch(client, model, random, 48)), applyDone: () => {} };
    case 'flush':
      await Promise.all(writeBatch(client, model, random, 48));
      return { describe: 'flush', start: () => client.flush(), applyDone: () => markAllDurable(model) };
    case 'snapshot': {
      await flush(client, model);
      const name = `s${++model.snapshotCount}`;
      return {
        describe: `snapshot ${name}`,
        start: () => client.snapshot({ name, kind: 'user' }),
        applyDone: () => takeSnapshot(model, name),
      };
    }
    case 'purge': {
      await flush(client, model);
      if (model.snapshots.filter((s) => !s.removed && s.name !== model.headParent).length === 0) {
        await snapshotNow(client, model);
        await Promise.all(writeBatch(client, model, random, 8));
        await snapshotNow(client, model);
        await flush(client, model);
      }
      const target = random.pick(model.snapshots.filter((s) => !s.removed && s.name !== model.headParent));
      await client.markRemoved(target.name);
      target.removed = true;
      return {
        describe: `purge (removed: ${model.snapshots.filter((s) => s.removed).map((s) => s.name).join(',')})`,
        start: () => client.purge(),
        applyDone: (purged) => {
          const names = purged as string[];
          model.snapshots = model.snapshots.filter((s) => !names.includes(s.name));
        },
      };
    }
    case 'revert': {
      if (liveSnapshots(model).length === 0) {
        await snapshotNow(client, model);
        await Promise.all(writeBatch(client, model, random, 16));
      }
      await flush(client, model);
      const target = random.pick(liveSnapshots(model));
      return {
        describe: `revert to ${target}`,
        start: () => client.revert(target),
        applyDone: () => {
          const content = model.content.get(target)!;
          model.history.forEach((h, b) => h.push(content[b] ?? 0));
          markAllDurable(model);
          model.headParent = target;
        },
      };
    }
    case 'expand': {
      await flush(client, model);
      const sizeBytes = model.sizeBytes + expandStepBytes;
      return {
        describe: `expand to ${sizeBytes}`,
        start: () => client.expand(sizeBytes),
        applyDone: () => {
          for (let b = model.history.length; b < sizeBytes / blockBytes; b++) {
            model.history.push([0]);
            model.durable.push(0);
          }
          model.sizeBytes = sizeBytes;
        },
      };
    }
  }
}

function takeSnapshot(model: Model, name: string): void {
  model.snapshots.push({ name, removed: false });
  model.headParent = name;
  model.content.set(name, current(model));
}

async function snapshotNow(client: ReplicaClient, model: Model): Promise<void> {
  await flush(client, model);
  const name = `s${++model.snapshotCount}`;
  await client.snapshot({ name, kind: 'user' });
  takeSnapshot(model, name);
}

/** A seeded prefix of ordinary work before the operation that gets the crash. */
async function workload(client: ReplicaClient, model: Model, random: SeededRandom): Promise<void> {
  const steps = 3 + random.int(6);
  for (let i = 0; i < steps; i++) {
    const pick = random.int(10);
    if (pick < 6) await Promise.all(writeBatch(client, model, random, 1 + random.int(24)));
    else if (pick < 8) await flush(client, model);
    else await snapshotNow(client, model);
  }
}

async function readAll(client: ReplicaClient, sizeBytes: number): Promise<Uint8Array> {
  const out = new Uint8Array(sizeBytes);
  const step = 256 * 1024;
  for (let offset = 0; offset < sizeBytes; offset += step) out.set(await client.read(offset, Math.min(step, sizeBytes - offset)), offset);
  return out;
}

/** Versions read back per block; garbage fails at once. */
function versions(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let b = 0; b * blockBytes < bytes.length; b++) {
    const reading = readBlock(bytes.subarray(b * blockBytes, (b + 1) * blockBytes), { volumeTag: tag, blockIndex: b });
    if (reading.kind === 'garbage') assert.fail(`block ${b}: ${reading.reason} (never written there)`);
    out.push(reading.kind === 'zeros' ? 0 : reading.seq);
  }
  return out;
}

/** Blocks that break "a version written there, no older than the last durable one". */
function durabilityViolations(model: Model, seen: readonly number[]): string[] {
  const problems: string[] = [];
  for (const [b, h] of model.history.entries()) {
    const allowed = h.slice(model.durable[b]);
    if (!allowed.includes(seen[b]!)) problems.push(`block ${b} reads version ${seen[b]}; allowed ${allowed.join('/')} (history ${h.join(',')})`);
  }
  return problems;
}

function exactViolations(expected: readonly number[], seen: readonly number[]): string[] {
  return expected.flatMap((v, b) => (seen[b] === v ? [] : [`block ${b} reads ${seen[b]}, expected ${v}`]));
}

function names(chain: ChainInfo): string[] {
  return chain.snapshots.map((s) => s.name);
}

function check(category: Category, options: { before: Model; issued: Model; afterDone: Model; done: boolean; chain: ChainInfo; seen: number[] }): void {
  const { before, issued, afterDone, done, chain, seen } = options;
  const modelNames = (m: Model): string[] => m.snapshots.map((s) => s.name);
  switch (category) {
    case 'write':
    case 'flush': {
      assert.deepEqual(names(chain), modelNames(before));
      const problems = durabilityViolations(done ? afterDone : issued, seen);
      assert.deepEqual(problems, []);
      return;
    }
    case 'snapshot': {
      const options = done ? [modelNames(afterDone)] : [modelNames(before), modelNames(afterDone)];
      assert.ok(options.some((o) => JSON.stringify(o) === JSON.stringify(names(chain))), `chain ${names(chain).join(',')} is neither before nor after`);
      assert.deepEqual(durabilityViolations(before, seen), []);
      return;
    }
    case 'purge': {
      const got = names(chain);
      const kept = modelNames(before).filter((n) => got.includes(n));
      assert.deepEqual(got, kept, 'purge invented or reordered snapshots');
      for (const name of modelNames(before)) {
        const wasRemoved = before.snapshots.find((s) => s.name === name)!.removed;
        if (!wasRemoved) assert.ok(got.includes(name), `purge lost live snapshot ${name}`);
        else if (got.includes(name)) assert.equal(chain.snapshots.find((s) => s.name === name)!.removed, true, `${name} lost its removed mark`);
      }
      if (done) assert.deepEqual(got, modelNames(afterDone));
      assert.deepEqual(exactViolations(current(before), seen), [], 'purge changed what reads return');
      return;
    }
    case 'revert': {
      const old = exactViolations(current(before), seen);
      const reverted = exactViolations(current(afterDone), seen);
      if (done) assert.deepEqual(reverted, [], 'a completed revert is not all there');
      else assert.ok(old.length === 0 || reverted.length === 0, `half a revert: old state ${old.slice(0, 3).join('; ')}; new state ${reverted.slice(0, 3).join('; ')}`);
      if (reverted.length === 0 && old.length > 0) assert.equal(chain.headParent, afterDone.headParent);
      if (old.length === 0 && reverted.length > 0) assert.equal(chain.headParent, before.headParent);
      return;
    }
    case 'expand': {
      if (done) assert.equal(chain.sizeBytes, afterDone.sizeBytes);
      else assert.ok([before.sizeBytes, afterDone.sizeBytes].includes(chain.sizeBytes), `size ${chain.sizeBytes}`);
      assert.deepEqual(durabilityViolations(before, seen.slice(0, before.history.length)), []);
      assert.ok(seen.slice(before.history.length).every((v) => v === 0), 'expanded space is not zeros');
      return;
    }
  }
}

function cloneModel(model: Model): Model {
  return structuredClone(model);
}

async function startReplica(dir: string): Promise<{ daemon: Daemon; client: ReplicaClient }> {
  const daemon = await startDaemon({
    args: ['replica', '--dir', join(dir, 'replica'), '--size', String(initialSizeBytes), '--listen', '127.0.0.1:0', '--volume', volumeName],
    readyPattern: /listening on 127\.0\.0\.1:(\d+)/,
  });
  const client = await connectReplica(`127.0.0.1:${daemon.ready[1]}`, { volumeName, epoch: 1 });
  return { daemon, client };
}

async function runSeed(seed: number, note: (message: string) => void): Promise<void> {
  const random = new SeededRandom(seed);
  const category = categories[(seed - 1) % categories.length]!;
  await withTempDir(`crash-${seed}`, async (dir) => {
    let { daemon, client } = await startReplica(dir);
    const model = newModel();
    await client.open(1);
    await workload(client, model, random);
    const op = await prepare(category, client, model, random);
    const before = cloneModel(model);
    let done = false;
    let failure: unknown;
    const settled = op.start().then(
      (result) => {
        op.applyDone(result);
        done = true;
      },
      (error: unknown) => {
        // The kill drops the connection: 'disconnected' is the expected end of an unfinished op.
        if (!(error instanceof ReplicaClientError && error.code === 'disconnected')) failure = error;
      },
    );
    // start() issues its writes (and enters their versions in the history) synchronously: a
    // write in flight at the kill may or may not have reached the disk, so its version is allowed.
    const issued = cloneModel(model);
    // The seeded crash moment itself (not a wait for a condition): 0-7 ms into the operation.
    await new Promise((resolve) => setTimeout(resolve, random.int(8)));
    await daemon.kill9();
    await settled;
    if (failure !== undefined) throw toError(failure);
    await client.close();
    // The completed state, for checks that accept "wholly done": for an unfinished purge, the one
    // that purged every removed snapshot.
    if (!done) op.applyDone(category === 'purge' ? model.snapshots.filter((s) => s.removed).map((s) => s.name) : undefined);
    const afterModel = cloneModel(model);
    note(`${op.describe}: ${done ? 'completed' : 'in flight'} at the kill`);
    ({ daemon, client } = await startReplica(dir));
    try {
      const chain = await client.chain();
      assert.equal(chain.membership.epoch, 1, 'the accepted epoch did not survive');
      const seen = versions(await readAll(client, chain.sizeBytes));
      check(category, { before, issued, afterDone: afterModel, done, chain, seen });
    } catch (error) {
      throw new Error(`seed ${seed} (${op.describe}, ${done ? 'completed' : 'in flight'} at the kill): ${String(error)}\nreplay: SEED=${seed} node scripts/run-tests.mjs replica-crash`, { cause: error });
    } finally {
      await client.close();
      await daemon.stop();
    }
  });
}

const seeds = process.env['SEED'] !== undefined
  ? [Number(process.env['SEED'])]
  : Array.from({ length: Number(process.env['CRASH_SEEDS'] ?? 24) }, (_, i) => i + 1);

for (const seed of seeds) {
  test(`replica survives kill -9 during ${categories[(seed - 1) % categories.length]} (seed ${seed})`, (t) => runSeed(seed, (m) => t.diagnostic(m)));
}
