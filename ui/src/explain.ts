// A plain explanation of a volume's state, from the volume, its replicas and its engine: what is
// happening, why, and what the manager or the operator does next. Pure, so it can be read and
// tested on its own.
import { volumeState, type EngineView, type ReplicaView, type VolumeView } from './views.ts';

export type Tone = 'ok' | 'info' | 'warn' | 'bad';

export interface Explanation {
  readonly tone: Tone;
  readonly headline: string;
  readonly details: readonly string[];
}

export type ReplicaMode = 'RW' | 'WO' | 'ERR' | 'none';

export function replicaMode(replica: ReplicaView, engine: EngineView | undefined): ReplicaMode {
  return engine?.status?.replicaModeMap?.[replica.id] ?? 'none';
}

export function explainVolume(volume: VolumeView, replicas: readonly ReplicaView[], engine: EngineView | undefined): Explanation {
  const state = volumeState(volume);
  const wanted = volume.spec.numberOfReplicas;
  const details: string[] = [];
  const rw = replicas.filter((r) => replicaMode(r, engine) === 'RW');
  const wo = replicas.filter((r) => replicaMode(r, engine) === 'WO');
  const failed = replicas.filter((r) => r.spec.failedAt !== undefined || replicaMode(r, engine) === 'ERR');
  for (const replica of wo) {
    const progress = engine?.status?.rebuildStatus?.[replica.id]?.progress;
    details.push(`Replica ${replica.id} on ${replica.spec.nodeID ?? 'an unscheduled node'} is rebuilding${progress === undefined ? '' : ` (${progress}%)`}: it receives every new write and copies the older data from a healthy replica; reads never go to it until it is done.`);
  }
  for (const replica of failed) {
    details.push(`Replica ${replica.id} on ${replica.spec.nodeID ?? '?'} failed${replica.spec.failedAt === undefined ? '' : ` at ${new Date(replica.spec.failedAt).toLocaleTimeString()}`}${replica.status?.errorMessage === undefined ? '' : `: ${replica.status.errorMessage}`}. The manager reuses it if it comes back, or replaces it with a new replica that is rebuilt.`);
  }
  for (const condition of volume.status?.conditions ?? []) {
    if (condition.status !== 'True' && condition.message !== undefined) details.push(`${condition.type}: ${condition.message}`);
  }
  // A volume made from a backup is restoring until the manager says the restore is done
  // (restoreRequired false); before it has looked at the volume, restoreRequired is unset.
  const restoring = volume.status?.restoreRequired === true || (volume.spec.fromBackup !== undefined && volume.status?.restoreRequired === undefined);
  if (restoring) {
    const restore = volume.status?.conditions?.find((c) => c.type === 'Restore');
    return { tone: 'info', headline: `Restoring from a backup${restore?.message === undefined ? '' : `: ${restore.message}`}. It detaches when the data is in.`, details };
  }
  switch (state) {
    case 'creating':
      return { tone: 'info', headline: 'Being created: the manager has not placed its replicas yet.', details };
    case 'deleting':
      return { tone: 'info', headline: 'Being deleted: the manager stops its processes and removes its data.', details };
    case 'detached':
      return { tone: 'info', headline: `Detached: no engine runs and the ${wanted} replicas hold the data at rest. Attach it to a node to use it.`, details };
    case 'attaching':
      return { tone: 'info', headline: 'Attaching: the node agent is starting the replicas and the engine.', details };
    case 'detaching':
      return { tone: 'info', headline: 'Detaching: the engine is stopping; the replicas stay.', details };
    case 'attached':
      break;
    default:
      return { tone: 'info', headline: `State ${state}.`, details };
  }
  const where = volume.status?.currentNodeID === undefined ? '' : ` on ${volume.status.currentNodeID}`;
  switch (volume.status?.robustness) {
    case 'healthy':
      return { tone: 'ok', headline: `Healthy: attached${where}, all ${rw.length} replicas are in the write set (RW) and hold the same data.`, details };
    case 'degraded': {
      const rebuilding = wo.length > 0 ? ` ${wo.length} rebuilding.` : '';
      return {
        tone: 'warn',
        headline: `Degraded: ${rw.length} of ${wanted} replicas are healthy.${rebuilding} Reads and writes go on; another failure now risks the data, so the manager restores the count.`,
        details,
      };
    }
    case 'faulted':
      return { tone: 'bad', headline: 'Faulted: no replica is healthy, so the volume cannot serve I/O. Salvage picks the replica with the newest recorded data.', details };
    case 'unknown':
    case undefined:
      return { tone: 'info', headline: `Attached${where}; robustness not reported yet.`, details };
  }
}
