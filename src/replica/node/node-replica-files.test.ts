// The production file driver on a real file system, in both of its modes: with the
// shorthorn_file_io addon (page-cache reads on the event loop, batched pool I/O) and with node:fs
// alone (what runs where the addon is missing). On Linux the addon must be loaded: a build that
// lost it fails here instead of running slower unnoticed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open as openFd, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeededRandom } from '../../lib/random.ts';
import { nativeFileIo, type NativeFileIo } from './native-file-io.ts';
import { fileBatchOpsMax, NodeReplicaFiles } from './node-replica-files.ts';

function addon(): NativeFileIo {
  const load = nativeFileIo();
  assert.equal(load.kind, 'loaded', load.kind === 'absent' ? `the addon did not load: ${load.reason}` : '');
  return (load as { io: NativeFileIo }).io;
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'shorthorn-node-files-'));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('the shorthorn_file_io addon is loaded on this machine and the default driver uses it', { skip: process.platform !== 'linux' }, () => {
  addon();
  const files = new NodeReplicaFiles();
  assert.equal(files.fileIo().kind, 'native');
});

const modes = [
  { name: 'addon', make: () => new NodeReplicaFiles({ native: addon() }) },
  { name: 'node:fs only (the fallback)', make: () => new NodeReplicaFiles({ native: null }) },
] as const;

for (const mode of modes) {
  test(`${mode.name}: concurrent random writes and reads match a model, short reads at the end of the file`, async () => {
    const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);
    const random = new SeededRandom(seed);
    try {
      await withDir(async (dir) => {
        const files = mode.make();
        const file = await files.open(join(dir, 'data'), 'create');
        const sizeBytes = 4 * 1024 * 1024;
        const model = new Uint8Array(sizeBytes);
        await file.truncate(sizeBytes);
        for (let round = 0; round < 6; round++) {
          // More writes in one turn than one batch holds, at disjoint block-aligned places (the
          // store never has two writes to the same block in flight).
          const blocks = new Set<number>();
          while (blocks.size < 3 * fileBatchOpsMax) blocks.add(random.int(sizeBytes / 4096 - 4));
          const writes = [...blocks].map((block) => {
            const data = new Uint8Array(4096 * (1 + random.int(2)));
            for (let i = 0; i < data.length; i += 97) data[i] = random.int(256);
            return { position: block * 4096, data };
          });
          // Writes are 1 or 2 blocks: drop any that overlaps an earlier one of this round.
          const taken = new Set<number>();
          const kept = writes.filter((w) => {
            const first = w.position / 4096;
            const last = first + w.data.length / 4096 - 1;
            if (taken.has(first) || taken.has(last)) return false;
            taken.add(first);
            taken.add(last);
            return true;
          });
          await Promise.all(kept.map((w) => file.write(w.data, w.position)));
          for (const w of kept) model.set(w.data, w.position);
          const reads = Array.from({ length: 100 }, () => {
            const position = random.int(sizeBytes - 70_000);
            return { position, target: new Uint8Array(1 + random.int(65_536)) };
          });
          const counts = await Promise.all(reads.map((r) => file.read(r.target, r.position)));
          reads.forEach((r, i) => {
            assert.equal(counts[i], r.target.length);
            assert.deepEqual(r.target, model.subarray(r.position, r.position + r.target.length), `read at ${r.position}`);
          });
        }
        // Reads past the end of the file are short, at it empty.
        const end = await file.sizeBytes();
        assert.equal(end, sizeBytes);
        const tail = new Uint8Array(10_000);
        assert.equal(await file.read(tail, end - 100), 100);
        assert.deepEqual(tail.subarray(0, 100), model.subarray(end - 100, end));
        assert.equal(await file.read(tail, end), 0);
        assert.equal(await file.read(new Uint8Array(0), 0), 0);
        await file.write(new Uint8Array(0), 0);
        await file.close();
        const io = files.fileIo();
        if (io.kind === 'native') {
          assert.ok(io.counters.nowaitReads > 0, 'cached reads are answered on the event loop');
          assert.ok(io.counters.batches > 0 && io.counters.batches < io.counters.batchedOps, `writes share batches: ${JSON.stringify(io.counters)}`);
        }
      });
    } catch (error) {
      console.error(`node-replica-files test (${mode.name}) failed: SEED=${seed}`);
      throw error;
    }
  });

  test(`${mode.name}: a failed read or write rejects with Node's error code`, async () => {
    await withDir(async (dir) => {
      const files = mode.make();
      const path = join(dir, 'ro');
      await (await files.open(path, 'create')).close();
      const readOnly = await files.open(path, 'read');
      await assert.rejects(readOnly.write(new Uint8Array(4096), 0), { code: 'EBADF' });
      await readOnly.close();
      await assert.rejects(files.open(join(dir, 'missing'), 'read'), { code: 'ENOENT' });
    });
  });
}

