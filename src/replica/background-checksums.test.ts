// Background hashing of sealed layers (chunk-checksums.ts): it runs after a snapshot and at open,
// stays under its byte rate (measured on a ManualClock: the pacer's sleeps are the only thing that
// moves time), holds no lock while it waits (writes, reads and snapshots go on), gives way to a
// purge that removes its layer, stops at close, lifts its pace when a request needs the sums, and a
// crash anywhere in it leaves no checksum file that is trusted unless it is complete and right.
// Replay the crash sweep's random content with SEED=n.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { SeededRandom } from '../lib/random.ts';
import { MemoryReplicaFiles } from './memory-replica-files.ts';
import { createReplicaStore, openReplicaStore, type LayeredReplicaStore } from './layered-store.ts';
import type { PaceSleep } from './checksum-pacer.ts';

const mib = 1024 * 1024;
const sizeBytes = 16 * mib;
const whole = { offsetBytes: 0, lengthBytes: sizeBytes };
const seed = Number(process.env['SEED'] ?? 7);

/** A pacer sleep the test releases one at a time, moving the clock by what was asked. */
class SteppedSleep {
  readonly clock = new ManualClock();
  private waiting: { ms: number; resolve: () => void }[] = [];
  sleeps = 0;
  readonly sleep: PaceSleep = (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      this.sleeps++;
      if (signal.aborted) return reject(new Error('aborted'));
      signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
      this.waiting.push({ ms, resolve });
    });
  get parked(): boolean {
    return this.waiting.length > 0;
  }
  step(): void {
    const next = this.waiting.shift();
    assert.ok(next !== undefined, 'no pacer sleep is waiting');
    this.clock.advance(Math.ceil(next.ms)); // whole ms: wall time becomes a snapshot's createdMs
    next.resolve();
  }
}

