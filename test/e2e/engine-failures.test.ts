// Failures of real processes under a real client: replicas killed while fio writes and verifies,
// an engine restarted over stale replicas, an engine killed mid-write.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, stopAll, waitFor } from '../harness/daemon.ts';
import { fioErrors, runFio } from '../harness/fio.ts';
import { engineStatus, restartReplica, startCluster, startEngineProcess, type Cluster } from '../harness/volume.ts';

const mib = 1024 * 1024;
const sizeBytes = 256 * mib;
const requestTimeoutMs = 8000;

/** fio's random-write-then-verify job over one region; the same arguments replay the same data. */
function fioArgs(uri: string, extra: readonly string[]): string[] {
  return [
    '--name=job',
    '--ioengine=nbd',
    `--uri=${uri}`,
    '--rw=randwrite',
    '--bs=4k',
    '--iodepth=16',
    '--offset=0',
    '--size=96M',
    '--verify=crc32c',
    '--randseed=1234',
    '--verify_state_save=0',
    '--output-format=json',
    ...extra,
  ];
}

describe('replica and engine failures under a real client', () => {
  let dir = '';
  let cluster: Cluster;
  const volume = 'vol-fail';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shorthorn-e2e-failures-'));
    cluster = await startCluster({ dir, volume, sizeBytes, replicaCount: 3 });
  });

  after(async () => {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  });

  test('kill -9 of two replicas during fio --verify: no client error, ERR within the timeout, data verifies', async () => {
    const fio = runFio(fioArgs(cluster.engine.uri, ['--do_verify=1']));
    const writeCount = async (): Promise<number> => {
      const response = await fetch(`${cluster.engine.controlUrl}/v1/status`);
      return ((await response.json()) as { write: { count: number } }).write.count;
    };
    const writesAtLeast = (count: number): Promise<boolean> =>
      waitFor(`${count} writes`, async () => ((await writeCount()) >= count ? true : undefined), 60000);
    for (const [victim, afterWrites] of [[0, 2000], [1, 5000]] as const) {
      await writesAtLeast(afterWrites);
      const killedAt = Date.now();
      await cluster.replicas[victim]!.daemon.kill9();
      const address = cluster.replicas[victim]!.address;
      await waitFor(`${address} in mode err`, async () => {
        const status = await engineStatus(cluster.engine);
        return status.replicas.find((r) => r.address === address)?.mode === 'err' ? true : undefined;
      }, requestTimeoutMs + 1000);
      assert.ok(Date.now() - killedAt <= requestTimeoutMs + 1000);
    }
    const result = await fio;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(fioErrors(result.stdout), 0);
    const status = await engineStatus(cluster.engine);
    const modeOf = (i: number): string | undefined => status.replicas.find((r) => r.address === cluster.replicas[i]!.address)?.mode;
    assert.deepEqual([modeOf(0), modeOf(1), modeOf(2)], ['err', 'err', 'rw']);
  });

  test('an engine restarted with all three replicas uses only the newest generation', async () => {
    await cluster.engine.daemon.stop();
    for (const victim of [0, 1]) await restartReplica(cluster.replicas[victim]!, { sizeBytes, volume });
    cluster.engine = await startEngineProcess({
      volume,
      sizeBytes,
      replicas: cluster.replicas.map((r) => r.address),
      socket: join(dir, 'nbd.sock'),
    });
    const status = await engineStatus(cluster.engine);
    assert.deepEqual(status.replicas.map((r) => r.address), [cluster.replicas[2]!.address]);
    assert.match(cluster.engine.daemon.output(), /stale \(older generation or dropped\): .*127\.0\.0\.1/);
    // Everything fio wrote is still there, read from the one current replica.
    const verify = await runFio(fioArgs(cluster.engine.uri, ['--verify_only=1']));
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(fioErrors(verify.stdout), 0);
  });

  test('kill -9 of the engine mid-write: flushed writes survive and repeated reads agree', async () => {
    const uri = cluster.engine.uri;
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 128M 16M', '-c', 'flush', uri]);
    const writer = runFio([
      '--name=storm', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=32',
      '--offset=160M', '--size=64M', '--time_based', '--runtime=60',
    ]);
    await waitFor('writes under way', async () => {
      const response = await fetch(`${cluster.engine.controlUrl}/v1/status`);
      return ((await response.json()) as { write: { count: number } }).write.count > 1000 ? true : undefined;
    }, 60000);
    await cluster.engine.daemon.kill9();
    await writer;
    cluster.engine = await startEngineProcess({
      volume,
      sizeBytes,
      replicas: cluster.replicas.map((r) => r.address),
      socket: join(dir, 'nbd.sock'),
    });
    const read = await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 128M 16M', cluster.engine.uri]);
    assert.doesNotMatch(read.stdout, /verification failed/i);
    const digest = async (name: string): Promise<string> => {
      const path = join(dir, name);
      await run('nbdcopy', [cluster.engine.uri, path]);
      const hash = createHash('sha256').update((await readFile(path)).subarray(160 * mib, 224 * mib)).digest('hex');
      await rm(path);
      return hash;
    };
    assert.equal(await digest('first.bin'), await digest('second.bin'));
  });
});
