// Prometheus metrics at /metrics, read from the resources at each scrape (so they are never
// stale and a deleted volume's series disappears). Names follow Longhorn's `longhorn_*` metrics
// with our prefix, and the same encodings of state and robustness.
import { Gauge, Registry } from 'prom-client';
import type { Node } from '../control/resources/node.ts';
import type { Volume } from '../control/resources/volume.ts';
import type { ResourceStore } from '../control/store/resource-store.ts';

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

  const [volumes, nodes] = await Promise.all([store.list('Volume'), store.list('Node')]);
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
