// The node agent reads a replica's durable record (epoch, generation, members) straight from its
// metadata file, without src/replica (agent/replica-record.ts). Checked here against files a real
// replica store wrote: the record after acceptEpoch and setMembership, a cached re-read, a new
// commit seen, a corrupted file reported (never a guess), no file yet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ReplicaRecordReader, replicaMetaFileName } from '../../src/agent/replica-record.ts';
import { systemClock } from '../../src/bin/system-clock.ts';
import { createReplicaStore } from '../../src/replica/layered-store.ts';
import { NodeReplicaFiles } from '../../src/replica/node/node-replica-files.ts';
import { withTempDir } from '../harness/daemon.ts';

test('the agent reads epoch, generation and members from what a replica store committed', async () => {
  await withTempDir('replica-record', async (dir) => {
    const reader = new ReplicaRecordReader();
    assert.equal(await reader.read(dir), undefined, 'no metadata yet');
    const store = await createReplicaStore({ dir, files: new NodeReplicaFiles(), clock: systemClock, volumeName: 'v', sizeBytes: 1024 * 1024 });
    try {
      await store.acceptEpoch(7);
      await store.setMembership({ generation: 3, members: ['127.0.0.1:1#a', '127.0.0.1:2#b'] });
      assert.deepEqual(await reader.read(dir), { epoch: 7, generation: 3, members: ['127.0.0.1:1#a', '127.0.0.1:2#b'] });
      assert.deepEqual(await reader.read(dir), { epoch: 7, generation: 3, members: ['127.0.0.1:1#a', '127.0.0.1:2#b'] }, 'cached');
      await store.setMembership({ generation: 4, members: ['127.0.0.1:1#a'] });
      assert.deepEqual(await reader.read(dir), { epoch: 7, generation: 4, members: ['127.0.0.1:1#a'] }, 'a new commit is seen');
    } finally {
      await store.close();
    }
    const path = join(dir, replicaMetaFileName);
    const bytes = await readFile(path);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 2) ^ 0x20, bytes.length - 2);
    await writeFile(path, bytes);
    const corrupt = await reader.read(dir);
    assert.ok(corrupt !== undefined && 'problem' in corrupt && /checksum/.test(corrupt.problem), JSON.stringify(corrupt));
  });
});
