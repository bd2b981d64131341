// Background snapshot hashing on real processes (two `shorthorn replica` daemons with
// --checksum-rate-mib, one engine, qemu-io): after a snapshot the engine's snapshot list goes from
// pending/computing to computed with a time, every replica has the layer's `.sum` file, the
// hashing took at least data / rate (the limit holds in wall time), and a scrub afterwards finds a
// byte flipped on disk by the stored checksums, without computing them again.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run, startDaemon, stopAll, waitFor, withTempDir } from '../harness/daemon.ts';
import { freePort } from '../harness/free-port.ts';
import { startEngineProcess, type EngineProcess } from '../harness/volume.ts';
import { dataProcessEnv } from '../../src/lib/data-process-env.ts';

const mib = 1024 * 1024;
const sizeBytes = 64 * mib;
const dataMib = 24;
const rateMib = 8;
const pattern = 0x3a;
const flipAtBytes = 9 * mib + 777;

after(stopAll);

interface SnapshotNode {
  name: string;
  checksumState: string;
  checksumComputedMs: number | null;
}

async function control(engine: EngineProcess, method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${engine.controlUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const json: unknown = await response.json();
  assert.ok(response.ok, `${method} ${path}: HTTP ${response.status} ${JSON.stringify(json)}`);
  return json;
}

async function snapshotNode(engine: EngineProcess, name: string): Promise<SnapshotNode> {
  const tree = (await control(engine, 'GET', '/v1/snapshots')) as { snapshots: SnapshotNode[] };
  const node = tree.snapshots.find((s) => s.name === name);
  assert.ok(node !== undefined, `snapshot ${name} is listed`);
  return node;
}

async function sumFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.sum'));
}

