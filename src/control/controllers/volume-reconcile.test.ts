import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Action } from '../runtime/controller.ts';
import type { Engine } from '../resources/engine.ts';
import type { Node } from '../resources/node.ts';
import type { Resource } from '../resources/object-meta.ts';
import type { Replica } from '../resources/replica.ts';
import { resourceExamples } from '../resources/testing/resource-examples.ts';
import { validateResource } from '../resources/validate-resource.ts';
import type { VolumeAttachment } from '../resources/volume-attachment.ts';
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

const baseVolume: Volume = {
  ...resourceExamples.Volume,
  metadata: { name: 'vol-a', finalizers: [volumeFinalizer] },
  spec: { ...resourceExamples.Volume.spec, size: gib, diskSelector: [] },
  status: {},
};

function observed(extra: Partial<VolumeObserved> = {}): VolumeObserved {
  return {
    attachment: { apiVersion: 'shorthorn.io/v1', kind: 'VolumeAttachment', metadata: { name: 'vol-a' }, spec: { volume: 'vol-a', attachmentTickets: {} } },
    engines: [], replicas: [], nodes: ['n1', 'n2', 'n3'].map(node),
    settings: Settings.defaults().values, nowMs, freshIds: ['00000001', '00000002', '00000003', '00000004'],
    ...extra,
  };
}

const created = (actions: readonly Action[], kind: string): Resource[] =>
  actions.flatMap((a) => (a.type === 'create' && a.object.kind === kind ? [a.object] : []));
const updated = (actions: readonly Action[], kind: string): Resource[] =>
  actions.flatMap((a) => (a.type === 'update' && a.object.kind === kind ? [a.object] : []));
const volumeStatus = (actions: readonly Action[]): Volume['status'] =>
  actions.flatMap((a) => (a.type === 'updateStatus' && a.object.kind === 'Volume' ? [(a.object as Volume).status] : []))[0];

function engine(extra: Partial<Engine['spec']> = {}, status?: Engine['status']): Engine {
  return {
    apiVersion: 'shorthorn.io/v1', kind: 'Engine', metadata: { name: engineNameOf('vol-a') },
    spec: { volumeName: 'vol-a', volumeSize: gib, desireState: 'stopped', frontend: 'blockdev', epoch: 0, minimumWriteReplicas: 1, replicaAddressMap: {}, active: true, snapshotMaxCount: 250, ...extra },
    ...(status === undefined ? {} : { status }),
  };
}

test('a new volume first gets its finalizer, then an engine and three replicas on three nodes', () => {
  const first = reconcileVolume({ ...baseVolume, metadata: { name: 'vol-a' } }, observed());
  assert.deepEqual(first.actions.map((a) => a.type), ['update']);
  const { actions, notes } = reconcileVolume(baseVolume, observed());
  const replicas = created(actions, 'Replica') as Replica[];
  assert.equal(created(actions, 'Engine').length, 1);
  assert.deepEqual(replicas.map((r) => r.spec.nodeID).sort(), ['n1', 'n2', 'n3']);
  for (const r of [...replicas, ...created(actions, 'Engine')]) assert.ok(validateResource(r.kind, r).ok, `${r.kind} is valid`);
  assert.equal(replicas[0]?.spec.desireState, 'stopped');
  assert.equal(notes.filter((n) => n.includes('placed replica')).length, 3);
  assert.equal(volumeStatus(actions)?.state, 'detached');
});

test('with two nodes and hard anti-affinity the third replica is unschedulable, with the reason in a condition', () => {
  const { actions, notes } = reconcileVolume(baseVolume, observed({ nodes: [node('n1'), node('n2')] }));
  assert.equal(created(actions, 'Replica').length, 2);
  const scheduled = volumeStatus(actions)?.conditions?.find((c) => c.type === 'Scheduled');
  assert.equal(scheduled?.status, 'False');
  assert.ok(notes.some((n) => n.includes('cannot place a replica')));
  assert.ok(actions.some((a) => a.type === 'requeueAfter'));
});

