// Which named fault points (runtime/fault-points.ts) each action of a volume reconcile pass stands
// for, so that a test can crash the manager between two writes of a loop (scenario S26). Pure:
// it compares each action's object with what the pass observed. Only computed when points are
// armed or traced.
//
// | loop | points (in the order a loop passes them) |
// | --- | --- |
// | failure | `replica:failed-recorded` (failedAt stored), `volume:write-set-shrunk` (engine spec without it) |
// | rebuild | `volume:replica-created` (a new replica stored), `rebuild:replica-reused` (failedAt cleared on a returning replica), `rebuild:write-set-grown` (engine asked to add it: the agent then asks the engine to rebuild), `rebuild:healthy-recorded` (healthyAt stored once RW) |
// | cleanup | `cleanup:kept-stopped` (a replaced failed replica stopped), `cleanup:delete-decided` (before the delete is stored), `cleanup:deleted` (stored; the agent has not removed the directory yet) |
// | salvage | `salvage:engine-stop-stored`, `salvage:faulted-recorded` (condition AllReplicasFailed), `salvage:candidates-chosen` (a chosen replica's failedAt cleared; only if it had one), `salvage:engine-start-stored` (engine spec with salvageRequested), `salvage:salvaging-recorded`, `salvage:done-recorded` |
// | eviction | `eviction:replica-marked`, then the rebuild points of its replacement, `eviction:delete-decided`, `eviction:deleted` |
// | attach | `volume:engine-start-stored`, `volume:engine-stop-stored` |
import type { Action } from '../runtime/controller.ts';
import type { Engine } from '../resources/engine.ts';
import type { Resource } from '../resources/object-meta.ts';
import type { Replica } from '../resources/replica.ts';
import type { Volume } from '../resources/volume.ts';
import { salvageConditionType } from './volume-salvage.ts';

export interface ActionPoints {
  readonly before: readonly string[];
  readonly after: readonly string[];
}

interface Observed {
  readonly engines: readonly Engine[];
  readonly replicas: readonly Replica[];
}

const salvageReason = (conditions: readonly { readonly type: string; readonly reason?: string }[] | undefined): string | undefined =>
  conditions?.find((c) => c.type === salvageConditionType)?.reason;

function replicaPoints(old: Replica, next: Replica, salvaging: boolean): string[] {
  const out: string[] = [];
  if (old.spec.failedAt === undefined && next.spec.failedAt !== undefined) out.push('replica:failed-recorded');
  if (old.spec.failedAt !== undefined && next.spec.failedAt === undefined) out.push(salvaging ? 'salvage:candidates-chosen' : 'rebuild:replica-reused');
  if (old.spec.evictionRequested !== true && next.spec.evictionRequested) out.push('eviction:replica-marked');
  if (old.spec.healthyAt === undefined && next.spec.healthyAt !== undefined) out.push('rebuild:healthy-recorded');
  if (next.spec.failedAt !== undefined && old.spec.failedAt !== undefined && old.spec.desireState === 'running' && next.spec.desireState === 'stopped') out.push('cleanup:kept-stopped');
  return out;
}

function enginePoints(old: Engine, next: Engine, salvage: boolean): string[] {
  const out: string[] = [];
  if (old.spec.desireState === 'running' && next.spec.desireState === 'stopped') out.push(salvage ? 'salvage:engine-stop-stored' : 'volume:engine-stop-stored');
  if (old.spec.desireState === 'stopped' && next.spec.desireState === 'running') out.push(next.spec.salvageRequested === true ? 'salvage:engine-start-stored' : 'volume:engine-start-stored');
  if (old.spec.desireState === 'running' && next.spec.desireState === 'running') {
    const before = Object.keys(old.spec.replicaAddressMap);
    const after = Object.keys(next.spec.replicaAddressMap);
    if (after.some((k) => old.spec.replicaAddressMap[k] !== next.spec.replicaAddressMap[k])) out.push('rebuild:write-set-grown');
    if (before.some((k) => !(k in next.spec.replicaAddressMap))) out.push('volume:write-set-shrunk');
  }
  return out;
}

function volumeStatusPoints(old: Volume, next: Volume): string[] {
  const was = salvageReason(old.status?.conditions);
  const now = salvageReason(next.status?.conditions);
  if (was === now) return [];
  if (now === 'AllReplicasFailed') return ['salvage:faulted-recorded'];
  if (now === 'Salvaging') return ['salvage:salvaging-recorded'];
  if (now === 'Salvaged') return ['salvage:done-recorded'];
  return [];
}

/** The points of each action of one pass (actions with none are left out). */
export function volumeFaultPoints(volume: Volume | undefined, observed: Observed, actions: readonly Action[]): Map<Action, ActionPoints> {
  const out = new Map<Action, ActionPoints>();
  const statusWrite = actions.find((a): a is Extract<Action, { type: 'updateStatus' }> => a.type === 'updateStatus' && a.object.kind === 'Volume');
  const oldSalvage = salvageReason(volume?.status?.conditions);
  const newSalvage = statusWrite === undefined ? oldSalvage : salvageReason((statusWrite.object as Volume).status?.conditions);
  const salvageFailed = oldSalvage === 'AllReplicasFailed' || newSalvage === 'AllReplicasFailed';
  const set = (action: Action, before: string[], after: string[]): void => {
    if (before.length > 0 || after.length > 0) out.set(action, { before, after });
  };
  const find = <T extends Resource>(list: readonly T[], name: string): T | undefined => list.find((o) => o.metadata.name === name);
  for (const action of actions) {
    if (action.type === 'create' && action.object.kind === 'Replica') set(action, [], ['volume:replica-created']);
    else if (action.type === 'update' && action.object.kind === 'Replica') {
      const old = find(observed.replicas, action.object.metadata.name);
      if (old !== undefined) set(action, [], replicaPoints(old, action.object as Replica, oldSalvage === 'AllReplicasFailed'));
    } else if (action.type === 'update' && action.object.kind === 'Engine') {
      const old = find(observed.engines, action.object.metadata.name);
      if (old !== undefined) set(action, [], enginePoints(old, action.object as Engine, salvageFailed));
    } else if (action.type === 'delete' && action.kind === 'Replica' && volume?.metadata.deletionTimestamp === undefined) {
      const evicting = find(observed.replicas, action.name)?.spec.evictionRequested === true;
      const loop = evicting ? 'eviction' : 'cleanup';
      set(action, [`${loop}:delete-decided`], [`${loop}:deleted`]);
    } else if (action === statusWrite && volume !== undefined) {
      set(action, [], volumeStatusPoints(volume, action.object as Volume));
    }
  }
  return out;
}
