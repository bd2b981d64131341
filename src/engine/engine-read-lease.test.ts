// The engine's read lease (read-lease.ts, docs/engine.md "Read lease"): with a minimum of w >= 2
// write replicas it serves a read only while w rw replicas answered within the lease, and a new
// engine that starts by quorum waits out the old one's lease before it serves (scenario S09).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { IoError } from '../lib/errors.ts';
import type { ChainInfo, SnapshotOptions } from '../format/replica-chain.ts';
import { Engine } from './engine.ts';
import { startEngine } from './engine-start.ts';
import { ReplicaClientError } from './replica-client.ts';
import type { ReplicaLink } from './replica-link.ts';
import { MemoryReplicaLink } from './testing/memory-replica-link.ts';
import { memoryEngineSizeBytes as sizeBytes } from './testing/memory-engine.ts';

const block = (fill: number): Uint8Array => new Uint8Array(4096).fill(fill);
const leaseMs = 1000;

/** One engine's view of a shared in-memory replica: `cut` makes every request to it fail as a timeout would. */
class ViewLink implements ReplicaLink {
  cut = false;
  readonly inner: MemoryReplicaLink;
  constructor(inner: MemoryReplicaLink) {
    this.inner = inner;
  }
  get address(): string {
    return this.inner.address;
  }
  private via<T>(op: () => Promise<T>): Promise<T> {
    return this.cut ? Promise.reject(new IoError('io', `${this.address}: timed out`)) : op();
  }
  read(o: number, l: number): Promise<Uint8Array> { return this.via(() => this.inner.read(o, l)); }
  write(o: number, d: Uint8Array): Promise<void> { return this.via(() => this.inner.write(o, d)); }
  writeZeroes(o: number, l: number): Promise<void> { return this.via(() => this.inner.writeZeroes(o, l)); }
  trim(o: number, l: number): Promise<void> { return this.via(() => this.inner.trim(o, l)); }
  flush(): Promise<void> { return this.via(() => this.inner.flush()); }
  ping(): Promise<void> { return this.via(() => this.inner.ping()); }
  acceptEpoch(e: number): Promise<void> { return this.via(() => this.inner.acceptEpoch(e)); }
  setMembership(m: { generation: number; members: readonly string[] }): Promise<void> { return this.via(() => this.inner.setMembership(m)); }
  chain(): Promise<ChainInfo> { return this.via(() => this.inner.chain()); }
  snapshot(s: SnapshotOptions): Promise<void> { return this.via(() => this.inner.snapshot(s)); }
  expand(b: number): Promise<void> { return this.via(() => this.inner.expand(b)); }
  close(): Promise<void> { return Promise.resolve(); }
}

function replicas(count: number): MemoryReplicaLink[] {
  return Array.from({ length: count }, (_, i) => {
    const link = new MemoryReplicaLink(`r${i + 1}`, sizeBytes);
    link.generation = 1;
    link.members = Array.from({ length: count }, (_, j) => `r${j + 1}`);
    return link;
  });
}

function engineOn(links: readonly ReplicaLink[], options: { clock: ManualClock; w: number }): { engine: Engine; log: string[] } {
  const log: string[] = [];
  const engine = new Engine({
    volumeName: 'vol', sizeBytes, epoch: 1, generation: 1, members: links, clock: options.clock, log: (m) => log.push(m), minimumWriteReplicas: options.w, readLeaseMs: leaseMs,
  });
  return { engine, log };
}

const pings = (link: MemoryReplicaLink): number => link.ops.filter((op) => op === 'ping').length;

test('w = 2: reads are served while replicas answer; a lapsed lease is renewed by one ping round', async () => {
  const clock = new ManualClock();
  const links = replicas(3);
  const { engine } = engineOn(links, { clock, w: 2 });
  await engine.write(0, block(1));
  assert.deepEqual(await engine.read(0, 4096), block(1), "the write's answers hold the lease");
  assert.equal(pings(links[0]!), 0);
  clock.advance(leaseMs + 1);
  assert.deepEqual(await engine.read(0, 4096), block(1), 'an idle engine renews the lease');
  assert.deepEqual(links.map(pings), [1, 1, 1]);
  assert.deepEqual(await engine.read(0, 4096), block(1));
  assert.deepEqual(links.map(pings), [1, 1, 1], 'the renewal holds for the next reads');
});