function replica(name: string, nodeID: string, extra: Partial<Replica['spec']> = {}, status?: Replica['status']): Replica {
  return {
    apiVersion: 'shorthorn.io/v1', kind: 'Replica', metadata: { name },
    spec: { volumeName: 'vol-a', volumeSize: gib, nodeID, desireState: 'stopped', diskID: `uuid-${nodeID}`, diskPath: `/disks/${nodeID}`, dataDirectoryName: `vol-a-${name.slice(-8)}`, active: true, rebuildRetryCount: 0, evictionRequested: false, ...extra },
    ...(status === undefined ? {} : { status }),
  };
}

test('attach: a ticket sets nodeID; replicas run; the engine starts with a new epoch; attached and healthy', () => {
  const ticket: VolumeAttachment = { ...observed().attachment!, spec: { volume: 'vol-a', attachmentTickets: { t1: { id: 't1', type: 'shorthorn-api', nodeID: 'n1' } } } };
  const stopped = ['n1', 'n2', 'n3'].map((n, i) => replica(`vol-a-r-0000000${i}`, n));
  const detached = { ...baseVolume, status: { state: 'detached' as const } };
  const step1 = reconcileVolume(detached, observed({ attachment: ticket, engines: [engine()], replicas: stopped }));
  assert.equal((updated(step1.actions, 'Volume')[0] as Volume).spec.nodeID, 'n1');

  const attaching = { ...detached, spec: { ...detached.spec, nodeID: 'n1' } };
  const step2 = reconcileVolume(attaching, observed({ attachment: ticket, engines: [engine()], replicas: stopped }));
  assert.deepEqual((updated(step2.actions, 'Replica') as Replica[]).map((r) => r.spec.desireState), ['running', 'running', 'running']);
  assert.equal(updated(step2.actions, 'Engine').length, 0, 'the engine waits for its replicas');

  const running = stopped.map((r, i) => ({ ...r, spec: { ...r.spec, desireState: 'running' as const }, status: { currentState: 'running' as const, ip: '127.0.0.1', port: 10000 + i } }));
  const step3 = reconcileVolume(attaching, observed({ attachment: ticket, engines: [engine()], replicas: running }));
  const started = updated(step3.actions, 'Engine')[0] as Engine;
  assert.equal(started.spec.epoch, 1);
  assert.equal(started.spec.desireState, 'running');
  assert.equal(Object.keys(started.spec.replicaAddressMap).length, 3);

  const modes = Object.fromEntries(running.map((r) => [r.metadata.name, 'RW' as const]));
  const up = engine({ ...started.spec }, { currentState: 'running', replicaModeMap: modes });
  const step4 = reconcileVolume(attaching, observed({ attachment: ticket, engines: [up], replicas: running }));
  assert.deepEqual([volumeStatus(step4.actions)?.state, volumeStatus(step4.actions)?.robustness, volumeStatus(step4.actions)?.currentNodeID], ['attached', 'healthy', 'n1']);
  const va = step4.actions.find((a) => a.type === 'updateStatus' && a.object.kind === 'VolumeAttachment');
  assert.equal((va?.type === 'updateStatus' ? (va.object as VolumeAttachment) : undefined)?.status?.attachmentTicketStatuses?.['t1']?.satisfied, true);

  // One replica ERR and its process in error: degraded, the replica marked failed.
  const broken = running.map((r, i) => (i === 1 ? { ...r, status: { currentState: 'error' as const, errorMessage: 'killed' } } : r));
  const degradedEngine = engine({ ...started.spec }, { currentState: 'running', replicaModeMap: { ...modes, [running[1]!.metadata.name]: 'ERR' } });
  const attachedVolume = { ...attaching, status: { state: 'attached' as const, robustness: 'healthy' as const, currentNodeID: 'n1' } };
  const step5 = reconcileVolume(attachedVolume, observed({ attachment: ticket, engines: [degradedEngine], replicas: broken }));
  assert.equal(volumeStatus(step5.actions)?.robustness, 'degraded');
  assert.ok((updated(step5.actions, 'Replica') as Replica[]).some((r) => r.spec.failedAt !== undefined));
});

