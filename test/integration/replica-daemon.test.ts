// The replica daemon as a process: creates a replica in an empty directory, serves it over TCP
// and a unix socket, stops cleanly on SIGTERM, reopens the same directory with the data and the
// chain intact, refuses to open it as another volume, and keeps serving after a hostile client.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { connectReplica } from '../../src/engine/replica-client.ts';
import { startDaemon, stopAll, withTempDir, run, shorthornBin } from '../harness/daemon.ts';

after(stopAll);

const volumeName = 'daemon-vol';

function replicaArgs(dir: string, extra: string[] = []): string[] {
  return ['replica', '--dir', join(dir, 'r'), '--listen', '127.0.0.1:0', '--unix', join(dir, 'r.sock'), ...extra];
}

const ready = /listening on 127\.0\.0\.1:(\d+) and unix (\S+)/;

test('shorthorn replica creates, serves over TCP and unix, stops cleanly and reopens', async () => {
  await withTempDir('replica-daemon', async (dir) => {
    const first = await startDaemon({ args: replicaArgs(dir, ['--size', '16Mi', '--volume', volumeName]), readyPattern: ready });
    assert.match(first.output(), /created replica of volume daemon-vol, 16777216 bytes/);
    const tcp = await connectReplica(`127.0.0.1:${first.ready[1]}`, { volumeName });
    const unix = await connectReplica(join(dir, 'r.sock'), { volumeName });
    await tcp.open(3);
    await unix.open(3);
    const data = Uint8Array.from({ length: 65536 }, (_, i) => (i * 13) & 0xff);
    await tcp.write(1 << 20, data);
    await tcp.snapshot({ name: 'before-restart', kind: 'user' });
    await unix.write(0, data.subarray(0, 4096));
    assert.deepEqual(await unix.read(1 << 20, 65536), data);
    // A hostile client on TCP: garbage, then gone. The daemon keeps serving.
    const hostile = connect({ host: '127.0.0.1', port: Number(first.ready[1]) });
    await new Promise<void>((resolve) => {
      hostile.on('error', () => resolve());
      hostile.on('close', () => resolve());
      hostile.resume(); // read (and drop) the parting error, so the server's close reaches us
      hostile.write('\x00'.repeat(3) + 'not a frame at all'.repeat(20));
    });
    await tcp.ping();
    await Promise.all([tcp.close(), unix.close()]);
    await first.stop();
    assert.equal(first.child.exitCode, 0, first.output());
    assert.match(first.output(), /stopped cleanly/);

    const second = await startDaemon({ args: replicaArgs(dir), readyPattern: ready });
    assert.match(second.output(), /opened replica of volume daemon-vol, 16777216 bytes/);
    const again = await connectReplica(join(dir, 'r.sock'), { volumeName, epoch: 3 });
    const chain = await again.chain();
    assert.equal(chain.membership.epoch, 3);
    assert.deepEqual(chain.snapshots.map((s) => s.name), ['before-restart']);
    assert.deepEqual(await again.read(1 << 20, 65536), data);
    assert.deepEqual(await again.read(0, 4096), data.subarray(0, 4096));
    await again.close();
    await second.stop();

    const wrong = await run(process.execPath, [shorthornBin, ...replicaArgs(dir, ['--volume', 'another'])], { allowFailure: true });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /holds a replica of volume daemon-vol, not another/);
  });
});

test('shorthorn replica refuses bad arguments with a clear message', async () => {
  await withTempDir('replica-args', async (dir) => {
    const cases: [string[], RegExp][] = [
      [replicaArgs(dir), /--size is needed/],
      [replicaArgs(dir, ['--size', 'lots']), /cannot parse size/],
      [['replica', '--dir', join(dir, 'x'), '--size', '1Mi', '--listen', 'nowhere'], /cannot parse --listen/],
    ];
    for (const [args, message] of cases) {
      const result = await run(process.execPath, [shorthornBin, ...args], { allowFailure: true });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, message);
    }
  });
});

test('shorthorn replica creates anew over what a crashed create left (layer files, no replica.meta)', async () => {
  await withTempDir('replica-daemon-leftover', async (dir) => {
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(join(dir, 'r'));
    await writeFile(join(dir, 'r', 'layer-0.data'), new Uint8Array(4096).fill(7));
    const daemon = await startDaemon({ args: replicaArgs(dir, ['--size', '1Mi', '--volume', volumeName]), readyPattern: ready });
    assert.match(daemon.output(), /created replica of volume daemon-vol, 1048576 bytes/);
    const client = await connectReplica(join(dir, 'r.sock'), { volumeName });
    assert.deepEqual(await client.read(0, 4096), new Uint8Array(4096));
    await client.close();
    await daemon.stop();
  });
});
