// Backups and restores of a real volume through the engine's control API, on real processes:
// ext4 on a 3-replica volume (nbdfuse + loop) with files → snapshot s1 → full backup to Ceph RGW
// and to a directory → ~5 % of the data rewritten → s2 → incremental backups, whose uploaded
// blocks are compared with the 2 MiB blocks that really differ (measured on the device) → each
// backup restored into a new volume (new engine and replicas, POST /v1/restore) → bit for bit the
// snapshot's image, and the files' checksums. Then RGW is killed in the middle of a backup: the
// job ends in error, nothing lists as complete for it, and after RGW restarts the next backup
// succeeds and verifies. SEED=n replays the file contents.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { SeededRandom } from '../../src/lib/random.ts';
import { BackupStore } from '../../src/backup/backup-store.ts';
import { S3Target } from '../../src/backup/s3-target.ts';
import { verifyBackup } from '../../src/backup/verify-backup.ts';
import { compressBlock } from '../../src/backup/block-codec.ts';
import { startCephRgw, type CephRgw } from '../harness/ceph-rgw.ts';
import { run, stopAll, waitFor } from '../harness/daemon.ts';
import { attachLoop, startCluster, type Cluster } from '../harness/volume.ts';

const mib = 1024 * 1024;
const block = 2 * mib;
const sizeBytes = 64 * mib;
const volume = 'vol-bk';
const bucket = 'engine-backups';
const seed = Number(process.env['SEED'] ?? Date.now() % 100000);

interface Job {
  backupName: string;
  state: 'in_progress' | 'completed' | 'error';
  blocksDone: number;
  blocksTotal: number;
  transferBytes: number;
  newlyUploadedBytes?: number;
  blocksUploaded?: number;
  mode?: string;
  error?: string;
  backupURL?: string;
}

