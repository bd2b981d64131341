// Prometheus metrics at /metrics, read from the resources at each scrape (so they are never
// stale and a deleted volume's series disappears). Names follow Longhorn's `longhorn_*` metrics
// with our prefix, and the same encodings of state and robustness.
//
// Per-volume I/O comes from each running engine's own counters, asked for at scrape time rather
// than copied into the store (a store write per engine per second would cost more than the
// scrape). They are counters since the engine started, in Prometheus's way: IOPS is
// rate(shorthorn_volume_write_operations_total[1m]), throughput rate(…_bytes_total), mean latency
// rate(…_latency_seconds_total) / rate(…_operations_total). Longhorn exports ready-made per-second
// gauges instead; counters lose nothing between scrapes and need no state in the API.
import { Counter, Gauge, Registry } from 'prom-client';
import { EngineControlClient, type EngineIoCounters } from '../control/controllers/engine-control-client.ts';
import { engineControlAddress } from '../control/controllers/snapshot-reconcile.ts';
import type { Engine } from '../control/resources/engine.ts';
import type { Node } from '../control/resources/node.ts';
import type { Volume } from '../control/resources/volume.ts';
import type { ResourceStore } from '../control/store/resource-store.ts';
import { metricsEngineQueriesAtOnce, metricsEngineQueryTimeoutMs } from '../lib/limits.ts';

/** Longhorn's values: 1 creating, 2 attached, 3 detached, 4 attaching, 5 detaching, 6 deleting. */
const stateValue: Readonly<Record<string, number>> = { creating: 1, attached: 2, detached: 3, attaching: 4, detaching: 5, deleting: 6 };
/** Longhorn's values: 0 unknown, 1 healthy, 2 degraded, 3 faulted. */
const robustnessValue: Readonly<Record<string, number>> = { unknown: 0, healthy: 1, degraded: 2, faulted: 3 };