test('w = 2: replicas that stop answering end the lease although they are still rw; one log line', async () => {
  const clock = new ManualClock();
  const views = replicas(3).map((r) => new ViewLink(r));
  const { engine, log } = engineOn(views, { clock, w: 2 });
  await engine.write(0, block(1));
  views[1]!.cut = true;
  views[2]!.cut = true;
  assert.deepEqual(await engine.read(0, 4096), block(1), 'within the lease the read is served');
  // The process stalls (or nothing happens) past the lease: judged when the read is served.
  clock.advance(leaseMs + 1);
  await assert.rejects(engine.read(0, 4096), (e: unknown) => e instanceof IoError && e.code === 'io' && /read refused: 1 of 3 rw replicas answered within the read lease of 1000 ms, fewer than the minimum 2/.test(e.message));
  await assert.rejects(engine.read(4096, 4096), /read refused/);
  assert.deepEqual(engine.status().replicas.map((r) => r.mode), ['rw', 'rw', 'rw'], 'a read drops nobody');
  assert.equal(log.filter((m) => m.startsWith('reads refused')).length, 1, log.join('\n'));
  // r2 answers again: the next read renews and is served.
  views[1]!.cut = false;
  assert.deepEqual(await engine.read(0, 4096), block(1));
});

test('w = 2: below the minimum of rw replicas reads fail without a ping; w = 1 serves whatever the clock says', async () => {
  const clock = new ManualClock();
  const links = replicas(3);
  const { engine } = engineOn(links, { clock, w: 2 });
  links[1]!.broken = 'gone';
  links[2]!.broken = 'gone';
  await assert.rejects(engine.write(0, block(1)), /1 rw replicas, fewer than the minimum 2/);
  await assert.rejects(engine.read(0, 4096), /read refused: 1 rw replicas, fewer than the minimum 2/);
  assert.equal(pings(links[0]!), 0);

  const single = replicas(3);
  const one = engineOn(single, { clock, w: 1 });
  await one.engine.write(0, block(7));
  single[1]!.broken = 'gone';
  single[2]!.broken = 'gone';
  clock.advance(100 * leaseMs);
  assert.deepEqual(await one.engine.read(0, 4096), block(7));
  assert.deepEqual(single.map(pings), [0, 0, 0], 'with w = 1 there is no lease');
});

