// The fault points each action of a volume pass stands for (scenario S26): the salvage steps as
// reconcileVolume takes them, a failure and reuse, an eviction's delete.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Action } from '../runtime/controller.ts';
import type { Engine } from '../resources/engine.ts';
import type { Node } from '../resources/node.ts';
import type { Replica } from '../resources/replica.ts';
import { resourceExamples } from '../resources/testing/resource-examples.ts';
import type { VolumeAttachment } from '../resources/volume-attachment.ts';
import type { Volume } from '../resources/volume.ts';
import { Settings } from '../settings/settings.ts';
import { volumeFaultPoints } from './volume-fault-points.ts';
import { engineNameOf, reconcileVolume, volumeFinalizer, type VolumeObserved } from './volume-reconcile.ts';

const gib = 1024 ** 3;
const nowMs = Date.parse('2026-01-01T00:00:00Z');
const names = ['vol-a-r-00000000', 'vol-a-r-00000001', 'vol-a-r-00000002'];
const addresses = Object.fromEntries(names.map((n, i) => [n, `127.0.0.1:${10000 + i}`]));

const node = (name: string, evictionRequested = false): Node => ({
  apiVersion: 'shorthorn.io/v1', kind: 'Node', metadata: { name },
  spec: { disks: {}, allowScheduling: true, evictionRequested, tags: [] },
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
});

const replica = (i: number, extra: Partial<Replica['spec']> = {}, status: Partial<NonNullable<Replica['status']>> = {}): Replica => ({
  apiVersion: 'shorthorn.io/v1', kind: 'Replica', metadata: { name: names[i]! },
  spec: {
    volumeName: 'vol-a', volumeSize: gib, nodeID: `n${i + 1}`, desireState: 'running', diskID: `uuid-${i}`, diskPath: `/disks/n${i + 1}`,
    dataDirectoryName: `vol-a-0000000${i}`, active: true, rebuildRetryCount: 0, evictionRequested: false,
    healthyAt: '2025-12-31T00:00:00Z', lastHealthyAt: '2025-12-31T00:00:00Z', ...extra,
  },
  status: { currentState: 'running', ip: '127.0.0.1', port: 10000 + i, generation: 7, epoch: 4, ...status },
});

const engine = (spec: Partial<Engine['spec']>, status: NonNullable<Engine['status']>): Engine => ({
  apiVersion: 'shorthorn.io/v1', kind: 'Engine', metadata: { name: engineNameOf('vol-a') },
  spec: { volumeName: 'vol-a', volumeSize: gib, nodeID: 'n1', desireState: 'running', frontend: 'blockdev', epoch: 4, minimumWriteReplicas: 1, replicaAddressMap: addresses, active: true, ...spec },
  status,
});

const attachment: VolumeAttachment = {
  apiVersion: 'shorthorn.io/v1', kind: 'VolumeAttachment', metadata: { name: 'vol-a' },
  spec: { volume: 'vol-a', attachmentTickets: { t1: { id: 't1', type: 'shorthorn-api', nodeID: 'n1' } } },
};

const observed = (engines: Engine[], replicas: Replica[], evicting?: string): VolumeObserved => ({
  attachment, engines, replicas, nodes: ['n1', 'n2', 'n3', 'n4'].map((n) => node(n, n === evicting)),
  settings: Settings.defaults().values, nowMs, freshIds: ['00000011'],
});

const volume = (status: NonNullable<Volume['status']>): Volume => ({
  ...resourceExamples.Volume,
  metadata: { name: 'vol-a', finalizers: [volumeFinalizer] },
  spec: { ...resourceExamples.Volume.spec, size: gib, numberOfReplicas: 3, nodeID: 'n1', diskSelector: [] },
  status,
});

/** The points of one pass, in the order the controller would pass them. */
function pointsOf(v: Volume, o: VolumeObserved): { points: string[]; actions: Action[] } {
  const { actions } = reconcileVolume(v, o);
  const map = volumeFaultPoints(v, o, actions);
  return { points: actions.flatMap((a) => [...(map.get(a)?.before ?? []), ...(map.get(a)?.after ?? [])]), actions };
}

const volumeStatus = (actions: readonly Action[]): NonNullable<Volume['status']> =>
  actions.flatMap((a) => (a.type === 'updateStatus' && a.object.kind === 'Volume' ? [(a.object as Volume).status ?? {}] : []))[0] ?? {};

