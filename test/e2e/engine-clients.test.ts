// A 3-replica volume of real processes (three `shorthorn replica`, one `shorthorn engine`) judged
// by clients we did not write: nbdinfo, qemu-io, nbdcopy, fio, and ext4 through nbdfuse + loop.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeededRandom } from '../../src/lib/random.ts';
import { run, stopAll } from '../harness/daemon.ts';
import { attachLoop, engineStatus, startCluster, type Cluster } from '../harness/volume.ts';

const mib = 1024 * 1024;
const sizeBytes = 512 * mib;

describe('a 3-replica volume through real NBD clients', () => {
  let dir = '';
  let cluster: Cluster;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shorthorn-e2e-clients-'));
    cluster = await startCluster({ dir, volume: 'vol-e2e', sizeBytes, replicaCount: 3 });
  });

  after(async () => {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  });

  test('nbdinfo reports the size and capabilities', async () => {
    const { stdout } = await run('nbdinfo', ['--json', cluster.engine.uri]);
    const info = JSON.parse(stdout) as { exports: Record<string, unknown>[] };
    const exp = info.exports[0]!;
    assert.equal(exp['export-size'], sizeBytes);
    assert.equal(exp['can_flush'], true);
    assert.equal(exp['can_fua'], true);
    assert.equal(exp['can_trim'], true);
    assert.equal(exp['can_zero'], true);
    assert.equal(exp['can_multi_conn'], true);
    assert.equal(exp['block_size_minimum'], 512);
    assert.equal(exp['block_size_preferred'], 4096);
    const status = await engineStatus(cluster.engine);
    assert.deepEqual(status.replicas.map((r) => r.mode), ['rw', 'rw', 'rw']);
  });

  test('qemu-io writes patterns at random offsets, 512-byte unaligned included, and reads them back', async () => {
    const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);
    const random = new SeededRandom(seed);
    const writes: string[] = [];
    const reads: string[] = [];
    // Non-overlapping slots of 64 KiB, each written once at a 512-byte-aligned offset inside it.
    const slots = new Set<number>();
    while (slots.size < 40) slots.add(random.int(sizeBytes / (64 * 1024)));
    for (const slot of slots) {
      const offset = slot * 64 * 1024 + 512 * random.int(64);
      const length = 512 * (1 + random.int(64));
      const pattern = 1 + random.int(254);
      writes.push('-c', `write -P ${pattern} ${offset} ${Math.min(length, slot * 64 * 1024 + 64 * 1024 - offset)}`);
      reads.push('-c', `read -P ${pattern} ${offset} ${Math.min(length, slot * 64 * 1024 + 64 * 1024 - offset)}`);
    }
    await run('qemu-io', ['-f', 'raw', ...writes, cluster.engine.uri]);
    const { stdout } = await run('qemu-io', ['-f', 'raw', ...reads, cluster.engine.uri]);
    assert.doesNotMatch(stdout, /Pattern verification failed|error/i, `SEED=${seed}`);
    assert.equal(stdout.match(/^read /gm)?.length, 40, `SEED=${seed}`);
  });

  test('nbdcopy copies 256 MiB in and out with equal checksums', async () => {
    const input = join(dir, 'in.bin');
    const output = join(dir, 'out.bin');
    const random = new SeededRandom(256);
    const data = random.fill(new Uint8Array(256 * mib));
    await writeFile(input, data);
    await run('nbdcopy', [input, cluster.engine.uri]);
    await run('nbdcopy', [cluster.engine.uri, output]);
    const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
    const copied = await readFile(output);
    assert.equal(copied.length, sizeBytes);
    assert.equal(sha(copied.subarray(0, 256 * mib)), sha(data));
    await rm(input);
    await rm(output);
  });

  test('fio with verify=crc32c finds every block it wrote', async () => {
    const { stdout } = await run('fio', [
      '--name=verify',
      '--ioengine=nbd',
      `--uri=${cluster.engine.uri}`,
      '--rw=randwrite',
      '--bs=4k',
      '--iodepth=16',
      '--offset=300M',
      '--size=32M',
      '--verify=crc32c',
      '--do_verify=1',
      '--verify_state_save=0',
      '--output-format=json',
    ]);
    const result = JSON.parse(stdout.slice(stdout.indexOf('{'))) as { jobs: { error: number; write: { io_bytes: number } }[] };
    assert.equal(result.jobs[0]?.error, 0);
    assert.equal(result.jobs[0]?.write.io_bytes, 32 * mib);
  });

  test('ext4 through nbdfuse + loop: mkfs, files, fsck clean, remount, checksums equal', async () => {
    const attachment = await attachLoop(cluster.engine.uri, join(dir, 'fuse'));
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    const expected = new Map<string, string>();
    try {
      await run('mkfs.ext4', ['-q', '-F', attachment.device]);
      await run('mount', [attachment.device, mnt]);
      const random = new SeededRandom(4);
      for (let i = 0; i < 20; i++) {
        const sub = join(mnt, `d${i % 4}`);
        await mkdir(sub, { recursive: true });
        const data = random.fill(new Uint8Array(1 + random.int(300_000)));
        const path = join(sub, `f${i}`);
        await writeFile(path, data);
        expected.set(path, createHash('sha256').update(data).digest('hex'));
      }
      await run('umount', [mnt]);
      // fsck exits non-zero (and run() rejects) when it finds anything to fix.
      const fsck = await run('fsck.ext4', ['-fn', attachment.device]);
      assert.match(fsck.stdout, / files \(/);
      await run('mount', [attachment.device, mnt]);
      for (const [path, digest] of expected) {
        assert.equal(createHash('sha256').update(await readFile(path)).digest('hex'), digest, path);
      }
    } finally {
      await run('umount', [mnt], { allowFailure: true });
      await attachment.detach();
    }
  });
});