async function control(cluster: Cluster, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${cluster.engine.controlUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

async function finishedJob(cluster: Cluster, backupName: string): Promise<Job> {
  return waitFor(`backup ${backupName}`, async () => {
    const { status, json } = await control(cluster, 'GET', `/v1/backups/${backupName}`);
    assert.equal(status, 200, JSON.stringify(json));
    const job = json as unknown as Job;
    return job.state === 'in_progress' ? undefined : job;
  }, 120_000);
}

/** SHA-256 of each 2 MiB block of a device (read after umount: what the snapshot holds). */
async function blockHashes(device: string): Promise<string[]> {
  const handle = await open(device, 'r');
  try {
    const out: string[] = [];
    const buffer = Buffer.alloc(block);
    for (let at = 0; at < sizeBytes; at += block) {
      const { bytesRead } = await handle.read(buffer, 0, block, at);
      assert.equal(bytesRead, block);
      out.push(createHash('sha256').update(buffer).digest('hex'));
    }
    return out;
  } finally {
    await handle.close();
  }
}

async function readBlock(device: string, index: number): Promise<Uint8Array> {
  const handle = await open(device, 'r');
  try {
    const buffer = Buffer.alloc(block);
    const { bytesRead } = await handle.read(buffer, 0, block, index * block);
    assert.equal(bytesRead, block);
    return buffer;
  } finally {
    await handle.close();
  }
}

const zeroBlockHash = createHash('sha256').update(Buffer.alloc(block)).digest('hex');

describe('backups of a real volume through the engine', () => {
  let dir: string;
  let rgw: CephRgw;
  let cluster: Cluster;
  let s3Url: string;
  let vfsUrl: string;
  let credentials: Record<string, string>;
  before(async () => {
    console.log(`backup-engine: SEED=${seed}`);
    dir = await mkdtemp(join(tmpdir(), 'shorthorn-bk-'));
    rgw = await startCephRgw();
    const client = new S3Client({ region: 'us-east-1', endpoint: rgw.endpoint, forcePathStyle: true, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey } });
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    client.destroy();
    s3Url = `s3://${bucket}@us-east-1/cluster-a/`;
    vfsUrl = `vfs://${join(dir, 'vfs-target')}`;
    await mkdir(join(dir, 'vfs-target'));
    credentials = { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey, AWS_ENDPOINTS: rgw.endpoint };
    cluster = await startCluster({ dir: join(dir, 'source'), volume, sizeBytes, replicaCount: 3 });
  });
  after(async () => {
    await stopAll();
    await rgw?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test(`full and incremental backups to RGW and a directory restore into new volumes as each snapshot (SEED=${seed})`, async () => {
    const random = new SeededRandom(seed);
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    const files = ['a', 'b', 'c', 'd', 'e', 'f'];
    const sums = async (root: string): Promise<Record<string, string>> => {
      const out: Record<string, string> = {};
      for (const f of files) out[f] = createHash('sha256').update(await readFile(join(root, f))).digest('hex');
      return out;
    };
    const attachment = await attachLoop(cluster.engine.uri, join(dir, 'fuse'));
    const snapshots = new Map<string, { sums: Record<string, string>; blocks: string[] }>();
    try {
      await run('mkfs.ext4', ['-q', '-F', attachment.device]);
      await run('mount', [attachment.device, mnt]);
      for (const [i, f] of files.entries()) await writeFile(join(mnt, f), random.fill(new Uint8Array(3 * mib + i * 200_000)));
      const s1 = await sums(mnt);
      await run('umount', [mnt]);
      snapshots.set('s1', { sums: s1, blocks: await blockHashes(attachment.device) });
      assert.equal((await control(cluster, 'POST', '/v1/snapshots', { name: 's1' })).status, 200);

      // Hostile and conflicting requests get clear answers before anything runs.
      const bad = await control(cluster, 'POST', '/v1/backups', { backupName: '../x', snapshotName: 's1', targetURL: vfsUrl });
      assert.equal(bad.status, 400, JSON.stringify(bad.json));
      assert.equal((await control(cluster, 'POST', '/v1/backups', { backupName: 'bk', snapshotName: 's1', targetURL: 'vfs://relative' })).status, 400);
      assert.equal((await control(cluster, 'POST', '/v1/backups', { backupName: 'bk', snapshotName: 's1', targetURL: vfsUrl, bogus: 1 })).status, 400);
      assert.equal((await control(cluster, 'POST', '/v1/backups', { backupName: 'bk', snapshotName: 'nope', targetURL: vfsUrl })).status, 404);
      assert.equal((await control(cluster, 'GET', '/v1/backups/unknown')).status, 404);

      const full = new Map<string, Job>();
      for (const [target, url] of [['s3', s3Url], ['vfs', vfsUrl]] as const) {
        const started = await control(cluster, 'POST', '/v1/backups', { backupName: `${target}-full`, snapshotName: 's1', targetURL: url, credentials, labels: { test: 'e2e' } });
        assert.equal(started.status, 202, JSON.stringify(started.json));
        assert.deepEqual(started.json, { backupName: `${target}-full` }, 'the answer echoes no credentials');
        const job = await finishedJob(cluster, `${target}-full`);
        assert.equal(job.state, 'completed', job.error);
        assert.equal(job.mode, 'full');
        full.set(target, job);
      }

      // Rewrite ~5 % of the volume in place (3 MiB of one file), then s2.
      await run('mount', [attachment.device, mnt]);
      const handle = await open(join(mnt, 'c'), 'r+');
      await handle.write(random.fill(new Uint8Array(3 * mib)), 0, 3 * mib, 64 * 1024);
      await handle.close();
      const s2 = await sums(mnt);
      await run('umount', [mnt]);
      snapshots.set('s2', { sums: s2, blocks: await blockHashes(attachment.device) });
      assert.equal((await control(cluster, 'POST', '/v1/snapshots', { name: 's2' })).status, 200);
      const before = snapshots.get('s1')!.blocks;
      const after = snapshots.get('s2')!.blocks;
      const changed = [...after.keys()].filter((i) => after[i] !== before[i] && after[i] !== zeroBlockHash);
      const differing = changed.length;
      // What an incremental backup must upload: exactly these blocks, lz4-compressed (the backup
      // volume's method, set by its first backup).
      let expectedBytes = 0;
      for (const i of changed) expectedBytes += (await compressBlock('lz4', await readBlock(attachment.device, i))).length;

      for (const [target, url] of [['s3', s3Url], ['vfs', vfsUrl]] as const) {
        const started = await control(cluster, 'POST', '/v1/backups', { backupName: `${target}-inc`, snapshotName: 's2', targetURL: url, credentials });
        assert.equal(started.status, 202, JSON.stringify(started.json));
        assert.equal((await control(cluster, 'POST', '/v1/backups', { backupName: `${target}-inc`, snapshotName: 's2', targetURL: url, credentials })).status, 409, 'the same backup twice at once');
        const job = await finishedJob(cluster, `${target}-inc`);
        assert.equal(job.state, 'completed', job.error);
        assert.equal(job.mode, 'incremental');
        const fullJob = full.get(target)!;
        console.log(
          `${target}: full ${fullJob.blocksUploaded} blocks, ${fullJob.newlyUploadedBytes} B; incremental read ${job.blocksDone} blocks, uploaded ${job.blocksUploaded} blocks, ${job.newlyUploadedBytes} B; ${differing} non-zero 2 MiB blocks differ between s1 and s2 (${((differing * block * 100) / sizeBytes).toFixed(1)} % of the volume), ${expectedBytes} B compressed`,
        );
        // Every block that differs is uploaded (its content is new); blocks the layers name but whose
        // content did not change are read and found in the store, not uploaded again.
        assert.equal(job.blocksUploaded, differing, `uploaded blocks = differing blocks (SEED=${seed})`);
        assert.ok(job.blocksDone >= differing && job.blocksDone <= differing + 3, `read ${job.blocksDone} blocks for ${differing} changed`);
        assert.equal(job.newlyUploadedBytes, expectedBytes, `uploaded bytes = the changed blocks compressed (SEED=${seed})`);
        assert.equal(job.transferBytes, expectedBytes);
      }
    } finally {
      await attachment.detach();
    }

    // Restore each backup into a new volume and compare it with its snapshot.
    for (const [backupName, snapshot, url] of [['s3-full', 's1', s3Url], ['s3-inc', 's2', s3Url], ['vfs-full', 's1', vfsUrl], ['vfs-inc', 's2', vfsUrl]] as const) {
      const restoreDir = join(dir, `restore-${backupName}`);
      const target = await startCluster({ dir: restoreDir, volume: `r-${backupName}`, sizeBytes, replicaCount: 2 });
      const attached = backupName === 's3-full' ? await attachLoop(target.engine.uri, join(restoreDir, 'fuse0')) : undefined;
      if (attached !== undefined) {
        // A connected NBD client: the restore is refused.
        assert.equal((await control(target, 'POST', '/v1/restore', { targetURL: url, credentials, backupVolumeName: volume, backupName })).status, 409);
        await attached.detach();
      }
      const started = await waitFor('the restore to be accepted', async () => {
        const r = await control(target, 'POST', '/v1/restore', { targetURL: url, credentials, backupVolumeName: volume, backupName });
        return r.status === 409 ? undefined : r;
      });
      assert.equal(started.status, 202, JSON.stringify(started.json));
      const status = await waitFor(`restore of ${backupName}`, async () => {
        const { json } = await control(target, 'GET', '/v1/restore');
        return json['state'] === 'in_progress' ? undefined : json;
      }, 120_000);
      assert.equal(status['state'], 'completed', JSON.stringify(status));
      assert.equal(status['lastRestoredBackup'], backupName);
      const restored = await attachLoop(target.engine.uri, join(restoreDir, 'fuse'));
      try {
        assert.deepEqual(await blockHashes(restored.device), snapshots.get(snapshot)!.blocks, `${backupName} restores bit for bit to ${snapshot}`);
        await run('fsck.ext4', ['-fn', restored.device]);
        const restoredMnt = join(restoreDir, 'mnt');
        await mkdir(restoredMnt);
        await run('mount', ['-o', 'ro', restored.device, restoredMnt]);
        try {
          assert.deepEqual(await sums(restoredMnt), snapshots.get(snapshot)!.sums);
        } finally {
          await run('umount', [restoredMnt]);
        }
      } finally {
        await restored.detach();
      }
      for (const r of target.replicas) await r.daemon.stop();
      await target.engine.daemon.stop();
    }
  });

  test(`RGW killed mid-backup: the job ends in error, nothing lists as complete, the next backup succeeds (SEED=${seed})`, async () => {
    const random = new SeededRandom(seed + 1);
    // New data over most of the volume so that a full backup takes many uploads.
    const attachment = await attachLoop(cluster.engine.uri, join(dir, 'fuse'));
    try {
      const mnt = join(dir, 'mnt');
      await run('mount', [attachment.device, mnt]);
      await writeFile(join(mnt, 'big'), random.fill(new Uint8Array(24 * mib)));
      await run('umount', [mnt]);
    } finally {
      await attachment.detach();
    }
    assert.equal((await control(cluster, 'POST', '/v1/snapshots', { name: 's3' })).status, 200);
    const started = await control(cluster, 'POST', '/v1/backups', { backupName: 's3-kill', snapshotName: 's3', targetURL: s3Url, credentials, mode: 'full', concurrency: 1 });
    assert.equal(started.status, 202, JSON.stringify(started.json));
    // Poll for the condition "a few blocks are up" quickly: the backup takes about a second.
    let killedAt: Job | undefined;
    const deadline = Date.now() + 60_000;
    while (killedAt === undefined && Date.now() < deadline) {
      const job = (await control(cluster, 'GET', '/v1/backups/s3-kill')).json as unknown as Job;
      assert.equal(job.state, 'in_progress', `the backup was still running when it was to be cut off: ${JSON.stringify(job)}`);
      if (job.blocksDone >= 2) {
        await rgw.killRgw();
        killedAt = job;
      } else {
        await new Promise((resolve) => setTimeout(resolve, 5)); // poll interval
      }
    }
    assert.ok(killedAt !== undefined, 'RGW was killed during the backup');
    const failed = await finishedJob(cluster, 's3-kill');
    console.log(`RGW killed after ${killedAt.blocksDone}/${killedAt.blocksTotal} blocks; the job: ${failed.state}: ${failed.error ?? ''}`);
    assert.equal(failed.state, 'error');
    assert.ok(failed.error !== undefined && !failed.error.includes(rgw.secretAccessKey), 'an error, without the secret');
    // Purge is free again once the backup is over (the pin is released).
    assert.equal((await control(cluster, 'POST', '/v1/snapshots/purge')).status, 200);

    await rgw.startRgw();
    const target = await S3Target.open({ bucket, region: 'us-east-1', prefix: 'cluster-a', endpoint: rgw.endpoint, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey } });
    try {
      const store = new BackupStore(target);
      const paths = await store.paths(volume);
      const complete = (await store.listBackups(paths)).filter((b) => b.state === 'complete').map((b) => b.name);
      assert.deepEqual(complete.sort(), ['s3-full', 's3-inc']);
      const next = await control(cluster, 'POST', '/v1/backups', { backupName: 's3-after', snapshotName: 's3', targetURL: s3Url, credentials });
      assert.equal(next.status, 202, JSON.stringify(next.json));
      const job = await finishedJob(cluster, 's3-after');
      assert.equal(job.state, 'completed', job.error);
      assert.equal((await verifyBackup(store, { volumeName: volume, backupName: 's3-after' })).ok, true);
      const listed = (await control(cluster, 'GET', '/v1/backups')).json['backups'] as Job[];
      assert.deepEqual(listed.map((j) => `${j.backupName}:${j.state}`).sort(), ['s3-after:completed', 's3-full:completed', 's3-inc:completed', 's3-kill:error', 'vfs-full:completed', 'vfs-inc:completed']);
    } finally {
      await target.close();
    }
  });
});