test('salvage: faulted, then engine stop, then the salvage start, then done', () => {
  const attached = volume({ state: 'attached', robustness: 'healthy', currentNodeID: 'n1' });
  const replicas = [replica(0), replica(1), replica(2)];
  const allErr = Object.fromEntries(names.map((n) => [n, 'ERR' as const]));
  const step1 = pointsOf(attached, observed([engine({}, { currentState: 'running', replicaModeMap: allErr })], replicas));
  // The condition first, then the engine stop (S26 seed 5: stopping first lost the salvage at a crash between).
  assert.deepEqual(step1.points, ['salvage:faulted-recorded']);
  const failed = volume(volumeStatus(step1.actions));
  const step1b = pointsOf(failed, observed([engine({}, { currentState: 'running', replicaModeMap: allErr })], replicas));
  assert.deepEqual(step1b.points, ['salvage:engine-stop-stored']);
  const step2 = pointsOf(failed, observed([engine({ desireState: 'stopped' }, { currentState: 'stopped' })], replicas));
  assert.deepEqual(step2.points, ['salvage:engine-start-stored', 'salvage:salvaging-recorded']);
  // The manager dies at salvage:engine-start-stored (S26 seed 2): the engine spec is stored, the
  // Salvaging condition is not. The restarted manager must carry on with that start, not stop the
  // engine and start it again with yet another epoch.
  const startedSpec = step2.actions.flatMap((a) => (a.type === 'update' && a.object.kind === 'Engine' ? [(a.object as Engine).spec] : []))[0]!;
  for (const currentState of ['starting', 'running'] as const) {
    const modes = currentState === 'running' ? { replicaModeMap: { [names[0]!]: 'RW' as const } } : {};
    const again = pointsOf(failed, observed([engine(startedSpec, { currentState, ...modes })], replicas));
    assert.ok(!again.points.includes('salvage:engine-stop-stored'), `${currentState}: ${again.points.join(' ')}`);
    assert.equal(again.actions.filter((a) => a.type === 'update' && a.object.kind === 'Engine' && (a.object as Engine).spec.desireState === 'stopped').length, 0);
    if (currentState === 'running') assert.ok(again.points.includes('salvage:done-recorded'), again.points.join(' '));
  }
  const salvaging = volume(volumeStatus(step2.actions));
  const step3 = pointsOf(salvaging, observed([engine({ salvageRequested: true }, { currentState: 'running', replicaModeMap: { [names[0]!]: 'RW' } })], replicas));
  assert.ok(step3.points.includes('salvage:done-recorded'), step3.points.join(' '));
});

test('a failed replica: failure recorded and the write set shrunk; when it runs again, reused and the write set grown; RW: healthy recorded', () => {
  const attached = volume({ state: 'attached', robustness: 'healthy', currentNodeID: 'n1' });
  const modes = Object.fromEntries(names.map((n) => [n, 'RW' as const]));
  const crashed = replica(2, {}, { currentState: 'error' });
  const step1 = pointsOf(attached, observed([engine({}, { currentState: 'running', replicaModeMap: modes })], [replica(0), replica(1), crashed]));
  assert.deepEqual(step1.points, ['replica:failed-recorded', 'volume:write-set-shrunk']);
  const shrunk = Object.fromEntries(names.slice(0, 2).map((n, i) => [n, `127.0.0.1:${10000 + i}`]));
  const failedBack = replica(2, { failedAt: '2026-01-01T00:00:00Z', lastFailedAt: '2026-01-01T00:00:00Z' });
  const step2 = pointsOf(attached, observed([engine({ replicaAddressMap: shrunk }, { currentState: 'running', replicaModeMap: modes })], [replica(0), replica(1), failedBack]));
  assert.deepEqual(step2.points, ['rebuild:replica-reused', 'rebuild:write-set-grown']);
  const { healthyAt: _h, ...spec } = replica(2, { rebuildRetryCount: 1 }).spec;
  const reused = { ...replica(2), spec };
  const step3 = pointsOf(attached, observed([engine({}, { currentState: 'running', replicaModeMap: modes })], [replica(0), replica(1), reused]));
  assert.deepEqual(step3.points, ['rebuild:healthy-recorded']);
});

test('eviction: the delete of an evicting replica, before and after it is stored', () => {
  const attached = volume({ state: 'attached', robustness: 'healthy', currentNodeID: 'n1' });
  const four = [...names, 'vol-a-r-00000003'];
  const modes = Object.fromEntries(four.map((n) => [n, 'RW' as const]));
  const replacement: Replica = { ...replica(1, { nodeID: 'n4' }), metadata: { name: four[3]! } };
  const map = { ...addresses, [four[3]!]: '127.0.0.1:10003' };
  const step = pointsOf(attached, observed([engine({ replicaAddressMap: map }, { currentState: 'running', replicaModeMap: modes })], [replica(0), replica(1), replica(2, { evictionRequested: true }), { ...replacement, status: { ...replacement.status!, port: 10003 } }], 'n3'));
  assert.deepEqual(step.points.filter((p) => p.startsWith('eviction:')), ['eviction:delete-decided', 'eviction:deleted']);
});

test('cleanup: a replaced failed replica past staleReplicaTimeout is deleted, with points before and after the delete', () => {
  const attached = volume({ state: 'attached', robustness: 'healthy', currentNodeID: 'n1' });
  const four = [...names, 'vol-a-r-00000003'];
  const modes = Object.fromEntries(four.filter((n) => n !== names[2]).map((n) => [n, 'RW' as const]));
  const replacement: Replica = { ...replica(1, { nodeID: 'n4' }), metadata: { name: four[3]! } };
  const { [names[2]!]: _gone, ...rest } = addresses;
  const map = { ...rest, [four[3]!]: '127.0.0.1:10003' };
  const stale = replica(2, { failedAt: '2025-01-01T00:00:00Z', desireState: 'stopped' }, { currentState: 'stopped', generation: 6 });
  const step = pointsOf(attached, observed([engine({ replicaAddressMap: map }, { currentState: 'running', replicaModeMap: modes })], [replica(0), replica(1), stale, { ...replacement, status: { ...replacement.status!, port: 10003 } }]));
  assert.deepEqual(step.points, ['cleanup:delete-decided', 'cleanup:deleted']);
});