test('a snapshot is hashed in the background at no more than --checksum-rate-mib, and scrub then checks data by those sums', async () => {
  await withTempDir('bg-checksums', async (dir) => {
    const replicas: { dir: string; address: string }[] = [];
    for (let i = 0; i < 2; i++) {
      const replicaDir = join(dir, `replica-${i}`);
      await mkdir(replicaDir, { recursive: true });
      const port = await freePort();
      await startDaemon({
        args: ['replica', '--dir', replicaDir, '--size', String(sizeBytes), '--volume', 'bgsum', '--listen', `127.0.0.1:${port}`, '--checksum-rate-mib', String(rateMib)],
        readyPattern: /listening on (\S+)/,
        env: dataProcessEnv(),
      });
      replicas.push({ dir: replicaDir, address: `127.0.0.1:${port}` });
    }
    const engine = await startEngineProcess({ volume: 'bgsum', sizeBytes, replicas: replicas.map((r) => r.address), socket: join(dir, 'nbd.sock') });
    await run('qemu-io', ['-f', 'raw', '-c', `write -P ${pattern} 4M ${dataMib}M`, '-c', 'flush', engine.uri]);

    const startMs = Date.now();
    await control(engine, 'POST', '/v1/snapshots', { name: 's1' });
    const seen = new Set<string>();
    const done = await waitFor(
      's1 checksums computed',
      async () => {
        const node = await snapshotNode(engine, 's1');
        seen.add(node.checksumState);
        return node.checksumState === 'computed' ? node : undefined;
      },
      90_000,
    );
    // Every replica hashes its own copy; the list shows the read source's.
    for (const r of replicas) await waitFor(`${r.dir} holds the sums`, async () => ((await sumFiles(r.dir)).length === 1 ? true : undefined), 90_000);
    const elapsedS = (Date.now() - startMs) / 1000;
    const measuredMib = dataMib / elapsedS;
    console.log(`# ${dataMib} MiB hashed in ${elapsedS.toFixed(2)} s on both replicas: ${measuredMib.toFixed(2)} MiB/s, limit ${rateMib} MiB/s; states seen: ${[...seen].join(', ')}`);
    assert.ok(measuredMib <= rateMib, `hashing ran at ${measuredMib} MiB/s, over the limit of ${rateMib}`);
    assert.ok(seen.has('computing') || seen.has('pending'), `the list showed the work in progress: ${[...seen].join(', ')}`);
    assert.ok(done.checksumComputedMs !== null && done.checksumComputedMs >= Math.floor(startMs / 1000) * 1000 && done.checksumComputedMs <= Date.now());

    // Flip one byte of replica 1's sealed layer behind its back (bit rot after hashing).
    const bad = replicas[1]!;
    const sumStats = await Promise.all(replicas.map(async (r) => (await stat(join(r.dir, (await sumFiles(r.dir))[0]!))).mtimeMs));
    const dataFiles: string[] = [];
    for (const name of await readdir(bad.dir)) if (name.endsWith('.data') && (await stat(join(bad.dir, name))).blocks > 0) dataFiles.push(name);
    assert.equal(dataFiles.length, 1, `data files with blocks: ${dataFiles.join(', ')}`);
    const handle = await open(join(bad.dir, dataFiles[0]!), 'r+');
    try {
      const byte = new Uint8Array([pattern ^ 0xff]);
      await handle.write(byte, 0, 1, flipAtBytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    const report = (await control(engine, 'POST', '/v1/scrub', {})) as { mismatches: unknown[]; corrupt: { layer: string; offsetBytes: number; replica: string }[]; bytesVerified: number };
    assert.deepEqual(report.mismatches, [], 'the stored sums (computed before the flip) agree');
    assert.deepEqual(
      report.corrupt.map((c) => [c.layer, c.offsetBytes, c.replica]),
      [['s1', Math.floor(flipAtBytes / (2 * mib)) * 2 * mib, bad.address]],
    );
    assert.equal(report.bytesVerified, 2 * dataMib * mib);
    const after = await Promise.all(replicas.map(async (r) => (await stat(join(r.dir, (await sumFiles(r.dir))[0]!))).mtimeMs));
    assert.deepEqual(after, sumStats, 'scrub used the stored sums, it did not write them again');

    // Damage replica 0's stored sums: the next scrub names them and leaves that replica out of the
    // layer (no vote, no data check against a record that cannot be trusted), and goes on.
    const good = replicas[0]!;
    const sumHandle = await open(join(good.dir, (await sumFiles(good.dir))[0]!), 'r+');
    try {
      const byte = new Uint8Array(1);
      await sumHandle.read(byte, 0, 1, 40);
      byte[0]! ^= 0x01;
      await sumHandle.write(byte, 0, 1, 40);
      await sumHandle.sync();
    } finally {
      await sumHandle.close();
    }
    const second = (await control(engine, 'POST', '/v1/scrub', { markErr: true })) as typeof report & {
      storedChecksumErrors: { layer: string; replica: string; message: string }[];
      markedErr: string[];
    };
    assert.deepEqual(second.storedChecksumErrors.map((e) => [e.layer, e.replica]), [['s1', good.address]]);
    assert.match(second.storedChecksumErrors[0]!.message, /stored checksums of snapshot s1: .*\.sum: checksum file checksum mismatch/);
    assert.deepEqual(second.corrupt.map((c) => c.replica), [bad.address], 'the other replica is still checked against its own sums');
    assert.deepEqual(second.markedErr, [], 'nothing is marked on the word of one replica');
    await stopAll();
  });
});

test('--snapshot-max-count and --snapshot-max-size refuse a snapshot with 409 and a clear message; delete + purge makes room', async () => {
  await withTempDir('snap-limits', async (dir) => {
    const replicaDir = join(dir, 'replica-0');
    await mkdir(replicaDir, { recursive: true });
    const port = await freePort();
    await startDaemon({
      args: ['replica', '--dir', replicaDir, '--size', String(sizeBytes), '--volume', 'limits', '--listen', `127.0.0.1:${port}`, '--checksum-rate-mib', '0'],
      readyPattern: /listening on (\S+)/,
      env: dataProcessEnv(),
    });
    const engine = await startEngineProcess({
      volume: 'limits', sizeBytes, replicas: [`127.0.0.1:${port}`], socket: join(dir, 'nbd.sock'),
      extraArgs: ['--snapshot-max-count', '2', '--snapshot-max-size', String(3 * mib)],
    });
    const post = (name: string): Promise<Response> =>
      fetch(`${engine.controlUrl}/v1/snapshots`, { method: 'POST', body: JSON.stringify({ name }), headers: { 'content-type': 'application/json' } });
    assert.equal((await post('a')).status, 200);
    assert.equal((await post('b')).status, 200);
    const refused = await post('c');
    assert.equal(refused.status, 409);
    assert.match(((await refused.json()) as { message: string }).message, /Cannot take snapshot c: the volume holds 2 snapshots and snapshotMaxCount is 2/);
    assert.equal((await fetch(`${engine.controlUrl}/v1/snapshots/a`, { method: 'DELETE' })).status, 200);
    await control(engine, 'POST', '/v1/snapshots/purge');
    assert.equal((await post('c')).status, 200, 'room after delete and purge');
    // The size limit: 4 MiB written since the last snapshot would make the snapshots hold more than 3 MiB.
    await control(engine, 'DELETE', '/v1/snapshots/b');
    await control(engine, 'POST', '/v1/snapshots/purge');
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 4M', '-c', 'flush', engine.uri]);
    const tooBig = await post('d');
    assert.equal(tooBig.status, 409);
    assert.match(((await tooBig.json()) as { message: string }).message, /snapshots would hold 4194304 bytes .* snapshotMaxSize is 3145728/);
    await stopAll();
  });
});
