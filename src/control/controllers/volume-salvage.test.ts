// Salvage through the volume controller's pure core: every replica failed → faulted, engine
// stopped → replicas chosen by their records (or by the salvage action) → salvage engine → salvaged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Action } from '../runtime/controller.ts';
import type { Engine } from '../resources/engine.ts';
import type { Node } from '../resources/node.ts';
import type { Replica } from '../resources/replica.ts';
import { resourceExamples } from '../resources/testing/resource-examples.ts';
import { validateResource } from '../resources/validate-resource.ts';
import type { VolumeAttachment } from '../resources/volume-attachment.ts';
import type { Volume } from '../resources/volume.ts';
import { Settings } from '../settings/settings.ts';
import { engineNameOf, reconcileVolume, volumeFinalizer, type VolumeObserved } from './volume-reconcile.ts';
import { pickSalvageReplicas } from './volume-salvage.ts';

const gib = 1024 ** 3;
const nowMs = Date.parse('2026-01-01T00:00:00Z');
const names = ['vol-a-r-00000000', 'vol-a-r-00000001', 'vol-a-r-00000002'];

function node(name: string, ready = true): Node {
  return {
    apiVersion: 'shorthorn.io/v1', kind: 'Node', metadata: { name },
    spec: { disks: {}, allowScheduling: true, evictionRequested: false, tags: [] },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

/** Replica i on node n(i+1), running on port 10000+i, with the record `generation` (none: undefined). */
function replica(i: number, generation: number | undefined, extra: Partial<Replica['spec']> = {}): Replica {
  const nodeID = `n${i + 1}`;
  return {
    apiVersion: 'shorthorn.io/v1', kind: 'Replica', metadata: { name: names[i]! },
    spec: {
      volumeName: 'vol-a', volumeSize: gib, nodeID, desireState: 'running', diskID: `uuid-${nodeID}`, diskPath: `/disks/${nodeID}`,
      dataDirectoryName: `vol-a-0000000${i}`, active: true, rebuildRetryCount: 0, evictionRequested: false, ...extra,
    },
    status: { currentState: 'running', ip: '127.0.0.1', port: 10000 + i, ...(generation === undefined ? {} : { generation, epoch: 4 }) },
  };
}

const ticket: VolumeAttachment = {
  apiVersion: 'shorthorn.io/v1', kind: 'VolumeAttachment', metadata: { name: 'vol-a' },
  spec: { volume: 'vol-a', attachmentTickets: { t1: { id: 't1', type: 'shorthorn-api', nodeID: 'n1' } } },
};

function observed(extra: Partial<VolumeObserved> & { autoSalvage?: boolean } = {}): VolumeObserved {
  const { autoSalvage, ...rest } = extra;
  const settings = { ...Settings.defaults().values, ...(autoSalvage === undefined ? {} : { 'auto-salvage': autoSalvage }) };
  return {
    attachment: ticket, engines: [], replicas: [], nodes: ['n1', 'n2', 'n3'].map((n) => node(n)),
    settings, nowMs, freshIds: ['00000011', '00000012', '00000013'], ...rest,
  };
}

const allAddresses = Object.fromEntries(names.map((n, i) => [n, `127.0.0.1:${10000 + i}`]));

function engine(spec: Partial<Engine['spec']>, status?: Engine['status']): Engine {
  return {
    apiVersion: 'shorthorn.io/v1', kind: 'Engine', metadata: { name: engineNameOf('vol-a') },
    spec: { volumeName: 'vol-a', volumeSize: gib, nodeID: 'n1', desireState: 'running', frontend: 'blockdev', epoch: 4, minimumWriteReplicas: 1, replicaAddressMap: allAddresses, active: true, snapshotMaxCount: 250, ...spec },
    ...(status === undefined ? {} : { status }),
  };
}

const volume = (status: NonNullable<Volume['status']>): Volume => ({
  ...resourceExamples.Volume,
  metadata: { name: 'vol-a', finalizers: [volumeFinalizer] },
  spec: { ...resourceExamples.Volume.spec, size: gib, numberOfReplicas: 3, nodeID: 'n1', diskSelector: [] },
  status,
});

const updated = <T>(actions: readonly Action[], kind: string): T[] =>
  actions.flatMap((a) => (a.type === 'update' && a.object.kind === kind ? [a.object as T] : []));
const volumeStatus = (actions: readonly Action[]): NonNullable<Volume['status']> =>
  actions.flatMap((a) => (a.type === 'updateStatus' && a.object.kind === 'Volume' ? [(a.object as Volume).status ?? {}] : []))[0] ?? {};
const salvageCondition = (status: Volume['status']) => status?.conditions?.find((c) => c.type === 'Salvage');

test('every replica failed: faulted, engine stopped, then the highest generation is salvaged and the others rebuilt from it', () => {
  const replicas = [replica(0, 5), replica(1, 7), replica(2, 6)];
  const allErr = Object.fromEntries(names.map((n) => [n, 'ERR' as const]));
  const attached = volume({ state: 'attached', robustness: 'healthy', currentNodeID: 'n1' });

  // 1. A fresh map with no RW replica.
  const step1 = reconcileVolume(attached, observed({ engines: [engine({}, { currentState: 'running', replicaModeMap: allErr })], replicas }));
  const status1 = volumeStatus(step1.actions);
  assert.equal(status1.robustness, 'faulted');
  assert.equal(salvageCondition(status1)?.reason, 'AllReplicasFailed');
  assert.match(salvageCondition(status1)?.message ?? '', /every replica failed .*auto-salvage: restarting/);
  assert.equal(updated<Engine>(step1.actions, 'Engine').length, 0, 'the condition is stored before the engine is stopped');
  assert.ok(step1.notes.some((n) => /every replica failed/.test(n)));
  // 1b. Faulted recorded: the engine is stopped.
  const step1b = reconcileVolume(volume({ ...status1 }), observed({ engines: [engine({}, { currentState: 'running', replicaModeMap: allErr })], replicas }));
  assert.equal(updated<Engine>(step1b.actions, 'Engine')[0]?.spec.desireState, 'stopped');
  assert.equal(volumeStatus(step1b.actions).robustness ?? 'faulted', 'faulted');

  // 2. Engine stopped: the highest generation (replica 1, generation 7) is chosen; the engine
  //    starts in salvage mode with it alone and a new epoch.
  const failed = volume({ ...status1 });
  const step2 = reconcileVolume(failed, observed({ engines: [engine({ desireState: 'stopped' }, { currentState: 'stopped' })], replicas }));
  const started = updated<Engine>(step2.actions, 'Engine')[0];
  assert.deepEqual(started?.spec.replicaAddressMap, { [names[1]!]: '127.0.0.1:10001' });
  assert.equal(started?.spec.salvageRequested, true);
  assert.equal(started?.spec.epoch, 5);
  assert.ok(validateResource('Engine', started).ok);
  const status2 = volumeStatus(step2.actions);
  assert.equal(salvageCondition(status2)?.reason, 'Salvaging');
  assert.match(salvageCondition(status2)?.message ?? '', /highest generation 7: vol-a-r-00000001 generation 7/);
  assert.equal(status2.robustness, 'faulted');
  assert.equal(updated<Replica>(step2.actions, 'Replica').filter((r) => r.spec.failedAt !== undefined).length, 0);

  // 3. While it starts, the write set stays as chosen.
  const salvaging = volume({ ...status2 });
  const step3 = reconcileVolume(salvaging, observed({ engines: [engine({ ...started.spec }, { currentState: 'starting' })], replicas }));
  assert.equal(updated<Engine>(step3.actions, 'Engine').length, 0);
  assert.equal(volumeStatus(step3.actions).robustness ?? 'faulted', 'faulted');

  // 4. It runs: salvaged; salvageRequested cleared; the other replicas join to be rebuilt.
  const step4 = reconcileVolume(salvaging, observed({
    engines: [engine({ ...started.spec }, { currentState: 'running', replicaModeMap: { [names[1]!]: 'RW' } })], replicas,
  }));
  const after = updated<Engine>(step4.actions, 'Engine')[0];
  assert.equal(after?.spec.salvageRequested, undefined);
  assert.deepEqual(Object.keys(after?.spec.replicaAddressMap ?? {}).sort(), names);
  const status4 = volumeStatus(step4.actions);
  assert.deepEqual([salvageCondition(status4)?.status, salvageCondition(status4)?.reason, status4.state], ['True', 'Salvaged', 'attached']);
  assert.notEqual(status4.robustness, 'faulted');
  assert.equal(step4.actions.filter((a) => a.type === 'delete').length, 0, 'no replica is deleted');
});

test('auto-salvage off: faulted until the salvage action names replicas, then those are used', () => {
  const failedStatus: NonNullable<Volume['status']> = {
    state: 'attaching', robustness: 'faulted',
    conditions: [{ type: 'Salvage', status: 'False', reason: 'AllReplicasFailed', message: 'every replica failed' }],
  };
  const stoppedEngine = engine({ desireState: 'stopped' }, { currentState: 'stopped' });
  const replicas = [replica(0, 5), replica(1, 7), replica(2, 6)];
  const waiting = reconcileVolume(volume(failedStatus), observed({ autoSalvage: false, engines: [stoppedEngine], replicas }));
  assert.equal(updated<Engine>(waiting.actions, 'Engine').length, 0, 'no engine starts');
  const status = volumeStatus(waiting.actions);
  assert.equal(status.robustness, 'faulted');
  assert.match(salvageCondition(status)?.message ?? '', /auto-salvage is off/);
  // The same replicas all running again do not start the engine the normal way either.
  assert.equal(status.state, 'attaching');

  const named = [replica(0, 5, { salvageRequested: true }), replica(1, 7), replica(2, 6)];
  const step = reconcileVolume(volume(failedStatus), observed({ autoSalvage: false, engines: [stoppedEngine], replicas: named }));
  const started = updated<Engine>(step.actions, 'Engine')[0];
  assert.deepEqual(started?.spec.replicaAddressMap, { [names[0]!]: '127.0.0.1:10000' });
  assert.match(salvageCondition(volumeStatus(step.actions))?.message ?? '', /named by the salvage action/);
  assert.equal(updated<Replica>(step.actions, 'Replica').find((r) => r.metadata.name === names[0])?.spec.salvageRequested, undefined);
});

test('the salvage waits for records and ready nodes; chosen replicas that are stopped are started first', () => {
  const none = pickSalvageReplicas({ replicas: [replica(0, undefined), replica(1, undefined)], autoSalvage: true, nodeReady: () => true });
  assert.equal(none.kind, 'wait');
  const down = pickSalvageReplicas({ replicas: [replica(0, 5), replica(1, 9)], autoSalvage: true, nodeReady: (n) => n !== 'n2' });
  assert.deepEqual(down.kind === 'chosen' ? [down.chosen.map((r) => r.metadata.name), /not considered.*vol-a-r-00000001/.test(down.reason)] : [], [[names[0]], true]);

  const failedStatus: NonNullable<Volume['status']> = { conditions: [{ type: 'Salvage', status: 'False', reason: 'AllReplicasFailed' }] };
  const stoppedReplica = { ...replica(1, 7, { desireState: 'stopped', failedAt: '2026-01-01T00:00:00Z' }), status: { currentState: 'stopped' as const, generation: 7, epoch: 4 } };
  const step = reconcileVolume(volume(failedStatus), observed({ engines: [engine({ desireState: 'stopped' }, { currentState: 'stopped' })], replicas: [replica(0, 5), stoppedReplica] }));
  assert.equal(updated<Engine>(step.actions, 'Engine').length, 0, 'the engine waits for the chosen replica');
  const restarted = updated<Replica>(step.actions, 'Replica').find((r) => r.metadata.name === names[1]);
  assert.deepEqual([restarted?.spec.desireState, restarted?.spec.failedAt], ['running', undefined]);
});

test('a failed replica whose record is newer than every RW replica is never deleted', () => {
  const attached = volume({ state: 'attached', robustness: 'healthy', currentNodeID: 'n1' });
  const longAgo = '2025-01-01T00:00:00Z';
  const newer = { ...replica(0, 9, { failedAt: longAgo, desireState: 'stopped' }), status: { currentState: 'stopped' as const, generation: 9 } };
  const replicas = [newer, replica(1, 7), replica(2, 7), { ...replica(1, 7), metadata: { name: 'vol-a-r-00000003' } }];
  const modes = { [names[1]!]: 'RW' as const, [names[2]!]: 'RW' as const, 'vol-a-r-00000003': 'RW' as const };
  const step = reconcileVolume(attached, observed({ engines: [engine({}, { currentState: 'running', replicaModeMap: modes })], replicas }));
  assert.equal(step.actions.filter((a) => a.type === 'delete').length, 0);
  const older = { ...newer, status: { currentState: 'stopped' as const, generation: 6 } };
  const step2 = reconcileVolume(attached, observed({ engines: [engine({}, { currentState: 'running', replicaModeMap: modes })], replicas: [older, ...replicas.slice(1)] }));
  assert.equal(step2.actions.filter((a) => a.type === 'delete').length, 1, 'an older one is deleted once stale');
});