test('deletion deletes the engine and replicas first, then releases the volume', () => {
  const deleting = { ...baseVolume, metadata: { ...baseVolume.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } };
  const step1 = reconcileVolume(deleting, observed({ engines: [engine()], replicas: [replica('vol-a-r-00000001', 'n1')] }));
  assert.deepEqual(step1.actions.filter((a) => a.type === 'delete').map((a) => (a.type === 'delete' ? a.kind : '')).sort(), ['Engine', 'Replica', 'VolumeAttachment']);
  const step2 = reconcileVolume(deleting, observed({ attachment: undefined }));
  assert.deepEqual((updated(step2.actions, 'Volume')[0] as Volume).metadata.finalizers, []);
});

test('a failed replica that stays down: wait for replica-replenishment-wait-interval, then a new one elsewhere', () => {
  const ticket: VolumeAttachment = { ...observed().attachment!, spec: { volume: 'vol-a', attachmentTickets: { t1: { id: 't1', type: 'shorthorn-api', nodeID: 'n1' } } } };
  const failedAt = new Date(nowMs - 1000).toISOString();
  const replicas = [
    replica('vol-a-r-00000001', 'n1', { desireState: 'running' }, { currentState: 'running', ip: '127.0.0.1', port: 10001 }),
    replica('vol-a-r-00000002', 'n2', { desireState: 'running', failedAt, lastFailedAt: failedAt, healthyAt: failedAt }, { currentState: 'error' }),
  ];
  const nodes = [node('n1'), node('n2'), node('n3')];
  // n2 (where the failed replica lives) is down, so the replica cannot be reused in place.
  nodes[1] = { ...nodes[1]!, status: { ...nodes[1]!.status, conditions: [{ type: 'Ready', status: 'False' }] } };
  const volume: Volume = {
    ...baseVolume,
    spec: { ...baseVolume.spec, numberOfReplicas: 2, nodeID: 'n1' },
    status: { state: 'attached', robustness: 'degraded', currentNodeID: 'n1', lastDegradedAt: new Date(nowMs - 1000).toISOString() },
  };
  const running = engine({ nodeID: 'n1', desireState: 'running', epoch: 1, replicaAddressMap: { 'vol-a-r-00000001': '127.0.0.1:10001', 'vol-a-r-00000002': '127.0.0.1:10002' } },
    { currentState: 'running', replicaModeMap: { 'vol-a-r-00000001': 'RW', 'vol-a-r-00000002': 'ERR' } });
  const waiting = reconcileVolume(volume, observed({ attachment: ticket, engines: [running], replicas, nodes }));
  assert.equal(created(waiting.actions, 'Replica').length, 0);
  assert.ok(waiting.notes.some((n) => n.includes('waiting until')), waiting.notes.join('\n'));
  const map = (updated(waiting.actions, 'Engine')[0] as Engine | undefined)?.spec.replicaAddressMap;
  assert.deepEqual(Object.keys(map ?? {}), ['vol-a-r-00000001'], 'the failed replica leaves the write set');

  const later = reconcileVolume(volume, observed({ attachment: ticket, engines: [running], replicas, nodes, nowMs: nowMs + 601_000 }));
  const added = created(later.actions, 'Replica') as Replica[];
  assert.deepEqual(added.map((r) => [r.spec.nodeID, r.spec.desireState]), [['n3', 'running']]);
});

test('node liveness: a node whose agent lease is gone becomes not Ready, once', () => {
  const up = node('n1');
  assert.equal(markNodeDown(up, true, nowMs), undefined);
  const down = markNodeDown(up, false, nowMs);
  assert.deepEqual(down?.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'False');
  assert.ok(validateResource('Node', down).ok);
  assert.equal(markNodeDown(down, false, nowMs + 1000), undefined, 'no rewrite while it stays down');
});

