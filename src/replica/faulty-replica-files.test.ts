// The fault layer over memory files: each fault type does what the config says and nothing else,
// lose-unsynced keeps writes from the file until sync (a new layer over the same files is the
// process after a kill -9), and hostile configs are refused with a clear error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { parseFaultConfig } from './fault-config.ts';
import { FaultyReplicaFiles } from './faulty-replica-files.ts';
import { MemoryReplicaFiles } from './memory-replica-files.ts';
import { createReplicaStore, openReplicaStore } from './layered-store.ts';
import { ReplicaError } from './replica-error.ts';

class Crashed extends Error {}

function layer(memory: MemoryReplicaFiles, config: object): { files: FaultyReplicaFiles; crashes: string[]; logs: string[] } {
  const crashes: string[] = [];
  const logs: string[] = [];
  const files = new FaultyReplicaFiles({
    inner: memory,
    config: parseFaultConfig(JSON.stringify(config)),
    crash: (why) => {
      crashes.push(why);
      throw new Crashed(why);
    },
    log: (m) => logs.push(m),
  });
  return { files, crashes, logs };
}

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

test('eio fires after `after` matches, `count` times, only on matching paths and ranges', async () => {
  const memory = new MemoryReplicaFiles();
  const { files } = layer(memory, { rules: [{ op: 'write', type: 'eio', after: 1, count: 2, path: '.data', offsetBytes: 4096, lengthBytes: 4096 }] });
  await files.mkdir('/r');
  const data = await files.open('/r/a.data', 'create');
  const other = await files.open('/r/a.journal', 'create');
  await data.write(bytes(512, 1), 4096); // first match passes (after: 1)
  await data.write(bytes(512, 1), 0); // outside the range
  await other.write(bytes(512, 1), 4096); // another path
  await assert.rejects(data.write(bytes(512, 2), 4096 + 512), (e: NodeJS.ErrnoException) => e.code === 'EIO');
  await assert.rejects(data.write(bytes(8192, 2), 0), (e: NodeJS.ErrnoException) => e.code === 'EIO');
  await data.write(bytes(512, 3), 4096); // count exhausted
  const back = new Uint8Array(512);
  await data.read(back, 4096);
  assert.deepEqual(back, bytes(512, 3));
});

test('probability is seeded: the same seed fails the same operations', async () => {
  const run = async (seed: number): Promise<boolean[]> => {
    const { files } = layer(new MemoryReplicaFiles(), { seed, rules: [{ op: 'read', type: 'eio', probability: 0.3 }] });
    const f = await files.open('/x', 'create');
    const out: boolean[] = [];
    for (let i = 0; i < 40; i++) out.push(await f.read(new Uint8Array(8), 0).then(() => true, () => false));
    return out;
  };
  const a = await run(11);
  assert.deepEqual(await run(11), a);
  assert.ok(a.includes(false) && a.includes(true));
  assert.notDeepEqual(await run(12), a);
});

test('lose-unsynced: reads see unsynced writes; a crash loses them; synced ones stay', async () => {
  const memory = new MemoryReplicaFiles();
  const first = layer(memory, { loseUnsynced: true }).files;
  const f = await first.open('/f', 'create');
  await f.write(bytes(1024, 7), 0);
  await f.sync();
  await f.write(bytes(512, 9), 512);
  await f.write(bytes(512, 8), 4096);
  assert.equal(await f.sizeBytes(), 4608);
  const view = new Uint8Array(4608);
  assert.equal(await f.read(view, 0), 4608);
  assert.deepEqual(view.subarray(0, 1024), new Uint8Array([...bytes(512, 7), ...bytes(512, 9)]));
  assert.deepEqual(view.subarray(1024, 4096), bytes(3072, 0));
  // Another handle to the same path sees the same unsynced data.
  const again = new Uint8Array(512);
  await (await first.open('/f', 'write')).read(again, 4096);
  assert.deepEqual(again, bytes(512, 8));
  // The process dies: a new layer over the same files sees only what was synced.
  const after = await layer(memory, { loseUnsynced: true }).files.open('/f', 'read');
  const survived = new Uint8Array(4608);
  assert.equal(await after.read(survived, 0), 1024);
  assert.deepEqual(survived.subarray(0, 1024), bytes(1024, 7));
});

test('a failed sync drops the unsynced writes (fsyncgate); the retried sync succeeds without them', async () => {
  const memory = new MemoryReplicaFiles();
  const { files, logs } = layer(memory, { loseUnsynced: true, rules: [{ op: 'sync', type: 'eio', count: 1 }] });
  const f = await files.open('/f', 'create');
  await f.write(bytes(512, 5), 0);
  await assert.rejects(f.sync(), (e: NodeJS.ErrnoException) => e.code === 'EIO');
  await f.sync();
  const back = new Uint8Array(512).fill(1);
  await f.read(back, 0);
  assert.deepEqual(back, bytes(512, 0));
  assert.match(logs.join('\n'), /1 unsynced writes dropped/);
});

