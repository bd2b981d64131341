// Scrub against bytes flipped in a sealed layer's file on disk (real replica and engine
// processes): with one replica the corruption is reported from the replica's own stored checksums
// and nothing is marked or "repaired", and a paced check stays under its bandwidth limit; with
// three, the replica whose data no longer matches its checksums is named and, with markErr, taken
// out of the write set while the other two stay.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { run, stopAll, withTempDir } from '../harness/daemon.ts';
import { engineStatus, startCluster, type Cluster } from '../harness/volume.ts';
import { flipSealedByte } from '../harness/sealed-layer.ts';

const mib = 1024 * 1024;
const sizeBytes = 32 * mib;
const pattern = 0x5c;
const flipAtBytes = 5 * mib + 12345;

after(stopAll);

interface ScrubReport {
  replicas: string[];
  mismatches: unknown[];
  disagreeing: string[];
  markedErr: string[];
  comparable: boolean;
  corrupt: { layer: string; offsetBytes: number; replica: string; healthyElsewhere: boolean }[];
  bytesVerified: number;
}

async function control(cluster: Cluster, method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${cluster.engine.controlUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const json: unknown = await response.json();
  assert.ok(response.ok, `${method} ${path}: HTTP ${response.status} ${JSON.stringify(json)}`);
  return json;
}

const flipByte = (replicaDir: string): Promise<void> => flipSealedByte(replicaDir, flipAtBytes, pattern);

async function prepare(dir: string, replicaCount: number): Promise<Cluster> {
  const cluster = await startCluster({ dir, volume: 'scrubvol', sizeBytes, replicaCount });
  await run('qemu-io', ['-f', 'raw', '-c', `write -P ${pattern} 4M 8M`, '-c', 'flush', cluster.engine.uri]);
  await control(cluster, 'POST', '/v1/snapshots', { name: 's1' });
  // The first scrub computes and stores every sealed layer's checksums, from good data.
  const clean = (await control(cluster, 'POST', '/v1/scrub', {})) as ScrubReport;
  assert.deepEqual(clean.corrupt, []);
  assert.deepEqual(clean.mismatches, []);
  assert.equal(clean.bytesVerified, 8 * mib * replicaCount);
  return cluster;
}

test('one replica: a flipped byte in a sealed layer is reported, nothing is marked or repaired', async () => {
  await withTempDir('scrub-one', async (dir) => {
    const cluster = await prepare(dir, 1);
    await flipByte(cluster.replicas[0]!.dir);
    const report = (await control(cluster, 'POST', '/v1/scrub', { markErr: true })) as ScrubReport;
    assert.equal(report.comparable, false);
    assert.deepEqual(report.corrupt, [{ layer: 's1', offsetBytes: 4 * mib, replica: cluster.replicas[0]!.address, healthyElsewhere: false }]);
    assert.deepEqual(report.disagreeing, []);
    assert.deepEqual(report.markedErr, []);
    assert.equal((await engineStatus(cluster.engine)).replicas[0]!.mode, 'rw');
    // Not repaired: the flipped byte still reads back flipped.
    const { stdout } = await run('qemu-io', ['-f', 'raw', '-c', `read -P ${pattern ^ 0xff} ${flipAtBytes} 1`, cluster.engine.uri]);
    assert.doesNotMatch(stdout, /Pattern verification failed/);
    // A paced data check: the bytes read never run ahead of the limit (a bound on work done per
    // unit of time, not on speed: a slow machine only makes it take longer).
    const limitBytesPerSecond = 2 * mib;
    const startMs = performance.now();
    const paced = (await control(cluster, 'POST', '/v1/scrub', { bandwidthBytesPerSecond: limitBytesPerSecond })) as ScrubReport;
    const elapsedS = (performance.now() - startMs) / 1000;
    assert.equal(paced.bytesVerified, 8 * mib);
    assert.equal(paced.corrupt.length, 1);
    assert.ok(paced.bytesVerified <= limitBytesPerSecond * elapsedS, `${paced.bytesVerified} bytes verified in ${elapsedS.toFixed(2)} s at a limit of ${limitBytesPerSecond}/s`);
    await stopAll();
  });
});

test('three replicas: the replica whose data fails its own checksums is the odd one out and leaves with markErr', async () => {
  await withTempDir('scrub-three', async (dir) => {
    const cluster = await prepare(dir, 3);
    const bad = cluster.replicas[1]!;
    await flipByte(bad.dir);
    const report = (await control(cluster, 'POST', '/v1/scrub', { markErr: true })) as ScrubReport;
    assert.equal(report.comparable, true);
    // The stored checksums all agree (computed before the flip); only the data check sees it.
    assert.deepEqual(report.mismatches, []);
    assert.deepEqual(report.corrupt, [{ layer: 's1', offsetBytes: 4 * mib, replica: bad.address, healthyElsewhere: true }]);
    assert.deepEqual(report.disagreeing, [bad.address]);
    assert.deepEqual(report.markedErr, [bad.address]);
    const modes = Object.fromEntries((await engineStatus(cluster.engine)).replicas.map((r) => [r.address, r.mode]));
    assert.deepEqual(
      cluster.replicas.map((r) => modes[r.address]),
      cluster.replicas.map((r) => (r === bad ? 'err' : 'rw')),
    );
    // Reads come from the healthy replicas: the pattern is intact.
    const { stdout } = await run('qemu-io', ['-f', 'raw', '-c', `read -P ${pattern} 4M 8M`, cluster.engine.uri]);
    assert.doesNotMatch(stdout, /Pattern verification failed/);
    await stopAll();
  });
});