test('a failed, stopped replica on a ready node is started again to be reused, then taken back when it runs', () => {
  const failedAt = new Date(nowMs - 1000).toISOString();
  const ticket: VolumeAttachment = { ...observed().attachment!, spec: { volume: 'vol-a', attachmentTickets: { t1: { id: 't1', type: 'shorthorn-api', nodeID: 'n1' } } } };
  const volume: Volume = {
    ...baseVolume,
    spec: { ...baseVolume.spec, numberOfReplicas: 2, nodeID: 'n1' },
    status: { state: 'attached', robustness: 'degraded', currentNodeID: 'n1', lastDegradedAt: failedAt },
  };
  const healthy = replica('vol-a-r-00000001', 'n1', { desireState: 'running' }, { currentState: 'running', ip: '127.0.0.1', port: 10001 });
  const failed = replica('vol-a-r-00000002', 'n2', { desireState: 'stopped', failedAt, lastFailedAt: failedAt }, { currentState: 'stopped' });
  const up = engine({ nodeID: 'n1', desireState: 'running', epoch: 1, replicaAddressMap: { 'vol-a-r-00000001': '127.0.0.1:10001' } },
    { currentState: 'running', replicaModeMap: { 'vol-a-r-00000001': 'RW' } });
  const step1 = reconcileVolume(volume, observed({ attachment: ticket, engines: [up], replicas: [healthy, failed] }));
  const restarted = (updated(step1.actions, 'Replica') as Replica[]).find((r) => r.metadata.name === failed.metadata.name);
  assert.equal(restarted?.spec.desireState, 'running');
  assert.equal(created(step1.actions, 'Replica').length, 0, 'no new replica while the old one can be reused');

  const running = { ...failed, spec: { ...failed.spec, desireState: 'running' as const }, status: { currentState: 'running' as const, ip: '127.0.0.1', port: 10002 } };
  const step2 = reconcileVolume(volume, observed({ attachment: ticket, engines: [up], replicas: [healthy, running] }));
  const reused = (updated(step2.actions, 'Replica') as Replica[]).find((r) => r.metadata.name === failed.metadata.name);
  assert.equal(reused?.spec.failedAt, undefined);
  assert.equal(reused?.spec.rebuildRetryCount, 1);
  assert.equal((updated(step2.actions, 'Engine')[0] as Engine).spec.replicaAddressMap['vol-a-r-00000002'], '127.0.0.1:10002');
});

test('a replaced failed replica is deleted once stale, and only while another replica is RW', () => {
  const ticket: VolumeAttachment = { ...observed().attachment!, spec: { volume: 'vol-a', attachmentTickets: { t1: { id: 't1', type: 'shorthorn-api', nodeID: 'n1' } } } };
  const volume: Volume = { ...baseVolume, spec: { ...baseVolume.spec, numberOfReplicas: 1, nodeID: 'n1', staleReplicaTimeout: 10 }, status: { state: 'attached', robustness: 'healthy', currentNodeID: 'n1' } };
  const failedAt = new Date(nowMs - 5 * 60_000).toISOString();
  const healthy = replica('vol-a-r-00000001', 'n1', { desireState: 'running' }, { currentState: 'running', ip: '127.0.0.1', port: 10001 });
  const old = replica('vol-a-r-00000002', 'n2', { desireState: 'stopped', failedAt, lastFailedAt: failedAt }, { currentState: 'stopped' });
  const rw = engine({ nodeID: 'n1', desireState: 'running', epoch: 1, replicaAddressMap: { 'vol-a-r-00000001': '127.0.0.1:10001' } },
    { currentState: 'running', replicaModeMap: { 'vol-a-r-00000001': 'RW' } });
  const deletes = (actions: readonly Action[]): string[] => actions.flatMap((a) => (a.type === 'delete' ? [a.name] : []));
  const young = reconcileVolume(volume, observed({ attachment: ticket, engines: [rw], replicas: [healthy, old] }));
  assert.deepEqual(deletes(young.actions), [], 'failed 5 min ago, timeout 10 min: kept');
  const stale = reconcileVolume(volume, observed({ attachment: ticket, engines: [rw], replicas: [healthy, old], nowMs: nowMs + 6 * 60_000 }));
  assert.deepEqual(deletes(stale.actions), ['vol-a-r-00000002']);
  assert.ok(stale.notes.some((n) => n.includes('deleting failed replica')));
  const noRw = engine({ ...rw.spec }, { currentState: 'running', replicaModeMap: { 'vol-a-r-00000001': 'WO' } });
  const unsafe = reconcileVolume(volume, observed({ attachment: ticket, engines: [noRw], replicas: [healthy, old], nowMs: nowMs + 6 * 60_000 }));
  assert.deepEqual(deletes(unsafe.actions), [], 'no RW replica holds the data for sure: kept');
});