export async function renderMetrics(store: ResourceStore): Promise<{ contentType: string; text: string }> {
  const registry = new Registry();
  const gauge = (name: string, help: string, labelNames: string[]) => new Gauge({ name, help, labelNames, registers: [registry] });
  const capacity = gauge('shorthorn_volume_capacity_bytes', 'Configured size of the volume in bytes', ['volume', 'node']);
  const actual = gauge('shorthorn_volume_actual_size_bytes', 'Bytes used by the volume\'s snapshots and head', ['volume', 'node']);
  const state = gauge('shorthorn_volume_state', 'Volume state: 1 creating, 2 attached, 3 detached, 4 attaching, 5 detaching, 6 deleting', ['volume', 'node']);
  const robustness = gauge('shorthorn_volume_robustness', 'Volume robustness: 0 unknown, 1 healthy, 2 degraded, 3 faulted', ['volume', 'node']);
  const nodeCount = gauge('shorthorn_node_count_total', 'Number of nodes', []);
  const nodeStatus = gauge('shorthorn_node_status', 'Node condition: 1 true, 0 otherwise', ['node', 'condition']);
  const diskCapacity = gauge('shorthorn_disk_capacity_bytes', 'Size of the disk\'s filesystem', ['node', 'disk']);
  const diskUsage = gauge('shorthorn_disk_usage_bytes', 'Bytes used on the disk\'s filesystem', ['node', 'disk']);
  const diskReservation = gauge('shorthorn_disk_reservation_bytes', 'Bytes of the disk withheld from scheduling', ['node', 'disk']);

  const rebuild = gauge('shorthorn_volume_rebuild_progress_percent', 'Progress of a running rebuild of one replica, 0-100', ['volume', 'replica']);
  const scrapeError = gauge('shorthorn_volume_io_scrape_error', '1 when the volume\'s engine did not give its I/O counters at this scrape', ['volume', 'node']);
  const counter = (name: string, help: string) => new Counter({ name, help, labelNames: ['volume', 'node'], registers: [registry] });
  const io = {
    read: {
      ops: counter('shorthorn_volume_read_operations_total', 'Reads served since the engine started'),
      bytes: counter('shorthorn_volume_read_bytes_total', 'Bytes read since the engine started'),
      errors: counter('shorthorn_volume_read_errors_total', 'Reads that failed since the engine started'),
      latency: counter('shorthorn_volume_read_latency_seconds_total', 'Sum of the latencies of reads since the engine started'),
    },
    write: {
      ops: counter('shorthorn_volume_write_operations_total', 'Writes (including trims and zeroes) acknowledged since the engine started'),
      bytes: counter('shorthorn_volume_write_bytes_total', 'Bytes written since the engine started'),
      errors: counter('shorthorn_volume_write_errors_total', 'Writes that failed since the engine started'),
      latency: counter('shorthorn_volume_write_latency_seconds_total', 'Sum of the latencies of writes since the engine started'),
    },
    flush: {
      ops: counter('shorthorn_volume_flush_operations_total', 'Flushes acknowledged since the engine started'),
      bytes: undefined,
      errors: counter('shorthorn_volume_flush_errors_total', 'Flushes that failed since the engine started'),
      latency: counter('shorthorn_volume_flush_latency_seconds_total', 'Sum of the latencies of flushes since the engine started'),
    },
  };

  const [volumes, nodes, engines] = await Promise.all([store.list('Volume'), store.list('Node'), store.list('Engine')]);
  const enginesByVolume = new Map<string, Engine>();
  for (const engine of engines.items as Engine[]) {
    enginesByVolume.set(engine.spec.volumeName, engine);
    for (const [replica, status] of Object.entries(engine.status?.rebuildStatus ?? {})) {
      if (status.isRebuilding) rebuild.set({ volume: engine.spec.volumeName, replica }, status.progress);
    }
  }
  const asks: { labels: { volume: string; node: string }; address: string }[] = [];
  for (const volume of volumes.items as Volume[]) {
    const address = engineControlAddress(volume, enginesByVolume.get(volume.metadata.name));
    if (address !== undefined) asks.push({ labels: { volume: volume.metadata.name, node: volume.status?.currentNodeID ?? '' }, address });
  }
  for (let first = 0; first < asks.length; first += metricsEngineQueriesAtOnce) {
    const batch = asks.slice(first, first + metricsEngineQueriesAtOnce);
    const answers = await Promise.all(batch.map(async (ask) => askCounters(ask.address)));
    batch.forEach((ask, i) => {
      const counters = answers[i];
      scrapeError.set(ask.labels, counters === undefined ? 1 : 0);
      if (counters === undefined) return;
      for (const kind of ['read', 'write', 'flush'] as const) {
        const set = io[kind];
        const seen = counters[kind];
        set.ops.inc(ask.labels, seen.count);
        set.bytes?.inc(ask.labels, seen.bytes);
        set.errors.inc(ask.labels, seen.errors);
        set.latency.inc(ask.labels, seen.latencyMsTotal / 1000);
      }
    });
  }

  for (const volume of volumes.items as Volume[]) {
    const labels = { volume: volume.metadata.name, node: volume.status?.currentNodeID ?? '' };
    capacity.set(labels, volume.spec.size);
    actual.set(labels, volume.status?.actualSize ?? 0);
    const current = volume.metadata.deletionTimestamp === undefined ? (volume.status?.state ?? 'creating') : 'deleting';
    state.set(labels, stateValue[current] ?? 0);
    robustness.set(labels, robustnessValue[volume.status?.robustness ?? 'unknown'] ?? 0);
  }
  nodeCount.set(nodes.items.length);
  for (const node of nodes.items as Node[]) {
    for (const condition of node.status?.conditions ?? []) {
      nodeStatus.set({ node: node.metadata.name, condition: condition.type.toLowerCase() }, condition.status === 'True' ? 1 : 0);
    }
    for (const [disk, spec] of Object.entries(node.spec.disks)) {
      const labels = { node: node.metadata.name, disk };
      diskReservation.set(labels, spec.storageReserved);
      const status = node.status?.diskStatus?.[disk];
      if (status !== undefined) {
        diskCapacity.set(labels, status.storageMaximum);
        diskUsage.set(labels, status.storageMaximum - status.storageAvailable);
      }
    }
  }
  return { contentType: registry.contentType, text: await registry.metrics() };
}

/** An engine's counters, or undefined when it does not answer in time or answers nonsense. */
async function askCounters(address: string): Promise<EngineIoCounters | undefined> {
  try {
    return await new EngineControlClient(address).ioCounters(metricsEngineQueryTimeoutMs);
  } catch {
    // Reported as shorthorn_volume_io_scrape_error 1; one engine must not fail the whole scrape.
    return undefined;
  }
}
