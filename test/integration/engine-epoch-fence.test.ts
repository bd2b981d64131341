// Fencing with the epoch the manager assigns (Engine spec.epoch → `shorthorn engine --epoch N`),
// on real processes: two replicas; engine A starts with epoch 1 and writes; engine B (the volume
// moved, or A's host was cut off) starts on the same replicas with epoch 2. A's next write is
// refused by both replicas and fails at the client; B's data is what reads back. An engine given
// an epoch below what the replicas have seen does not start; the same epoch (a restart of B by
// its node agent) does.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { run, shorthornBin, startDaemon, stopAll, withTempDir } from '../harness/daemon.ts';
import { engineStatus, startEngineProcess, startReplica } from '../harness/volume.ts';
import { dataProcessEnv } from '../../src/lib/data-process-env.ts';

after(stopAll);

const volume = 'fence';
const sizeBytes = 16 * 1024 * 1024;

test('an engine with an older epoch is fenced by the replicas once a newer engine has started', async () => {
  await withTempDir('epoch-fence', async (dir) => {
    const replicas = [
      await startReplica({ dir: join(dir, 'r1'), sizeBytes, volume }),
      await startReplica({ dir: join(dir, 'r2'), sizeBytes, volume }),
    ];
    const addresses = replicas.map((r) => r.address);
    const engineA = await startEngineProcess({ volume, sizeBytes, replicas: addresses, socket: join(dir, 'a.sock'), extraArgs: ['--epoch', '1'] });
    assert.equal((await engineStatus(engineA)).epoch, 1);
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 1M', '-c', 'flush', engineA.uri]);

    const engineB = await startEngineProcess({ volume, sizeBytes, replicas: addresses, socket: join(dir, 'b.sock'), extraArgs: ['--epoch', '2'] });
    assert.equal((await engineStatus(engineB)).epoch, 2);
    const fenced = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x22 0 1M', '-c', 'flush', engineA.uri], { allowFailure: true });
    assert.match(`${fenced.stdout}${fenced.stderr}`, /failed|error/i, `engine A's write must fail:\n${fenced.stdout}${fenced.stderr}`);
    const statusA = await engineStatus(engineA);
    assert.ok(statusA.replicas.every((r) => r.mode === 'err'), `A lost every replica: ${JSON.stringify(statusA.replicas)}`);
    assert.ok(statusA.replicas.some((r) => /epoch 1 is older than the accepted epoch 2/.test(r.lastError ?? '')), JSON.stringify(statusA.replicas));
    await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x11 0 1M', '-c', 'write -P 0x33 1M 1M', '-c', 'flush', engineB.uri]);
    await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x11 0 1M', '-c', 'read -P 0x33 1M 1M', engineB.uri]);
    await engineA.daemon.stop();

    // An engine with an epoch below what the replicas saw (a stale command line) refuses to start.
    const stale = await run(process.execPath, [
      shorthornBin, 'engine', '--name', volume, '--size', String(sizeBytes),
      '--nbd-socket', join(dir, 'c.sock'), '--replica', addresses[0]!, '--replica', addresses[1]!, '--epoch', '1',
    ], { allowFailure: true });
    assert.notEqual(stale.code, 0);
    assert.match(stale.stderr + stale.stdout, /Cannot start with epoch 1: replicas have seen epoch 2/);

    // B crashes and its node agent restarts it with the same command line: same epoch, starts.
    await engineB.daemon.kill9();
    const restarted = await startDaemon({
      args: ['engine', '--name', volume, '--size', String(sizeBytes), '--nbd-socket', join(dir, 'b2.sock'),
        '--replica', addresses[0]!, '--replica', addresses[1]!, '--epoch', '2'],
      readyPattern: /control on (\S+)/,
      env: dataProcessEnv(),
    });
    assert.match(restarted.output(), /epoch 2 already seen by the replicas: a restart of the same attach/);
    await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x11 0 1M', '-c', 'read -P 0x33 1M 1M', `nbd+unix:///${volume}?socket=${join(dir, 'b2.sock')}`]);
    await restarted.stop();
    for (const replica of replicas) await replica.daemon.stop();
  });
});