/** Let queued promise work run until `condition` holds (a bounded number of turns, not a timer). */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 100_000; turn++) {
    if (condition()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  assert.fail(`never: ${what}`);
}

/** Step every pacer sleep until `condition` holds. */
async function stepUntil(s: SteppedSleep, condition: () => boolean, what: string): Promise<void> {
  await until(() => condition() || s.parked, what);
  while (!condition()) {
    s.step();
    await until(() => condition() || s.parked, what);
  }
}

function stateOf(store: LayeredReplicaStore, name: string): string | undefined {
  return store.chain().snapshots.find((s) => s.name === name)?.checksumState;
}

/** Writes of seeded content: a few data runs and a trim in the first 12 MiB. */
async function fill(store: LayeredReplicaStore, random: SeededRandom): Promise<void> {
  for (let i = 0; i < 6; i++) {
    const data = new Uint8Array(mib + 4096 * random.int(64));
    for (let j = 0; j < data.length; j += 512) data[j] = random.int(256);
    await store.write(i * 2 * mib + 4096 * random.int(16), data);
  }
  await store.trim(3 * mib, 64 * 1024);
}

/** The checksums of `name` on a store with the same content and no background hashing (computed on request). */
async function reference(random: () => SeededRandom, snapshots: readonly string[]): Promise<Map<string, string[]>> {
  const store = await createReplicaStore({ dir: '/ref', files: new MemoryReplicaFiles(), clock: new ManualClock(), volumeName: 'vol', sizeBytes });
  const out = new Map<string, string[]>();
  const r = random();
  for (const name of snapshots) {
    await fill(store, r);
    await store.snapshot({ name, kind: 'user' });
  }
  for (const name of snapshots) out.set(name, (await store.checksums(name, whole)).map((c) => c.digest));
  await store.close();
  return out;
}

async function newStore(files: MemoryReplicaFiles, s: SteppedSleep, bytesPerSecond: number, extra: { faultPoint?: (name: string) => void } = {}): Promise<LayeredReplicaStore> {
  return createReplicaStore({ dir: '/r', files, clock: s.clock, volumeName: 'vol', sizeBytes, checksumBytesPerSecond: bytesPerSecond, checksumSleep: s.sleep, ...extra });
}

test('background hashing stores the same sums a request computes, at no more than its rate (ManualClock)', async () => {
  const expected = await reference(() => new SeededRandom(seed), ['s1']);
  const s = new SteppedSleep();
  const files = new MemoryReplicaFiles();
  const rate = 4 * mib;
  const store = await newStore(files, s, rate);
  await fill(store, new SeededRandom(seed));
  const dataBytes = store.chain().headSizeBytes;
  assert.equal(stateOf(store, 's1'), undefined);
  await store.snapshot({ name: 's1', kind: 'user' });
  await until(() => stateOf(store, 's1') === 'computing', 'hashing starts after the snapshot');
  const startMs = s.clock.monotonicMs();
  await stepUntil(s, () => stateOf(store, 's1') === 'computed', 'hashing finishes');
  const elapsedMs = s.clock.monotonicMs() - startMs;
  const rateMeasured = dataBytes / (elapsedMs / 1000);
  console.log(`# hashed ${dataBytes} bytes in ${elapsedMs} simulated ms: ${(rateMeasured / mib).toFixed(3)} MiB/s, limit ${rate / mib} MiB/s, ${s.sleeps} paced waits`);
  assert.ok(rateMeasured <= rate * 1.0001, `rate ${rateMeasured} exceeds the limit ${rate}`);
  assert.ok(rateMeasured >= rate * 0.95, `rate ${rateMeasured} is far below the limit ${rate}: the pacer waits too long`);
  assert.ok(s.sleeps >= 6, 'paced a chunk at a time');
  const info = store.chain().snapshots[0]!;
  assert.equal(info.checksumComputedMs, Math.floor(s.clock.nowMs() / 1000) * 1000, 'the time is reported, to the second');
  assert.deepEqual((await store.checksums('s1', whole)).map((c) => c.digest), expected.get('s1'));
  await store.close();
  // The time survives a reopen (it is in the .sum header), and nothing is hashed again.
  const again = await openReplicaStore({ dir: '/r', files, clock: s.clock, checksumBytesPerSecond: rate, checksumSleep: s.sleep });
  assert.deepEqual(again.chain().snapshots[0], info);
  await again.close();
});

test('while hashing waits out its pace, writes, reads and snapshots run; a request lifts the pace; close stops it', async () => {
  const expected = await reference(() => new SeededRandom(seed + 1), ['s1']);
  const s = new SteppedSleep();
  const files = new MemoryReplicaFiles();
  const store = await newStore(files, s, 1 * mib);
  await fill(store, new SeededRandom(seed + 1));
  await store.snapshot({ name: 's1', kind: 'user' });
  await until(() => s.parked, 'the hasher waits out its pace');
  s.step();
  await until(() => s.parked, 'the hasher waits again, mid-layer');
  assert.equal(stateOf(store, 's1'), 'computing');
  // No lock is held across the wait: I/O and a snapshot (the chain lock, exclusive) finish now.
  await store.write(15 * mib, new Uint8Array(8192).fill(7));
  assert.equal((await store.read(15 * mib, 8192))[0], 7);
  await store.snapshot({ name: 's2', kind: 'system' });
  await store.flush();
  // A request (a rebuild, a scrub) needs the sums now: after the current wait, no more pacing
  // (a paced wait only ends on step(), so the request could not finish otherwise).
  let answered = false;
  const request = store.checksums('s1', whole).finally(() => (answered = true));
  s.step();
  await until(() => answered, 'the request is answered with no further step');
  assert.deepEqual((await request).map((c) => c.digest), expected.get('s1'));
  // The hasher goes on to s2; close ends its wait at once.
  await until(() => stateOf(store, 's2') === 'computing' && s.parked, 'the hasher starts s2');
  await store.close();
  const names = await files.list('/r');
  assert.deepEqual(names.filter((n) => n.endsWith('.tmp')), [], 'close leaves no temporary file');
  const reopened = await openReplicaStore({ dir: '/r', files, clock: s.clock, checksumBytesPerSecond: 1 * mib, checksumSleep: s.sleep });
  assert.equal(stateOf(reopened, 's1'), 'computed');
  assert.equal(stateOf(reopened, 's2'), 'computing', 'open starts on a layer without sums at once');
  await stepUntil(s, () => stateOf(reopened, 's2') === 'computed', 'open resumes hashing of layers without sums');
  await reopened.close();
});

test('a purge that merges the layer being hashed: the hasher drops it, writes nothing, and hashes the merged layer', async () => {
  const s = new SteppedSleep();
  const files = new MemoryReplicaFiles();
  const store = await newStore(files, s, 2 * mib);
  const random = new SeededRandom(seed + 2);
  await fill(store, random);
  await store.snapshot({ name: 's1', kind: 'user' });
  await fill(store, random);
  await store.snapshot({ name: 's2', kind: 'user' });
  await until(() => s.parked, 'the hasher is in s1');
  s.step();
  await until(() => s.parked, 'the hasher waits mid-s1');
  assert.equal(stateOf(store, 's1'), 'computing');
  const sumsBefore = (await files.list('/r')).filter((n) => n.endsWith('.sum'));
  await store.markRemoved('s1');
  assert.deepEqual(await store.purge(), ['s1'], 'the purge does not wait for the paced hasher');
  assert.deepEqual(store.chain().snapshots.map((x) => x.name), ['s2']);
  await stepUntil(s, () => stateOf(store, 's2') === 'computed', 'the merged layer is hashed');
  const sums = (await files.list('/r')).filter((n) => n.endsWith('.sum') || n.endsWith('.tmp'));
  assert.equal(sums.length, 1, `one checksum file, the merged layer's: ${sums.join(', ')} (before: ${sumsBefore.join(', ')})`);
  // The merged layer's content is s1 under s2: its chunks that s1 alone held differ from s2's own sums,
  // so compare against a store that purged the same way, computed on request.
  const ref = await createReplicaStore({ dir: '/ref2', files: new MemoryReplicaFiles(), clock: new ManualClock(), volumeName: 'vol', sizeBytes });
  const r = new SeededRandom(seed + 2);
  await fill(ref, r);
  await ref.snapshot({ name: 's1', kind: 'user' });
  await fill(ref, r);
  await ref.snapshot({ name: 's2', kind: 'user' });
  await ref.markRemoved('s1');
  await ref.purge();
  assert.deepEqual((await store.checksums('s2', whole)).map((c) => c.digest), (await ref.checksums('s2', whole)).map((c) => c.digest));
  await ref.close();
  await store.close();
});

test('a crash at any file operation of the hashing leaves no half-written checksum file that is trusted', async () => {
  const expected = await reference(() => new SeededRandom(seed + 3), ['s1']);
  let outcomes = { none: 0, stored: 0 };
  for (let halt = 0; ; halt++) {
    const s = new SteppedSleep();
    const files = new MemoryReplicaFiles();
    const store = await newStore(files, s, 0);
    await fill(store, new SeededRandom(seed + 3));
    await store.snapshot({ name: 's1', kind: 'user' });
    await store.close();
    // Reopen with hashing on and the machine dying after `halt` more file operations.
    const hashing = await openReplicaStore({ dir: '/r', files, clock: s.clock, checksumBytesPerSecond: 1 * mib, checksumSleep: s.sleep, log: () => undefined });
    files.haltAfter(halt);
    await stepUntil(s, () => stateOf(hashing, 's1') !== 'computing' && stateOf(hashing, 's1') !== 'pending', `hashing ends (halt ${halt})`);
    const finished = stateOf(hashing, 's1') === 'computed';
    files.crash({ random: new SeededRandom(seed * 1000 + halt) });
    const reopened = await openReplicaStore({ dir: '/r', files, clock: s.clock });
    const state = stateOf(reopened, 's1');
    assert.ok(state === 'computed' || state === 'none', `halt ${halt}: state ${state}`);
    assert.deepEqual((await files.list('/r')).filter((n) => n.endsWith('.tmp')), [], `halt ${halt}: the temporary file is removed on open`);
    assert.deepEqual((await reopened.checksums('s1', whole)).map((c) => c.digest), expected.get('s1'), `halt ${halt}: sums after the crash`);
    outcomes = state === 'computed' ? { ...outcomes, stored: outcomes.stored + 1 } : { ...outcomes, none: outcomes.none + 1 };
    await reopened.close();
    if (finished) break;
    assert.ok(halt < 200, 'hashing never finished');
  }
  console.log(`# crash sweep (seed ${seed}): ${outcomes.none} crashes left no sums, ${outcomes.stored} left complete sums`);
  assert.ok(outcomes.none > 0);
});

test('a checksum file that fails its checks is reported, never trusted, and not replaced by the hasher', async () => {
  const s = new SteppedSleep();
  const files = new MemoryReplicaFiles();
  const store = await newStore(files, s, 0);
  await fill(store, new SeededRandom(seed + 4));
  await store.snapshot({ name: 's1', kind: 'user' });
  await store.checksums('s1', whole);
  await store.close();
  const sumName = (await files.list('/r')).find((n) => n.endsWith('.sum'))!;
  const good = files.peek(`/r/${sumName}`)!;
  const bad = good.slice();
  bad[40]! ^= 1; // inside the first digest: the body's CRC no longer matches
  files.plant(`/r/${sumName}`, bad);
  const reopened = await openReplicaStore({ dir: '/r', files, clock: s.clock, checksumBytesPerSecond: 1 * mib, checksumSleep: s.sleep });
  assert.equal(stateOf(reopened, 's1'), 'computed', 'the header alone is checked at open');
  await assert.rejects(reopened.checksums('s1', whole), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'corrupt');
    assert.match(error.message, new RegExp(`stored checksums of snapshot s1: .*${sumName.replace('.', '\\.')}.*checksum mismatch`));
    return true;
  });
  assert.equal(stateOf(reopened, 's1'), 'corrupt');
  await reopened.close();
  // A damaged header is found at open; the hasher leaves the file alone.
  const header = good.slice();
  header[12]! ^= 1;
  files.plant(`/r/${sumName}`, header);
  const third = await openReplicaStore({ dir: '/r', files, clock: s.clock, checksumBytesPerSecond: 1 * mib, checksumSleep: s.sleep });
  assert.equal(stateOf(third, 's1'), 'corrupt');
  await until(() => true, 'a turn');
  assert.equal(s.parked, false, 'the hasher does not touch a layer whose sums are corrupt');
  await assert.rejects(third.checksums('s1', whole), { code: 'corrupt' });
  assert.deepEqual(files.peek(`/r/${sumName}`), header, 'the damaged file is kept as evidence');
  await third.close();
});
