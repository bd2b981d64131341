// A real filesystem on our NBD server: nbdfuse exposes the export as a file, and losetup makes it a
// block device, then mkfs.ext4, mount, a tree of files, umount, fsck, remount, compare checksums.
// The server runs in a child process: the kernel's I/O on the loop device comes back through
// FUSE, and must never wait on this test's event loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { SeededRandom } from '../../src/lib/random.ts';
import { repoRoot, run, startDaemon, stopAll, waitFor, withTempDir } from '../harness/daemon.ts';

const serverScript = join(repoRoot, 'dist/test/harness/nbd-memory-server.js');

async function unavailable(): Promise<string | undefined> {
  for (const path of ['/dev/fuse', '/dev/loop-control']) {
    try {
      await access(path);
    } catch {
      return `${path} is not available here`;
    }
  }
  return undefined;
}

async function checksumTree(root: string): Promise<Map<string, string>> {
  const sums = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.name === 'lost+found') continue;
      if (entry.isDirectory()) await walk(full);
      else sums.set(relative(root, full), createHash('sha256').update(await readFile(full)).digest('hex'));
    }
  };
  await walk(root);
  return sums;
}

test('ext4 on nbdfuse + loop over the NBD server: mkfs, write, fsck clean, remount, same data', async (t) => {
  const reason = await unavailable();
  if (reason !== undefined) {
    t.skip(`skipped: ${reason} (needs FUSE and loop devices)`);
    return;
  }
  const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);
  await withTempDir('nbd-ext4', async (dir) => {
    const socket = join(dir, 'nbd.sock');
    const fuseDir = join(dir, 'fuse');
    const mountDir = join(dir, 'ext4');
    await mkdir(fuseDir);
    await mkdir(mountDir);
    let nbdfuse: ChildProcess | undefined;
    let loop: string | undefined;
    let mounted = false;
    try {
      await startDaemon({
        args: [serverScript, '--socket', socket, '--size', String(256 * 1024 * 1024)],
        readyPattern: /nbd-ready/,
        command: process.execPath,
      });
      // nbdfuse stays in the foreground; it owns the FUSE mount until fusermount3 -u.
      const fuse = spawn('nbdfuse', [fuseDir, `nbd+unix:///?socket=${socket}`], { stdio: ['ignore', 'ignore', 'pipe'] });
      nbdfuse = fuse;
      let fuseErrors = '';
      fuse.stderr.on('data', (c: Buffer) => (fuseErrors += c.toString()));
      await waitFor(`nbdfuse to expose ${fuseDir}/nbd (${fuseErrors})`, async () => {
        if (fuse.exitCode !== null) throw new Error(`nbdfuse exited with ${fuse.exitCode}: ${fuseErrors}`);
        try {
          return (await stat(join(fuseDir, 'nbd'))).size === 256 * 1024 * 1024 ? true : undefined;
        } catch {
          return undefined;
        }
      });
      loop = (await run('losetup', ['-f', '--show', join(fuseDir, 'nbd')])).stdout.trim();
      assert.match(loop, /^\/dev\/loop\d+$/);
      // mkfs discards the whole device first: TRIM goes all the way to the memory device.
      await run('mkfs.ext4', ['-q', '-F', loop]);
      await run('mount', [loop, mountDir]);
      mounted = true;

      const random = new SeededRandom(seed);
      for (let d = 0; d < 6; d++) {
        const sub = join(mountDir, `dir-${d}`, `nested-${d % 2}`);
        await mkdir(sub, { recursive: true });
        for (let f = 0; f < 8; f++) {
          const size = random.next() < 0.2 ? 1 + random.int(3 * 1024 * 1024) : random.int(20_000);
          await writeFile(join(sub, `file-${f}.bin`), random.fill(new Uint8Array(size)));
        }
      }
      const written = await checksumTree(mountDir);
      assert.equal(written.size, 48);
      let fileBytes = 0;
      for (const path of written.keys()) fileBytes += (await stat(join(mountDir, path))).size;

      await run('umount', [mountDir]);
      mounted = false;
      // The files really went through the NBD server: it now holds at least that much data.
      const totals = await run('nbdinfo', ['--map', '--totals', `nbd+unix:///?socket=${socket}`]);
      const data = /^\s*(\d+)\s+[\d.]+%\s+0\s+data/m.exec(totals.stdout);
      assert.ok(data !== null && Number(data[1]) >= fileBytes, `${fileBytes} bytes of files, server map:\n${totals.stdout}`);
      const fsck = await run('fsck.ext4', ['-fn', loop], { allowFailure: true });
      assert.equal(fsck.code, 0, `fsck.ext4 -fn found problems:\n${fsck.stdout}\n${fsck.stderr}`);

      await run('mount', [loop, mountDir]);
      mounted = true;
      // Drop the page cache so the comparison reads through the loop device and NBD again.
      await run('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'], { allowFailure: true });
      assert.deepEqual(await checksumTree(mountDir), written);
    } catch (error) {
      throw new Error(`ext4 test failed; replay with SEED=${seed}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    } finally {
      if (mounted) await run('umount', [mountDir], { allowFailure: true });
      if (loop !== undefined) await run('losetup', ['-d', loop], { allowFailure: true });
      if (nbdfuse !== undefined) {
        await run('fusermount3', ['-u', fuseDir], { allowFailure: true });
        const child = nbdfuse;
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM');
          await exited;
        }
      }
      await stopAll();
    }
  });
});
