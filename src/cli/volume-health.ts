// What `volume get --watch` and `volume expand --wait` show: a volume's state, robustness,
// replicas and their rebuild progress, and expansion, made from the Volume, its Engine and its
// Replicas as the API returns them. Pure: the watch loop (volume-watch.ts) does the polling.
import { formatSize } from '../api/size-text.ts';
import type { ResourceView } from '../api/resource-view.ts';
import type { EngineStatus } from '../control/resources/engine.ts';
import type { ReplicaSpec, ReplicaStatus } from '../control/resources/replica.ts';
import type { VolumeSpec, VolumeStatus } from '../control/resources/volume.ts';

export interface VolumeParts {
  readonly volume: ResourceView;
  readonly engines: readonly ResourceView[];
  readonly replicas: readonly ResourceView[];
}

export interface ReplicaHealth {
  readonly name: string;
  readonly node: string;
  readonly state: string;
  /** RW, WO (rebuilding), ERR, or '' when the engine does not know it (detached, not yet added). */
  readonly mode: string;
  readonly pid: number | undefined;
  readonly failed: boolean;
  /** 0–100 while rebuilding. */
  readonly rebuildPercent: number | undefined;
}

export interface VolumeHealth {
  readonly name: string;
  readonly state: string;
  readonly robustness: string;
  readonly sizeBytes: number;
  /** What the running engine serves; undefined when none runs. */
  readonly engineSizeBytes: number | undefined;
  readonly replicasWanted: number;
  readonly replicas: readonly ReplicaHealth[];
}

/** The engine serving the volume now: the running one on the volume's node, else the first. */
function currentEngine(parts: VolumeParts): ResourceView | undefined {
  const running = parts.engines.find((e) => (e.status as EngineStatus | undefined)?.currentState === 'running');
  return running ?? parts.engines[0];
}

export function volumeHealth(parts: VolumeParts): VolumeHealth {
  const spec = parts.volume.spec as VolumeSpec;
  const status = (parts.volume.status ?? {}) as VolumeStatus;
  const engine = currentEngine(parts);
  const engineStatus = (engine?.status ?? {}) as EngineStatus;
  const engineRunning = engineStatus.currentState === 'running';
  const replicas = parts.replicas
    .map((view): ReplicaHealth => {
      const replicaSpec = view.spec as ReplicaSpec;
      const replicaStatus = (view.status ?? {}) as ReplicaStatus;
      const rebuild = engineRunning ? engineStatus.rebuildStatus?.[view.id] : undefined;
      return {
        name: view.id,
        node: replicaSpec.nodeID ?? '',
        state: replicaStatus.currentState ?? 'unknown',
        mode: engineRunning ? (engineStatus.replicaModeMap?.[view.id] ?? '') : '',
        pid: replicaStatus.currentState === 'running' ? replicaStatus.pid : undefined,
        failed: replicaSpec.failedAt !== undefined,
        rebuildPercent: rebuild?.isRebuilding === true ? rebuild.progress : undefined,
      };
    })
    .sort((a, b) => a.node.localeCompare(b.node) || a.name.localeCompare(b.name));
  return {
    name: parts.volume.id,
    state: parts.volume.metadata.deletionTimestamp === undefined ? (status.state ?? 'creating') : 'deleting',
    robustness: status.robustness ?? 'unknown',
    sizeBytes: spec.size,
    engineSizeBytes: engineRunning ? engineStatus.currentSize : undefined,
    replicasWanted: spec.numberOfReplicas,
    replicas,
  };
}

/** Healthy and settled: every wanted replica RW in the engine, none rebuilding, none failed. */
export function isHealed(health: VolumeHealth): boolean {
  const rw = health.replicas.filter((r) => r.mode === 'RW' && !r.failed);
  return (
    health.state === 'attached' &&
    health.robustness === 'healthy' &&
    rw.length >= health.replicasWanted &&
    health.replicas.every((r) => r.rebuildPercent === undefined)
  );
}

/** The engine serves the size the volume asks for (attached volumes only). */
export function isExpanded(health: VolumeHealth): boolean {
  return health.engineSizeBytes === undefined || health.engineSizeBytes >= health.sizeBytes;
}

const barWidth = 20;

/** `[########------------]  40%` */
export function progressBar(percent: number): string {
  const clamped = Number.isFinite(percent) ? Math.max(0, Math.min(100, Math.round(percent))) : 0;
  const filled = Math.round((clamped / 100) * barWidth);
  return `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}] ${String(clamped).padStart(3)}%`;
}

/** The lines one look at the volume shows; the watch prints them again when they change. */
export function healthLines(health: VolumeHealth): string[] {
  const rw = health.replicas.filter((r) => r.mode === 'RW').length;
  const lines = [
    `volume ${health.name}: ${health.state}, ${health.robustness}` +
      (health.state === 'attached' ? `, ${rw}/${health.replicasWanted} replicas RW` : `, ${health.replicas.length}/${health.replicasWanted} replicas`),
  ];
  if (health.engineSizeBytes !== undefined && health.engineSizeBytes < health.sizeBytes) {
    lines.push(`  expanding: ${formatSize(health.engineSizeBytes)} -> ${formatSize(health.sizeBytes)}`);
  }
  for (const replica of health.replicas) {
    const what =
      replica.rebuildPercent !== undefined
        ? `rebuilding ${progressBar(replica.rebuildPercent)}`
        : [replica.mode === '' ? replica.state : replica.mode, replica.failed ? 'failed' : ''].filter((w) => w !== '').join(', ');
    lines.push(`  ${replica.name}  ${replica.node}  ${what}`);
  }
  return lines;
}

/** The replica table of `volume get`. */
export function replicaRows(health: VolumeHealth): string[][] {
  return health.replicas.map((r) => [
    r.name,
    r.node,
    r.state,
    r.mode,
    r.pid === undefined ? '' : String(r.pid),
    r.rebuildPercent !== undefined ? progressBar(r.rebuildPercent) : r.failed ? 'failed' : '',
  ]);
}
export const replicaHeaders = ['REPLICA', 'NODE', 'STATE', 'MODE', 'PID', 'REBUILD'];
