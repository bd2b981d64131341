import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../lib/random.ts';
import { MemoryReplicaFiles } from './memory-replica-files.ts';

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

test('MemoryReplicaFiles.crash() keeps synced data and synced directory entries only', async () => {
  const files = new MemoryReplicaFiles();
  await files.mkdir('/d');
  const a = await files.open('/d/a', 'create');
  await a.write(bytes(1, 2, 3), 0);
  await a.sync();
  await files.syncDir('/d');
  await a.write(bytes(9), 1); // not synced
  const b = await files.open('/d/b', 'create'); // entry not synced
  await b.write(bytes(4), 0);
  await b.sync();
  files.crash();
  assert.deepEqual(files.peek('/d/a'), bytes(1, 2, 3));
  assert.equal(files.peek('/d/b'), undefined);
  await assert.rejects(a.read(new Uint8Array(1), 0), { code: 'EIO' }, 'handles from before the crash are dead');
});

test('MemoryReplicaFiles.crash({ random }) keeps a subset of unsynced writes, some torn, never other bytes', async () => {
  for (let seed = 0; seed < 50; seed++) {
    const files = new MemoryReplicaFiles();
    await files.mkdir('/d');
    const f = await files.open('/d/f', 'create');
    await f.write(new Uint8Array(4096).fill(1), 0);
    await f.sync();
    await files.syncDir('/d');
    await f.write(new Uint8Array(4096).fill(2), 0);
    files.crash({ random: new SeededRandom(seed), tearProbability: 0.5 });
    const after = files.peek('/d/f')!;
    for (let s = 0; s < 8; s++) {
      const sector = after.subarray(s * 512, (s + 1) * 512);
      assert.ok(sector.every((x) => x === sector[0]) && (sector[0] === 1 || sector[0] === 2), `seed ${seed}: sector ${s} mixed`);
    }
  }
});

test('MemoryReplicaFiles injects EIO and ENOSPC, and halts after N operations', async () => {
  const files = new MemoryReplicaFiles();
  await files.mkdir('/d');
  const f = await files.open('/d/f', 'create');
  files.injectFault({ op: 'write', errno: 'ENOSPC', after: 1 });
  await f.write(bytes(1), 0);
  await assert.rejects(f.write(bytes(1), 0), { code: 'ENOSPC' });
  await f.write(bytes(1), 0);
  files.injectFault({ op: 'sync', pathIncludes: '/d/f', errno: 'EIO' });
  await assert.rejects(f.sync(), { code: 'EIO' });
  files.haltAfter(1);
  await f.write(bytes(2), 0);
  await assert.rejects(f.write(bytes(3), 0), { code: 'EIO' });
  await assert.rejects(files.list('/d'), { code: 'EIO' });
});