test('addon: a read that would wait for the disk goes to the pool and returns the right bytes', { skip: process.platform !== 'linux' }, async () => {
  await withDir(async (dir) => {
    const files = new NodeReplicaFiles({ native: addon() });
    const path = join(dir, 'cold');
    const file = await files.open(path, 'create');
    const data = new Uint8Array(1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    await file.write(data, 0);
    await file.sync();
    // Evict the (clean) pages through another descriptor: the page cache belongs to the file.
    const other = await openFd(path, 'r');
    try {
      assert.equal(addon().dropCache(other.fd), 0);
    } finally {
      await other.close();
    }
    const io = files.fileIo();
    assert.equal(io.kind, 'native');
    const missesBefore = io.counters.nowaitMisses;
    const target = new Uint8Array(256 * 1024);
    assert.equal(await file.read(target, 512 * 1024), target.length);
    assert.deepEqual(target, data.subarray(512 * 1024, 768 * 1024));
    assert.ok(io.counters.nowaitMisses > missesBefore, 'the uncached read was not answered on the event loop');
    await file.close();
  });
});

test('addon: submit refuses malformed batches before touching any file', { skip: process.platform !== 'linux' }, () => {
  const io = addon();
  const done = (): void => assert.fail('no batch should run');
  assert.throws(() => io.submit(false, [], new Float64Array(0), done), TypeError);
  assert.throws(() => io.submit(false, [new Uint8Array(1)], new Float64Array(1), done), TypeError);
  assert.throws(() => io.submit(false, [new Uint8Array(1)], new Float64Array([0, -1]), done), TypeError);
  assert.throws(() => io.submit(false, [new Uint16Array(1) as unknown as Uint8Array], new Float64Array([0, 0]), done), TypeError);
  assert.throws(() => io.submit(false, new Array<Uint8Array>(io.batchMax + 1).fill(new Uint8Array(1)), new Float64Array(2 * (io.batchMax + 1)), done), TypeError);
  assert.throws(() => io.preadNowait(0, new Uint8Array(1), -1), TypeError);
});

test('addon: a file whose file system refuses RWF_NOWAIT stops trying it and reads through the pool', { skip: process.platform !== 'linux' }, async () => {
  await withDir(async (dir) => {
    const real = addon();
    let nowaitCalls = 0;
    const refusing: NativeFileIo = {
      preadNowait: () => {
        nowaitCalls++;
        return -95; // EOPNOTSUPP
      },
      submit: (isWrite, buffers, fdAndPosition, done) => real.submit(isWrite, buffers, fdAndPosition, done),
      dropCache: (fd) => real.dropCache(fd),
      batchMax: real.batchMax,
    };
    const files = new NodeReplicaFiles({ native: refusing });
    const file = await files.open(join(dir, 'f'), 'create');
    const data = new Uint8Array(8192).map((_, i) => i & 0xff);
    await file.write(data, 0);
    for (let i = 0; i < 5; i++) {
      const target = new Uint8Array(4096);
      assert.equal(await file.read(target, 4096), 4096);
      assert.deepEqual(target, data.subarray(4096));
    }
    assert.equal(nowaitCalls, 1);
    await file.close();
  });
});

test('addon: writes larger than a 128 KiB piece, at offsets off the piece boundaries, land whole', { skip: process.platform !== 'linux' }, async () => {
  // The addon cuts writes at 128 KiB boundaries of the file (native/file_io.c); every cut must
  // take the right bytes from the right place.
  await withDir(async (dir) => {
    const files = new NodeReplicaFiles({ native: addon() });
    const path = join(dir, 'pieces');
    const file = await files.open(path, 'create');
    const model = new Uint8Array(3 * 1024 * 1024);
    const cases = [
      { position: 0, length: 1024 * 1024 },
      { position: 128 * 1024 - 1000, length: 1024 * 1024 + 777 },
      { position: 3, length: 300 * 1024 },
      { position: 2 * 1024 * 1024 + 5, length: 128 * 1024 },
    ];
    let seed = 1;
    for (const c of cases) {
      const data = new Uint8Array(c.length);
      for (let i = 0; i < data.length; i++) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        data[i] = seed >>> 24;
      }
      await file.write(data, c.position);
      model.set(data, c.position);
    }
    const end = Math.max(...cases.map((c) => c.position + c.length));
    assert.equal(await file.sizeBytes(), end);
    const back = new Uint8Array(end);
    assert.equal(await file.read(back, 0), end);
    assert.ok(Buffer.compare(back, model.subarray(0, end)) === 0, 'file content differs from the model');
    await file.close();
  });
});