test('RW again after a rebuild: healthyAt set and the retry count reset', () => {
  const volume: Volume = { ...baseVolume, spec: { ...baseVolume.spec, numberOfReplicas: 1, nodeID: 'n1' }, status: { state: 'attached', robustness: 'degraded', currentNodeID: 'n1' } };
  const ticket: VolumeAttachment = { ...observed().attachment!, spec: { volume: 'vol-a', attachmentTickets: { t1: { id: 't1', type: 'shorthorn-api', nodeID: 'n1' } } } };
  const rebuilt = replica('vol-a-r-00000001', 'n1', { desireState: 'running', rebuildRetryCount: 3 }, { currentState: 'running', ip: '127.0.0.1', port: 10001 });
  const rw = engine({ nodeID: 'n1', desireState: 'running', epoch: 1, replicaAddressMap: { 'vol-a-r-00000001': '127.0.0.1:10001' } },
    { currentState: 'running', replicaModeMap: { 'vol-a-r-00000001': 'RW' } });
  const { actions } = reconcileVolume(volume, observed({ attachment: ticket, engines: [rw], replicas: [rebuilt] }));
  const r = (updated(actions, 'Replica') as Replica[])[0];
  assert.equal(r?.spec.rebuildRetryCount, 0);
  assert.equal(r?.spec.healthyAt, new Date(nowMs).toISOString());
});

test('robustness: an engine status without a mode map (the agent\'s poll got no answer) is never faulted', () => {
  // Seen in the UI test: node-2's replica down and then rebuilding, the engine on n1 busy; a poll
  // of /v1/status timed out and the agent wrote the engine as running with no replica modes.
  const ticket: VolumeAttachment = { ...observed().attachment!, spec: { volume: 'vol-a', attachmentTickets: { t1: { id: 't1', type: 'shorthorn-api', nodeID: 'n1' } } } };
  const names = ['vol-a-r-00000001', 'vol-a-r-00000002', 'vol-a-r-00000003'];
  const replicas = names.map((n, i) => replica(n, `n${i + 1}`, { desireState: 'running' }, { currentState: 'running', ip: '127.0.0.1', port: 10001 + i }));
  const spec = { nodeID: 'n1', desireState: 'running' as const, epoch: 1, replicaAddressMap: Object.fromEntries(names.map((n, i) => [n, `127.0.0.1:${10001 + i}`])) };
  const volumeWith = (robustness: 'degraded' | 'healthy' | 'faulted' | undefined): Volume => ({
    ...baseVolume,
    spec: { ...baseVolume.spec, numberOfReplicas: 3, nodeID: 'n1' },
    status: { state: 'attached', currentNodeID: 'n1', lastDegradedAt: new Date(nowMs - 1000).toISOString(), ...(robustness === undefined ? {} : { robustness }) },
  });
  const robustnessOf = (volume: Volume, engineStatus: Engine['status']): string | undefined => {
    const decision = reconcileVolume(volume, observed({ attachment: ticket, engines: [engine(spec, engineStatus)], replicas }));
    return volumeStatus(decision.actions)?.robustness ?? volume.status?.robustness;
  };

  // The sequence the agent wrote: degraded, then no map (poll failed), then degraded again.
  const degradedModes = { [names[0]!]: 'RW' as const, [names[1]!]: 'WO' as const, [names[2]!]: 'RW' as const };
  assert.equal(robustnessOf(volumeWith('healthy'), { currentState: 'running', replicaModeMap: degradedModes }), 'degraded');
  assert.equal(robustnessOf(volumeWith('degraded'), { currentState: 'running' }), 'degraded', 'no observation keeps degraded');
  assert.equal(robustnessOf(volumeWith('healthy'), { currentState: 'running' }), 'healthy', 'no observation keeps healthy');
  assert.equal(robustnessOf(volumeWith(undefined), { currentState: 'running' }), 'unknown', 'nothing to keep: unknown');
  assert.equal(robustnessOf(volumeWith('faulted'), { currentState: 'running' }), 'unknown', 'faulted only on a fresh observation');
  // A fresh observation with no RW replica is faulted.
  assert.equal(robustnessOf(volumeWith('degraded'), { currentState: 'running', replicaModeMap: {} }), 'faulted');
  assert.equal(robustnessOf(volumeWith('degraded'), { currentState: 'running', replicaModeMap: { [names[0]!]: 'ERR', [names[1]!]: 'WO' } }), 'faulted');
});