test('a renewal answered with stale_epoch fences the engine', async () => {
  const clock = new ManualClock();
  const links = replicas(2);
  const { engine } = engineOn(links, { clock, w: 2 });
  await engine.write(0, block(1));
  clock.advance(leaseMs + 1);
  links[1]!.refuseWith = new ReplicaClientError('stale_epoch', 'Replica r2: epoch 1 is older than the accepted epoch 2', { replicaEpoch: 2 });
  await assert.rejects(engine.read(0, 4096), /fenced by a newer one \(read lease renewal: .*accepted epoch 2/);
  await assert.rejects(engine.write(0, block(2)), /fenced/);
});

async function splitBrain(waitOut: boolean): Promise<{ oldRead: string; newLog: string[]; sleptMs: number }> {
  const clock = new ManualClock();
  const shared = replicas(3);
  const oldViews = shared.map((r) => new ViewLink(r));
  const old = engineOn(oldViews, { clock, w: 2 });
  await old.engine.write(0, block(1));
  // The partition: the old engine keeps r1 only; the new engine reaches r2 and r3 only.
  oldViews[1]!.cut = true;
  oldViews[2]!.cut = true;
  const newViews = shared.map((r) => new ViewLink(r));
  newViews[0]!.cut = true;
  const newLog: string[] = [];
  let sleptMs = 0;
  const started = await startEngine({
    volumeName: 'vol', sizeBytes, links: newViews, clock, log: (m) => newLog.push(m), epoch: 5, minimumWriteReplicas: 2,
    ...(waitOut
      ? {
          readLease: {
            ms: leaseMs,
            sleep: async (ms: number) => {
              // While the new engine waits, the old one may still serve reads (nothing new was acknowledged).
              sleptMs += ms;
              clock.advance(ms);
              await Promise.resolve();
            },
          },
        }
      : {}),
  });
  await started.engine.write(0, block(2));
  const oldRead = await old.engine.read(0, 4096).then(
    (data) => `served ${data[0] ?? '?'}`,
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );
  return { oldRead, newLog, sleptMs };
}

test('S09 in memory: by the time the new engine acknowledges its first write, the old one serves no read', async () => {
  const { oldRead, newLog, sleptMs } = await splitBrain(true);
  assert.match(oldRead, /read refused: 1 of 3 rw replicas answered within the read lease/);
  assert.ok(newLog.some((m) => /by quorum: 1 of 3 members missing \(r1\)/.test(m)), newLog.join('\n'));
  assert.ok(newLog.some((m) => /waiting \d+ ms for the old engine's read lease \(1000 ms\) to run out before serving/.test(m)), newLog.join('\n'));
  assert.ok(sleptMs >= leaseMs, `slept ${sleptMs} ms`);
});

test('S09 in memory, planted: without the wait the old engine serves the old data after the new one acknowledged', async () => {
  const { oldRead, sleptMs } = await splitBrain(false);
  assert.equal(oldRead, 'served 1', 'a stale read: this is what the wait prevents');
  assert.equal(sleptMs, 0);
});

test('a start with every member present does not wait', async () => {
  const clock = new ManualClock();
  let slept = 0;
  const started = await startEngine({
    volumeName: 'vol', sizeBytes, links: replicas(3), clock, log: () => undefined, minimumWriteReplicas: 2,
    readLease: { ms: leaseMs, sleep: (ms) => { slept += ms; clock.advance(ms); return Promise.resolve(); } },
  });
  await started.engine.write(0, block(3));
  assert.equal(slept, 0);
});

test('a member still reporting the older generation (the record on its way) is fenced too, or the start gives up', async () => {
  // The old engine recorded generation 7 {a, b, c} on a; its record is still on its way to b and
  // c, which report generation 6. The start uses a alone; b and c must not stay open to the old engine.
  const setup = (): MemoryReplicaLink[] => {
    const links = ['a', 'b', 'c'].map((address) => new MemoryReplicaLink(address, sizeBytes));
    for (const link of links) {
      link.epoch = 1;
      link.generation = 6;
      link.members = ['a', 'b', 'c', 'd'];
    }
    links[0]!.generation = 7;
    links[0]!.members = ['a', 'b', 'c'];
    return links;
  };
  const links = setup();
  const started = await startEngine({ volumeName: 'vol', sizeBytes, links, clock: new ManualClock(), log: () => undefined, minimumWriteReplicas: 2 });
  assert.deepEqual(started.stale, ['b', 'c']);
  assert.deepEqual(links.map((l) => l.epoch), [2, 2, 2], 'every replica that answered took the new epoch');
  assert.deepEqual(links.map((l) => l.generation), [8, 6, 6]);

  const failing = setup();
  failing[2]!.beforeOp = (op) => {
    if (op === 'acceptEpoch') failing[2]!.broken = 'disk error';
  };
  await assert.rejects(
    startEngine({ volumeName: 'vol', sizeBytes, links: failing, clock: new ManualClock(), log: () => undefined, minimumWriteReplicas: 2 }),
    /Cannot start: member of generation 7 not used but not fenced either \(c: c: disk error\); an older engine might go on with it/,
  );
  // A replica that is no member of the newest generation may fail its fence: nothing depends on it.
  const outsider = setup();
  outsider[2]!.members = ['x'];
  outsider[0]!.members = ['a', 'b'];
  outsider[2]!.beforeOp = (op) => {
    if (op === 'acceptEpoch') outsider[2]!.broken = 'disk error';
  };
  const ok = await startEngine({ volumeName: 'vol', sizeBytes, links: outsider, clock: new ManualClock(), log: () => undefined, minimumWriteReplicas: 2 });
  assert.deepEqual(ok.stale, ['b', 'c']);
});
