// /metrics takes each attached volume's I/O counters from its running engine at scrape time: a
// real engine and replica, real I/O from qemu-io, the counters checked against the engine's own
// status; an engine that does not answer is reported as a scrape error without failing the rest.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderMetrics } from '../../src/api/metrics.ts';
import { parseIoCounters } from '../../src/control/controllers/engine-control-client.ts';
import type { Engine } from '../../src/control/resources/engine.ts';
import { resourceExamples } from '../../src/control/resources/testing/resource-examples.ts';
import type { Volume } from '../../src/control/resources/volume.ts';
import { openStore } from '../../src/control/store/open-store.ts';
import type { ResourceStore } from '../../src/control/store/resource-store.ts';
import { run, stopAll } from '../harness/daemon.ts';
import { freePort } from '../harness/free-port.ts';
import { engineStatus, startCluster, type Cluster } from '../harness/volume.ts';

const mib = 1024 * 1024;

function sample(text: string, name: string, volume: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{volume="${volume}",`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function addVolume(store: ResourceStore, name: string, address: string): Promise<void> {
  const [ip, port] = address.split(':');
  const volume: Volume = {
    ...resourceExamples.Volume,
    metadata: { name },
    spec: { ...resourceExamples.Volume.spec, size: 64 * mib },
  };
  await store.create(volume);
  const created = (await store.get('Volume', name)) as Volume;
  await store.updateStatus({ ...created, status: { state: 'attached', robustness: 'healthy', actualSize: 0, generation: 1, currentNodeID: 'node-1' } });
  const engine: Engine = {
    ...resourceExamples.Engine,
    metadata: { name: `${name}-e-0` },
    spec: { ...resourceExamples.Engine.spec, volumeName: name, volumeSize: 64 * mib },
  };
  await store.create(engine);
  const createdEngine = (await store.get('Engine', `${name}-e-0`)) as Engine;
  await store.updateStatus({
    ...createdEngine,
    status: { currentState: 'running', ip: ip ?? '', port: Number(port), rebuildStatus: { [`${name}-r-1`]: { isRebuilding: true, progress: 42 } } },
  });
}

describe('per-volume I/O metrics from running engines', () => {
  let dir = '';
  let cluster: Cluster;
  let store: ResourceStore;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shorthorn-io-metrics-'));
    cluster = await startCluster({ dir, volume: 'vol-io', sizeBytes: 64 * mib, replicaCount: 1 });
    store = openStore({ backend: 'embedded', dataDir: join(dir, 'store'), pollIntervalMs: 5 });
  });

  after(async () => {
    await store.close();
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  });

  test('reads, writes and flushes counted by the engine appear as counters; a silent engine is a scrape error', async () => {
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 7 0 1M', '-c', 'write -P 8 4M 64k', '-c', 'flush', '-c', 'read -P 7 0 1M', cluster.engine.uri]);
    await addVolume(store, 'vol-io', cluster.engine.controlUrl.replace('http://', ''));
    // A port nothing listens on: the engine of this volume is "running" but does not answer.
    await addVolume(store, 'vol-dead', `127.0.0.1:${await freePort()}`);

    const { text } = await renderMetrics(store);
    const status = await engineStatus(cluster.engine);
    const expected = parseIoCounters(status);
    assert.ok(expected.write.count >= 2 && expected.write.bytes >= mib + 64 * 1024, JSON.stringify(expected.write));
    assert.equal(sample(text, 'shorthorn_volume_write_operations_total', 'vol-io'), expected.write.count);
    assert.equal(sample(text, 'shorthorn_volume_write_bytes_total', 'vol-io'), expected.write.bytes);
    assert.equal(sample(text, 'shorthorn_volume_read_operations_total', 'vol-io'), expected.read.count);
    assert.equal(sample(text, 'shorthorn_volume_read_bytes_total', 'vol-io'), expected.read.bytes);
    assert.ok((sample(text, 'shorthorn_volume_flush_operations_total', 'vol-io') ?? 0) >= 1);
    const latency = sample(text, 'shorthorn_volume_write_latency_seconds_total', 'vol-io');
    assert.ok(latency !== undefined && Math.abs(latency - expected.write.latencyMsTotal / 1000) < 1e-6, String(latency));
    assert.equal(sample(text, 'shorthorn_volume_io_scrape_error', 'vol-io'), 0);
    assert.match(text, /shorthorn_volume_rebuild_progress_percent\{volume="vol-io",replica="vol-io-r-1"\} 42/);

    assert.equal(sample(text, 'shorthorn_volume_io_scrape_error', 'vol-dead'), 1);
    assert.equal(sample(text, 'shorthorn_volume_write_operations_total', 'vol-dead'), undefined);
    assert.equal(sample(text, 'shorthorn_volume_capacity_bytes', 'vol-dead'), 64 * mib);
  });

  test('an engine status without sane counters is refused', () => {
    assert.throws(() => parseIoCounters({ read: { count: 1, bytes: 1, errors: 0, latencyMsTotal: 1 } }), /write is not an object/);
    const sane = { count: 1, bytes: 1, errors: 0, latencyMsTotal: 1 };
    assert.throws(() => parseIoCounters({ read: sane, write: { ...sane, count: -1 }, flush: sane }), /write\.count/);
    assert.throws(() => parseIoCounters({ read: sane, write: sane, flush: { ...sane, bytes: 'x' } }), /flush\.bytes/);
    assert.throws(() => parseIoCounters([]), /not an object/);
  });
});
