// Volume snapshots with real clients: ext4 on a 3-replica volume through nbdfuse + loop; files,
// snapshot s1, changed files, snapshot s2; revert to s1 (refused while a client is attached),
// the files match s1's checksums; s2 deleted and purged while fio --verify runs; the tree is right.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeededRandom } from '../../src/lib/random.ts';
import { run, stopAll, waitFor } from '../harness/daemon.ts';
import { attachLoop, startCluster, type Cluster } from '../harness/volume.ts';

const mib = 1024 * 1024;
const sizeBytes = 256 * mib;
const seed = Number(process.env['SEED'] ?? Date.now() % 100000);

interface Tree {
  snapshots: { name: string; parent: string | null; children: string[]; removed: boolean; userCreated: boolean; sizeBytes: number }[];
  head: { parent: string | null };
}

async function control(cluster: Cluster, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${cluster.engine.controlUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: response.status, json: await response.json() };
}

describe('snapshots of an ext4 volume', () => {
  let dir: string;
  let cluster: Cluster;
  before(async () => {
    console.log(`snapshots-ext4: SEED=${seed}`);
    dir = await mkdtemp(join(tmpdir(), 'shorthorn-snap-'));
    cluster = await startCluster({ dir, volume: 'vol-snap', sizeBytes, replicaCount: 3 });
  });
  after(async () => {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  });

  test('revert to s1 restores s1 files; purge of s2 under fio --verify; tree', async () => {
    const random = new SeededRandom(seed);
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    const sums = async (): Promise<Map<string, string>> => {
      const out = new Map<string, string>();
      for (let i = 0; i < 6; i++) out.set(`f${i}`, createHash('sha256').update(await readFile(join(mnt, `f${i}`))).digest('hex'));
      return out;
    };
    let attachment = await attachLoop(cluster.engine.uri, join(dir, 'fuse'));
    let s1: Map<string, string>;
    try {
      await run('mkfs.ext4', ['-q', '-F', attachment.device]);
      await run('mount', [attachment.device, mnt]);
      for (let i = 0; i < 6; i++) await writeFile(join(mnt, `f${i}`), random.fill(new Uint8Array((i + 1) * 300_000)));
      await run('umount', [mnt]);
      await run('mount', [attachment.device, mnt]);
      s1 = await sums();
      await run('umount', [mnt]);
      assert.equal((await control(cluster, 'POST', '/v1/snapshots', { name: 's1' })).status, 200);
      await run('mount', [attachment.device, mnt]);
      for (let i = 0; i < 6; i += 2) await writeFile(join(mnt, `f${i}`), random.fill(new Uint8Array(200_000)));
      await run('umount', [mnt]);
      assert.equal((await control(cluster, 'POST', '/v1/snapshots', { name: 's2' })).status, 200);
      // A client is attached: revert is refused.
      assert.equal((await control(cluster, 'POST', '/v1/snapshots/revert', { name: 's1' })).status, 409);
    } finally {
      await attachment.detach();
    }
    // The engine notices the client's hang-up on its own time: wait until revert is no longer refused for it.
    const unknown = await waitFor('the NBD client to be gone', async () => {
      const { status } = await control(cluster, 'POST', '/v1/snapshots/revert', { name: 'nope' });
      return status === 409 ? undefined : status;
    });
    assert.equal(unknown, 400);
    assert.equal((await control(cluster, 'POST', '/v1/snapshots/revert', { name: '../x' })).status, 400);
    const reverted = await control(cluster, 'POST', '/v1/snapshots/revert', { name: 's1' });
    assert.equal(reverted.status, 200, JSON.stringify(reverted.json));
    attachment = await attachLoop(cluster.engine.uri, join(dir, 'fuse'));
    try {
      await run('fsck.ext4', ['-fn', attachment.device]);
      await run('mount', [attachment.device, mnt]);
      assert.deepEqual(await sums(), s1);
      await run('umount', [mnt]);
    } finally {
      await attachment.detach();
    }
    let tree = (await control(cluster, 'GET', '/v1/snapshots')).json as Tree;
    assert.deepEqual(tree.snapshots.map((s) => [s.name, s.parent, s.children]), [['s1', null, ['s2', 'volume-head']], ['s2', 's1', []]]);
    assert.equal(tree.head.parent, 's1');

    // Delete s2 and purge it while fio writes and verifies past the filesystem's data.
    assert.equal((await control(cluster, 'DELETE', '/v1/snapshots/s2')).status, 200);
    assert.equal((await control(cluster, 'DELETE', '/v1/snapshots/..%2Fx')).status, 400);
    const fio = run('fio', ['--name=v', '--ioengine=nbd', `--uri=${cluster.engine.uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=16', '--offset=200M', '--size=32M', '--verify=crc32c', '--do_verify=1', '--verify_state_save=0', '--output-format=json']);
    const purged = await control(cluster, 'POST', '/v1/snapshots/purge');
    assert.equal(purged.status, 200, JSON.stringify(purged.json));
    const result = JSON.parse((await fio).stdout.replace(/^[^{]*/, '')) as { jobs: { error: number }[] };
    assert.equal(result.jobs[0]?.error, 0);
    tree = purged.json as Tree;
    assert.deepEqual(tree.snapshots.map((s) => s.name), ['s1']);
    assert.equal(tree.snapshots[0]?.userCreated, true);
    attachment = await attachLoop(cluster.engine.uri, join(dir, 'fuse'));
    try {
      await run('mount', [attachment.device, mnt]);
      assert.deepEqual(await sums(), s1);
      await run('umount', [mnt]);
    } finally {
      await attachment.detach();
    }
  });
});
