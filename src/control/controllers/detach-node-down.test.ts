// Detaching a volume with a replica on a host that is cut off: that replica's agent cannot report
// it stopped, so it counts as stopped while its node is not Ready; the volume reaches `detached`
// and can attach elsewhere. While its node is Ready, a replica still running holds the detach.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Action } from '../runtime/controller.ts';
import type { Engine } from '../resources/engine.ts';
import type { Node } from '../resources/node.ts';
import type { Replica } from '../resources/replica.ts';
import { resourceExamples } from '../resources/testing/resource-examples.ts';
import type { Volume } from '../resources/volume.ts';
import { Settings } from '../settings/settings.ts';
import { markNodeDown } from './node-liveness.ts';
import { engineNameOf, reconcileVolume, volumeFinalizer, type VolumeObserved } from './volume-reconcile.ts';

const gib = 1024 ** 3;
const nowMs = Date.parse('2026-01-01T00:00:00Z');

function node(name: string): Node {
  return {
    apiVersion: 'shorthorn.io/v1', kind: 'Node', metadata: { name },
    spec: { disks: { d: { diskType: 'filesystem', path: `/disks/${name}`, allowScheduling: true, evictionRequested: false, storageReserved: 0, tags: [] } }, allowScheduling: true, evictionRequested: false, tags: [] },
    status: {
      conditions: [{ type: 'Ready', status: 'True' }, { type: 'Schedulable', status: 'True' }],
      diskStatus: { d: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'Schedulable', status: 'True' }], storageAvailable: 100 * gib, storageMaximum: 100 * gib, storageScheduled: 0, diskUUID: `uuid-${name}` } },
    },
  };
}

function replica(name: string, nodeID: string, spec: Partial<Replica['spec']>, status: NonNullable<Replica['status']>): Replica {
  return {
    apiVersion: 'shorthorn.io/v1', kind: 'Replica', metadata: { name },
    spec: { volumeName: 'vol-a', volumeSize: gib, nodeID, desireState: 'stopped', diskID: `uuid-${nodeID}`, diskPath: `/disks/${nodeID}`, dataDirectoryName: `vol-a-${name.slice(-8)}`, active: true, rebuildRetryCount: 0, evictionRequested: false, ...spec },
    status,
  };
}

const volume: Volume = {
  ...resourceExamples.Volume,
  metadata: { name: 'vol-a', finalizers: [volumeFinalizer] },
  spec: { ...resourceExamples.Volume.spec, size: gib, numberOfReplicas: 2, diskSelector: [] },
  status: { state: 'detaching', robustness: 'unknown', currentNodeID: 'n1' },
};
const engine: Engine = {
  apiVersion: 'shorthorn.io/v1', kind: 'Engine', metadata: { name: engineNameOf('vol-a') },
  spec: { volumeName: 'vol-a', volumeSize: gib, nodeID: 'n1', desireState: 'stopped', frontend: 'blockdev', epoch: 1, minimumWriteReplicas: 1, replicaAddressMap: {}, active: true },
  status: { currentState: 'stopped' },
};
const failedAt = new Date(nowMs - 60_000).toISOString();
// Host n3 was cut off while its replica ran: the agent's last report still says running.
const replicas = [
  replica('vol-a-r-00000001', 'n1', {}, { currentState: 'stopped' }),
  replica('vol-a-r-00000002', 'n2', {}, { currentState: 'stopped' }),
  replica('vol-a-r-00000003', 'n3', { failedAt, lastFailedAt: failedAt }, { currentState: 'running', ip: '10.0.0.3', port: 10000 }),
];

function observed(nodes: readonly Node[]): VolumeObserved {
  return {
    attachment: { apiVersion: 'shorthorn.io/v1', kind: 'VolumeAttachment', metadata: { name: 'vol-a' }, spec: { volume: 'vol-a', attachmentTickets: {} } },
    engines: [engine], replicas, nodes, settings: Settings.defaults().values, nowMs, freshIds: ['00000009'],
  };
}

const stateOf = (actions: readonly Action[]): string | undefined =>
  actions.flatMap((a) => (a.type === 'updateStatus' && a.object.kind === 'Volume' ? [(a.object as Volume).status?.state] : []))[0];

test('a replica on a node that is not Ready does not hold the detach', () => {
  const down = markNodeDown(node('n3'), false, nowMs)!;
  assert.equal(stateOf(reconcileVolume(volume, observed([node('n1'), node('n2'), down])).actions), 'detached');
});

test('a replica still running on a Ready node does hold it', () => {
  assert.equal(stateOf(reconcileVolume(volume, observed([node('n1'), node('n2'), node('n3')])).actions) ?? 'detaching', 'detaching');
});
