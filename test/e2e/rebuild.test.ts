// Rebuild with real processes and real clients: 3 replica daemons and an engine; fio writes with
// verify; one replica is killed with SIGKILL, a fresh one is rebuilt through the control API
// while 512-byte writes and trims storm the volume; a returning replica copies only what changed.
// Afterwards scrub finds every replica's per-chunk hashes equal and fio verifies its data.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, stopAll, waitFor } from '../harness/daemon.ts';
import { engineStatus, restartReplica, startCluster, startReplica, type Cluster } from '../harness/volume.ts';

const mib = 1024 * 1024;
const sizeBytes = 128 * mib;

interface Rebuild {
  address: string;
  state: string;
  totalBytes: number;
  doneBytes: number;
  skippedBytes: number;
  rateBytesPerSecond: number;
  error: string | null;
}

async function control(cluster: Cluster, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${cluster.engine.controlUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: response.status, json: await response.json() };
}

function fio(cluster: Cluster, args: readonly string[]): Promise<{ stdout: string }> {
  return run('fio', ['--name=job', '--ioengine=nbd', `--uri=${cluster.engine.uri}`, '--verify_state_save=0', '--output-format=json', ...args]);
}

async function rebuildAndWait(cluster: Cluster, address: string): Promise<Rebuild> {
  const started = await control(cluster, 'POST', '/v1/rebuilds', { address });
  assert.equal(started.status, 202, JSON.stringify(started.json));
  return waitFor(
    `rebuild of ${address}`,
    async () => {
      const { json } = await control(cluster, 'GET', '/v1/rebuilds');
      const r = (json as { rebuilds: Rebuild[] }).rebuilds.find((x) => x.address === address);
      if (r?.state === 'failed') throw new Error(`rebuild failed: ${r.error ?? '?'}`);
      return r?.state === 'done' ? r : undefined;
    },
    120_000,
  );
}

async function assertScrubClean(cluster: Cluster, name: string, replicas: number): Promise<void> {
  // Seal the heads so that every replica's whole content is in compared layers.
  assert.equal((await control(cluster, 'POST', '/v1/snapshots', { name })).status, 200);
  const { status, json } = await control(cluster, 'POST', '/v1/scrub', {});
  assert.equal(status, 200, JSON.stringify(json));
  const report = json as { replicas: string[]; mismatches: unknown[]; chunksChecked: number };
  assert.equal(report.replicas.length, replicas);
  assert.deepEqual(report.mismatches, []);
  assert.ok(report.chunksChecked > 0);
}

describe('rebuild with real replica processes', () => {
  let dir: string;
  let cluster: Cluster;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shorthorn-rebuild-'));
    cluster = await startCluster({ dir, volume: 'vol-rb', sizeBytes, replicaCount: 3 });
  });

  after(async () => {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  });

  test('a fresh replica replaces a killed one under unaligned writes and trims; hashes equal, fio verifies', async () => {
    await fio(cluster, ['--rw=write', '--bs=64k', '--iodepth=8', '--offset=0', '--size=32M', '--verify=crc32c', '--do_verify=1']);
    assert.equal((await control(cluster, 'POST', '/v1/snapshots', { name: 's1' })).status, 200);
    await cluster.replicas[2]!.daemon.kill9();
    await fio(cluster, ['--rw=randwrite', '--bs=4k', '--iodepth=16', '--offset=40M', '--size=24M', '--verify=crc32c', '--do_verify=1']);
    await waitFor('the killed replica to leave', async () => ((await engineStatus(cluster.engine)).replicas.some((r) => r.mode === 'err') ? true : undefined));

    const freshDir = join(dir, 'fresh');
    await mkdir(freshDir);
    const fresh = await startReplica({ dir: freshDir, sizeBytes, volume: cluster.volume });
    // The storm: 512-byte writes and trims over regions the copy has not reached yet.
    const storm = Promise.all([
      fio(cluster, ['--rw=randwrite', '--bs=512', '--iodepth=8', '--offset=72M', '--size=16M', '--io_size=2M', '--randseed=7']),
      fio(cluster, ['--rw=randtrim', '--bs=64k', '--iodepth=4', '--offset=96M', '--size=16M', '--io_size=4M', '--randseed=8']),
    ]);
    const rebuild = await rebuildAndWait(cluster, fresh.address);
    await storm;
    console.log(`fresh rebuild: ${rebuild.doneBytes} bytes at ${(rebuild.rateBytesPerSecond / mib).toFixed(1)} MiB/s`);
    const status = await engineStatus(cluster.engine);
    assert.equal(status.replicas.find((r) => r.address === fresh.address)?.mode, 'rw');
    await assertScrubClean(cluster, 'after-fresh', 3);
    await fio(cluster, ['--rw=write', '--bs=64k', '--iodepth=8', '--offset=0', '--size=32M', '--verify=crc32c', '--verify_only=1']);
    cluster.replicas[2] = fresh;
  });

  test('a returning replica copies at most 1.2x the data that changed', async () => {
    const returning = cluster.replicas[1]!;
    await returning.daemon.kill9();
    const changed = 16 * mib;
    await fio(cluster, ['--rw=write', '--bs=1M', '--iodepth=4', '--offset=8M', `--size=${changed}`]);
    await waitFor('the killed replica to leave', async () =>
      (await engineStatus(cluster.engine)).replicas.find((r) => r.address === returning.address)?.mode === 'err' ? true : undefined,
    );
    await restartReplica(returning, { sizeBytes, volume: cluster.volume });
    const rebuild = await rebuildAndWait(cluster, returning.address);
    console.log(`returning replica: ${rebuild.doneBytes} bytes sent for ${changed} changed (ratio ${(rebuild.doneBytes / changed).toFixed(3)}), ${rebuild.skippedBytes} matched`);
    assert.ok(rebuild.doneBytes <= 1.2 * changed, JSON.stringify(rebuild));
    await assertScrubClean(cluster, 'after-return', 3);
  });
});