test('torn write: a whole-sector prefix reaches the file, then the process crashes', async () => {
  const memory = new MemoryReplicaFiles();
  const { files, crashes } = layer(memory, { loseUnsynced: true, rules: [{ op: 'write', type: 'torn', after: 1, tornBytes: 1500 }] });
  const f = await files.open('/f', 'create');
  await f.write(bytes(4096, 1), 0);
  await assert.rejects(f.write(bytes(4096, 2), 0), Crashed);
  assert.equal(crashes.length, 1);
  const back = new Uint8Array(4096);
  await (await memory.open('/f', 'read')).read(back, 0);
  // The unsynced first write is lost with the process; the torn prefix (2 sectors) is in the file.
  assert.deepEqual(back.subarray(0, 1024), bytes(1024, 2));
  assert.deepEqual(back.subarray(1024), bytes(3072, 0));
});

test('corrupt read flips bytes in the range only; latency delays', async () => {
  const memory = new MemoryReplicaFiles();
  const { files } = layer(memory, { seed: 3, rules: [{ op: 'read', type: 'corrupt', offsetBytes: 512, lengthBytes: 512 }, { op: 'read', type: 'latency', delayMs: 30 }] });
  const f = await files.open('/f', 'create');
  await f.write(bytes(2048, 4), 0);
  const back = new Uint8Array(2048);
  const started = performance.now();
  await f.read(back, 0);
  assert.ok(performance.now() - started >= 25);
  assert.deepEqual(back.subarray(0, 512), bytes(512, 4));
  assert.notDeepEqual(back.subarray(512, 1024), bytes(512, 4));
  assert.deepEqual(back.subarray(1024), bytes(1024, 4));
});

test('a configured fault point crashes a real store operation; the store reopens with the old chain', async () => {
  const memory = new MemoryReplicaFiles();
  const clock = new ManualClock();
  const { files, crashes } = layer(memory, { crashAtPoints: ['snapshot:head-created'] });
  const store = await createReplicaStore({ dir: '/r', files, clock, faultPoint: files.faultPoint, volumeName: 'v', sizeBytes: 1 << 20 });
  await store.write(0, bytes(4096, 6));
  await assert.rejects(store.snapshot({ name: 's1', kind: 'user' }), Crashed);
  assert.deepEqual(crashes, ['fault point snapshot:head-created']);
  const reopened = await openReplicaStore({ dir: '/r', files: memory, clock });
  assert.deepEqual(reopened.chain().snapshots.map((s) => s.name), []);
  assert.deepEqual(await reopened.read(0, 4096), bytes(4096, 6));
});

test('hostile configs are refused with a typed error naming the field', () => {
  const cases: [string, RegExp][] = [
    ['nope', /not JSON/],
    ['[]', /top level/],
    ['{"rules":[{"op":"write","type":"eio","probabilty":0.5}]}', /unknown field "probabilty"/],
    ['{"rules":[{"op":"fsync","type":"eio"}]}', /op must be one of/],
    ['{"rules":[{"op":"read","type":"torn"}]}', /torn applies to writes/],
    ['{"rules":[{"op":"write","type":"eio","probability":2}]}', /probability must be/],
    ['{"rules":[{"op":"write","type":"eio","after":-1}]}', /after must be/],
    ['{"crashAtPoints":["../x"]}', /crashAtPoints/],
    ['{"seed":1.5}', /seed must be an integer/],
    [`{"rules":[${Array(65).fill('{"op":"read","type":"eio"}').join(',')}]}`, /at most 64/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseFaultConfig(text), (e: unknown) => e instanceof ReplicaError && e.code === 'invalid_argument' && message.test(e.message), text);
  }
});

test('lose-unsynced: a read during a sync\'s write-out sees the unsynced data (neither stale file nor empty overlay)', async () => {
  const memory = new MemoryReplicaFiles();
  // The file write of the sync's write-out waits until released, as a slow disk would.
  let release = (): void => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  const bind = <T extends object>(target: T, prop: string | symbol): unknown => {
    const value: unknown = Reflect.get(target, prop);
    return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
  };
  const slow = new Proxy(memory, {
    get: (target, prop) => {
      if (prop !== 'open') return bind(target, prop);
      return async (path: string, mode: 'create' | 'read' | 'write') => {
        const file = await target.open(path, mode);
        return new Proxy(file, {
          get: (f, p) => (p === 'write' ? async (data: Uint8Array, at: number) => gate.then(() => f.write(data, at)) : bind(f, p)),
        });
      };
    },
  });
  const files = new FaultyReplicaFiles({ inner: slow, config: parseFaultConfig(JSON.stringify({ loseUnsynced: true })), crash: () => {}, log: () => {} });
  await files.mkdir('/r');
  const file = await files.open('/r/a.data', 'create');
  await file.write(bytes(512, 7), 0);
  const syncing = file.sync();
  const seen = new Uint8Array(512);
  await file.read(seen, 0);
  release();
  await syncing;
  assert.deepEqual(seen, bytes(512, 7), 'the read during the write-out saw the data');
  const after = new Uint8Array(512);
  await file.read(after, 0);
  assert.deepEqual(after, bytes(512, 7));
});
