// The per-node rebuild limit, the back-off between failed rebuilds and eviction: the pure rules
// (rebuild-admission.ts, eviction.ts) and how the volume controller's reconcile applies them.
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
import { evictionRequestedFor, evictionStep } from './eviction.ts';
import { admitRebuild, mergeRebuilds, rebuildAllowedAtMs, rebuildBackoffMs, rebuildingReplicasByNode } from './rebuild-admission.ts';
import { engineNameOf, reconcileVolume, volumeFinalizer, type VolumeObserved } from './volume-reconcile.ts';

const gib = 1024 ** 3;
const nowMs = Date.parse('2026-01-01T00:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();

function node(name: string, extra: { evict?: boolean; evictDisk?: boolean } = {}): Node {
  return {
    apiVersion: 'shorthorn.io/v1', kind: 'Node', metadata: { name },
    spec: {
      disks: { d: { diskType: 'filesystem', path: `/disks/${name}`, allowScheduling: true, evictionRequested: extra.evictDisk ?? false, storageReserved: 0, tags: [] } },
      allowScheduling: true, evictionRequested: extra.evict ?? false, tags: [],
    },
    status: {
      conditions: [{ type: 'Ready', status: 'True' }, { type: 'Schedulable', status: 'True' }],
      diskStatus: { d: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'Schedulable', status: 'True' }], storageAvailable: 100 * gib, storageMaximum: 100 * gib, storageScheduled: 0, diskUUID: `uuid-${name}` } },
    },
  };
}

function replica(name: string, nodeID: string, extra: Partial<Replica['spec']> = {}, status?: Replica['status'], volumeName = 'vol-a'): Replica {
  return {
    apiVersion: 'shorthorn.io/v1', kind: 'Replica', metadata: { name },
    spec: {
      volumeName, volumeSize: gib, nodeID, desireState: 'running', diskID: `uuid-${nodeID}`, diskPath: `/disks/${nodeID}`,
      dataDirectoryName: `${volumeName}-${name.slice(-8)}`, active: true, rebuildRetryCount: 0, evictionRequested: false, ...extra,
    },
    ...(status === undefined ? {} : { status }),
  };
}

const running = (port: number): NonNullable<Replica['status']> => ({ currentState: 'running', ip: '127.0.0.1', port });

function engine(volumeName: string, map: Record<string, string>, modes: Record<string, 'RW' | 'WO' | 'ERR'> | undefined): Engine {
  return {
    apiVersion: 'shorthorn.io/v1', kind: 'Engine', metadata: { name: engineNameOf(volumeName) },
    spec: { volumeName, volumeSize: gib, nodeID: 'n1', desireState: 'running', frontend: 'blockdev', epoch: 1, minimumWriteReplicas: 1, replicaAddressMap: map, active: true, snapshotMaxCount: 250 },
    status: { currentState: 'running', ...(modes === undefined ? {} : { replicaModeMap: modes }) },
  };
}

const ticket: VolumeAttachment = {
  apiVersion: 'shorthorn.io/v1', kind: 'VolumeAttachment', metadata: { name: 'vol-a' },
  spec: { volume: 'vol-a', attachmentTickets: { t1: { id: 't1', type: 'shorthorn-api', nodeID: 'n1' } } },
};

function attachedVolume(numberOfReplicas: number, robustness: 'healthy' | 'degraded' = 'degraded'): Volume {
  return {
    ...resourceExamples.Volume,
    metadata: { name: 'vol-a', finalizers: [volumeFinalizer] },
    spec: { ...resourceExamples.Volume.spec, size: gib, diskSelector: [], numberOfReplicas, nodeID: 'n1' },
    status: { state: 'attached', robustness, currentNodeID: 'n1', lastDegradedAt: iso(nowMs - 1000) },
  };
}

function observed(extra: Partial<VolumeObserved>): VolumeObserved {
  return {
    attachment: ticket, engines: [], replicas: [], nodes: ['n1', 'n2', 'n3', 'n4'].map((n) => node(n)),
    settings: Settings.defaults().values, nowMs, freshIds: ['0000000a', '0000000b', '0000000c'],
    ...extra,
  };
}

const updated = <T>(actions: readonly Action[], kind: string): T[] =>
  actions.flatMap((a) => (a.type === 'update' && a.object.kind === kind ? [a.object as T] : []));
const createdReplicas = (actions: readonly Action[]): Replica[] =>
  actions.flatMap((a) => (a.type === 'create' && a.object.kind === 'Replica' ? [a.object as Replica] : []));
const deleted = (actions: readonly Action[]): string[] => actions.flatMap((a) => (a.type === 'delete' ? [a.name] : []));
const condition = (actions: readonly Action[], type: string) =>
  actions.flatMap((a) => (a.type === 'updateStatus' && a.object.kind === 'Volume' ? [(a.object as Volume).status?.conditions?.find((c) => c.type === type)] : []))[0];

// ---- pure rules ----

test('rebuilds per node: replicas in a running engine\'s write set that it does not report RW, across volumes', () => {
  const replicas = [
    replica('a-r-1', 'n1', {}, undefined, 'a'), replica('a-r-2', 'n2', {}, undefined, 'a'), replica('a-r-3', 'n3', {}, undefined, 'a'),
    replica('b-r-1', 'n2', {}, undefined, 'b'), replica('b-r-2', 'n3', { healthyAt: iso(nowMs) }, undefined, 'b'),
    replica('c-r-1', 'n2', {}, undefined, 'c'),
  ];
  const engines = [
    engine('a', { 'a-r-1': 'x', 'a-r-2': 'x', 'a-r-3': 'x' }, { 'a-r-1': 'RW', 'a-r-2': 'WO', 'a-r-3': 'ERR' }),
    // No fresh map: a replica that was RW before (healthyAt) is not counted, a new one is.
    engine('b', { 'b-r-1': 'x', 'b-r-2': 'x' }, undefined),
    { ...engine('c', { 'c-r-1': 'x' }, {}), spec: { ...engine('c', { 'c-r-1': 'x' }, {}).spec, desireState: 'stopped' as const } },
  ];
  const byNode = rebuildingReplicasByNode(engines, replicas);
  assert.deepEqual(Object.fromEntries(byNode), { n2: ['a-r-2', 'b-r-1'], n3: ['a-r-3'] });
  assert.deepEqual(Object.fromEntries(mergeRebuilds(byNode, new Map([['n2', ['b-r-1', 'z']], ['n4', ['y']]]))), { n2: ['a-r-2', 'b-r-1', 'z'], n3: ['a-r-3'], n4: ['y'] });
});

test('admission: 0 disables rebuilding, the limit counts other replicas on the node, the replica itself is not counted', () => {
  const rebuilds = new Map([['n2', ['x', 'y']]]);
  assert.deepEqual(admitRebuild({ replicaName: 'r', nodeID: 'n2', limit: 0, rebuilds }).ok, false);
  const full = admitRebuild({ replicaName: 'r', nodeID: 'n2', limit: 2, rebuilds });
  assert.equal(full.ok, false);
  assert.match(full.ok ? '' : full.message, /node n2 is rebuilding 2 replica\(s\) \(x, y\).*limit is 2/);
  assert.deepEqual(admitRebuild({ replicaName: 'y', nodeID: 'n2', limit: 2, rebuilds }), { ok: true, running: 1 });
  assert.deepEqual(admitRebuild({ replicaName: 'r', nodeID: 'n3', limit: 1, rebuilds }), { ok: true, running: 0 });
});

test('back-off: none for the first rebuild, then 10 s doubling per failed rebuild, at most 5 min, from the last failure', () => {
  assert.deepEqual([0, 1, 2, 3, 6, 100].map(rebuildBackoffMs), [0, 10_000, 20_000, 40_000, 300_000, 300_000]);
  const r = replica('r', 'n2', { rebuildRetryCount: 2, failedAt: iso(nowMs), lastFailedAt: iso(nowMs) });
  assert.equal(rebuildAllowedAtMs(r), nowMs + 20_000);
});

test('eviction flag from the node or the disk (matched by UUID, else path); an unknown node keeps the replica\'s flag', () => {
  const r = replica('r', 'n2');
  assert.equal(evictionRequestedFor(r, [node('n2')]), false);
  assert.equal(evictionRequestedFor(r, [node('n2', { evict: true })]), true);
  assert.equal(evictionRequestedFor(r, [node('n2', { evictDisk: true })]), true);
  assert.equal(evictionRequestedFor({ ...r, spec: { ...r.spec, evictionRequested: true } }, [node('n9')]), true);
});

test('eviction step: wait while detached, replace while fewer RW elsewhere, remove only with enough RW elsewhere on a fresh map', () => {
  const evicting = replica('r2', 'n2', { evictionRequested: true });
  const replicas = [replica('r1', 'n1'), evicting, replica('r3', 'n3'), replica('r4', 'n4')];
  assert.deepEqual(evictionStep({ replicas: replicas.filter((r) => r !== evicting), numberOfReplicas: 3, attached: true, modes: {} }), { kind: 'none' });
  assert.deepEqual(evictionStep({ replicas, numberOfReplicas: 3, attached: false, modes: undefined }), { kind: 'wait-attach', evicting: ['r2'] });
  assert.deepEqual(evictionStep({ replicas, numberOfReplicas: 3, attached: true, modes: { r1: 'RW', r2: 'RW', r3: 'RW', r4: 'WO' } }), { kind: 'replace', evicting: ['r2'], rwElsewhere: 2 });
  assert.deepEqual(evictionStep({ replicas, numberOfReplicas: 3, attached: true, modes: undefined }), { kind: 'replace', evicting: ['r2'], rwElsewhere: 0 });
  assert.deepEqual(evictionStep({ replicas, numberOfReplicas: 3, attached: true, modes: { r1: 'RW', r2: 'RW', r3: 'RW', r4: 'RW' } }), { kind: 'remove', replica: 'r2', rwElsewhere: ['r1', 'r3', 'r4'] });
  // The only copy is never removed: one replica wanted, the evicting one the only RW.
  assert.equal(evictionStep({ replicas: [evicting, replica('r5', 'n3')], numberOfReplicas: 1, attached: true, modes: { r2: 'RW', r5: 'WO' } }).kind, 'replace');
});

// ---- the volume controller ----

test('reconcile: a returning replica joins the write set only within the per-node rebuild limit, and says why it waits', () => {
  const volume = attachedVolume(2);
  const healthy = replica('vol-a-r-00000001', 'n1', { healthyAt: iso(nowMs - 60_000) }, running(10001));
  const back = replica('vol-a-r-00000002', 'n2', { failedAt: iso(nowMs - 5000), lastFailedAt: iso(nowMs - 5000), healthyAt: iso(nowMs - 60_000) }, running(10002));
  const up = engine('vol-a', { 'vol-a-r-00000001': '127.0.0.1:10001' }, { 'vol-a-r-00000001': 'RW' });
  const limit1 = { ...Settings.defaults().values, 'concurrent-replica-rebuild-per-node-limit': 1 };
  // Another volume rebuilds on n2 already.
  const busy = reconcileVolume(volume, observed({ engines: [up], replicas: [healthy, back], settings: limit1, rebuilds: new Map([['n2', ['vol-b-r-00000009']]]) }));
  assert.equal(updated<Engine>(busy.actions, 'Engine').length, 0, 'the write set is unchanged');
  assert.equal(busy.rebuildsStarted, undefined);
  const waiting = condition(busy.actions, 'ReplicaRebuild');
  assert.deepEqual([waiting?.status, waiting?.reason], ['False', 'RebuildLimitReached']);
  assert.match(waiting?.message ?? '', /vol-a-r-00000002 waits to rebuild: node n2 is rebuilding 1 replica\(s\) \(vol-b-r-00000009\)/);
  assert.ok(busy.notes.some((n) => n.includes('waits to rebuild')), busy.notes.join('\n'));
  assert.ok(busy.actions.some((a) => a.type === 'requeueAfter'));
  for (const a of busy.actions) if (a.type === 'updateStatus') assert.ok(validateResource(a.object.kind, a.object).ok);

  // The other rebuild ended: it joins, and the driver is told so it counts it.
  const free = reconcileVolume(volume, observed({ engines: [up], replicas: [healthy, back], settings: limit1, rebuilds: new Map() }));
  assert.equal(updated<Engine>(free.actions, 'Engine')[0]?.spec.replicaAddressMap['vol-a-r-00000002'], '127.0.0.1:10002');
  assert.deepEqual(free.rebuildsStarted, [{ replica: 'vol-a-r-00000002', nodeID: 'n2' }]);
  assert.ok(free.notes.some((n) => n.includes('joins the write set to be rebuilt (1 of at most 1')), free.notes.join('\n'));

  // 0: rebuilding disabled.
  const off = reconcileVolume(volume, observed({ engines: [up], replicas: [healthy, back], settings: { ...limit1, 'concurrent-replica-rebuild-per-node-limit': 0 } }));
  assert.equal(condition(off.actions, 'ReplicaRebuild')?.reason, 'RebuildingDisabled');
});

test('reconcile: a replica still in the write set but ERR (restarted before the manager saw it fail) is held to the limit too', () => {
  const volume = attachedVolume(2);
  const healthy = replica('vol-a-r-00000001', 'n1', { healthyAt: iso(nowMs - 60_000) }, running(10001));
  const erred = replica('vol-a-r-00000002', 'n2', { healthyAt: iso(nowMs - 60_000) }, running(10002));
  const map = { 'vol-a-r-00000001': '127.0.0.1:10001', 'vol-a-r-00000002': '127.0.0.1:10002' };
  const up = engine('vol-a', map, { 'vol-a-r-00000001': 'RW', 'vol-a-r-00000002': 'ERR' });
  const limit1 = { ...Settings.defaults().values, 'concurrent-replica-rebuild-per-node-limit': 1 };
  const busy = reconcileVolume(volume, observed({ engines: [up], replicas: [healthy, erred], settings: limit1, rebuilds: new Map([['n2', ['vol-a-r-00000002', 'vol-b-r-00000009']]]) }));
  assert.deepEqual(Object.keys(updated<Engine>(busy.actions, 'Engine')[0]?.spec.replicaAddressMap ?? {}), ['vol-a-r-00000001'], 'out of the write set while it waits');
  assert.equal(condition(busy.actions, 'ReplicaRebuild')?.reason, 'RebuildLimitReached');
  const free = reconcileVolume(volume, observed({ engines: [up], replicas: [healthy, erred], settings: limit1, rebuilds: new Map([['n2', ['vol-a-r-00000002']]]) }));
  assert.equal(updated<Engine>(free.actions, 'Engine').length, 0, 'stays in the write set; the agent rebuilds it');
  assert.deepEqual(free.rebuildsStarted, [{ replica: 'vol-a-r-00000002', nodeID: 'n2' }], 'counted as a grant');
  assert.ok(!free.notes.some((n) => n.includes('joins the write set')), free.notes.join('\n'));
  // A fresh engine with no mode map yet: nothing is held back.
  const fresh = engine('vol-a', map, undefined);
  const starting = reconcileVolume(volume, observed({ engines: [fresh], replicas: [healthy, erred], settings: limit1, rebuilds: new Map([['n2', ['vol-b-r-00000009']]]) }));
  assert.equal(updated<Engine>(starting.actions, 'Engine').length, 0);
});

test('reconcile: a replica whose rebuilds keep failing is taken back only after its back-off', () => {
  const volume = attachedVolume(2);
  const healthy = replica('vol-a-r-00000001', 'n1', { healthyAt: iso(nowMs - 60_000) }, running(10001));
  const failing = replica('vol-a-r-00000002', 'n2', { failedAt: iso(nowMs - 5000), lastFailedAt: iso(nowMs - 5000), rebuildRetryCount: 2 }, running(10002));
  const up = engine('vol-a', { 'vol-a-r-00000001': '127.0.0.1:10001' }, { 'vol-a-r-00000001': 'RW' });
  const early = reconcileVolume(volume, observed({ engines: [up], replicas: [healthy, failing] }));
  assert.equal(updated<Replica>(early.actions, 'Replica').find((r) => r.metadata.name === failing.metadata.name), undefined, 'not reused yet');
  assert.equal(condition(early.actions, 'ReplicaRebuild')?.reason, 'RebuildBackoff');
  const requeue = early.actions.find((a) => a.type === 'requeueAfter');
  assert.ok(requeue?.type === 'requeueAfter' && requeue.delayMs <= 15_000, JSON.stringify(requeue));
  const later = reconcileVolume(volume, observed({ engines: [up], replicas: [healthy, failing], nowMs: nowMs + 16_000 }));
  const reused = updated<Replica>(later.actions, 'Replica').find((r) => r.metadata.name === failing.metadata.name);
  assert.equal(reused?.spec.failedAt, undefined);
  assert.equal(reused?.spec.rebuildRetryCount, 3);
});

test('reconcile: eviction marks the replica, adds a replacement, and removes the evicted replica only once the replacement is RW', () => {
  const volume = attachedVolume(3, 'healthy');
  const names = ['vol-a-r-00000001', 'vol-a-r-00000002', 'vol-a-r-00000003'];
  const replicas = names.map((n, i) => replica(n, `n${i + 1}`, { healthyAt: iso(nowMs - 60_000) }, running(10001 + i)));
  const map = Object.fromEntries(names.map((n, i) => [n, `127.0.0.1:${10001 + i}`]));
  const allRw = Object.fromEntries(names.map((n) => [n, 'RW' as const]));
  const nodes = [node('n1'), node('n2', { evict: true }), node('n3'), node('n4')];

  const step1 = reconcileVolume(volume, observed({ engines: [engine('vol-a', map, allRw)], replicas, nodes }));
  const marked = updated<Replica>(step1.actions, 'Replica').find((r) => r.metadata.name === names[1]);
  assert.equal(marked?.spec.evictionRequested, true);
  const replacement = createdReplicas(step1.actions);
  assert.deepEqual(replacement.map((r) => [r.spec.nodeID, r.spec.desireState]), [['n4', 'running']], 'replacement placed off the evicted node');
  assert.deepEqual(deleted(step1.actions), []);
  assert.equal(condition(step1.actions, 'Eviction')?.reason, 'ReplacementRebuilding');
  assert.ok(step1.notes.some((n) => n.includes('eviction requested')), step1.notes.join('\n'));

  const evicting = replicas.map((r, i) => (i === 1 ? { ...r, spec: { ...r.spec, evictionRequested: true } } : r));
  const newOne = { ...replacement[0]!, status: running(10004) };
  const step2 = reconcileVolume(volume, observed({ engines: [engine('vol-a', map, allRw)], replicas: [...evicting, newOne], nodes }));
  assert.deepEqual(deleted(step2.actions), [], 'not removed before the replacement is rebuilt');
  assert.equal(updated<Engine>(step2.actions, 'Engine')[0]?.spec.replicaAddressMap[newOne.metadata.name], '127.0.0.1:10004', 'the replacement joins to be rebuilt');
  assert.equal(createdReplicas(step2.actions).length, 0, 'one replacement only');

  const rebuilding = engine('vol-a', { ...map, [newOne.metadata.name]: '127.0.0.1:10004' }, { ...allRw, [newOne.metadata.name]: 'WO' });
  assert.deepEqual(deleted(reconcileVolume(volume, observed({ engines: [rebuilding], replicas: [...evicting, newOne], nodes })).actions), []);
  const noMap = engine('vol-a', { ...map, [newOne.metadata.name]: '127.0.0.1:10004' }, undefined);
  assert.deepEqual(deleted(reconcileVolume(volume, observed({ engines: [noMap], replicas: [...evicting, newOne], nodes })).actions), [], 'no fresh observation: kept');

  const rebuilt = engine('vol-a', { ...map, [newOne.metadata.name]: '127.0.0.1:10004' }, { ...allRw, [newOne.metadata.name]: 'RW' });
  const step3 = reconcileVolume(volume, observed({ engines: [rebuilt], replicas: [...evicting, newOne], nodes }));
  assert.deepEqual(deleted(step3.actions), [names[1]]);
  assert.equal(updated<Engine>(step3.actions, 'Engine')[0]?.spec.replicaAddressMap[names[1]!], undefined, 'it leaves the write set');
  assert.equal(condition(step3.actions, 'Eviction')?.reason, 'Evicted');
  assert.ok(step3.notes.some((n) => n.includes(`eviction: replica ${names[1]} removed from node n2`)), step3.notes.join('\n'));
});

test('reconcile: eviction of a detached volume waits for an attach and keeps the replica', () => {
  const base = attachedVolume(3, 'healthy');
  const { nodeID: _n, ...spec } = base.spec;
  const volume: Volume = { ...base, spec, status: { state: 'detached' } };
  const replicas = ['n1', 'n2', 'n3'].map((n, i) => replica(`vol-a-r-0000000${i + 1}`, n, { desireState: 'stopped', evictionRequested: n === 'n2', healthyAt: iso(nowMs - 60_000) }, { currentState: 'stopped' }));
  const stopped: Engine = { ...engine('vol-a', {}, undefined), spec: { ...engine('vol-a', {}, undefined).spec, desireState: 'stopped' as const }, status: { currentState: 'stopped' } };
  const { actions, notes } = reconcileVolume(volume, observed({ attachment: { ...ticket, spec: { ...ticket.spec, attachmentTickets: {} } }, engines: [stopped], replicas, nodes: [node('n1'), node('n2', { evict: true }), node('n3'), node('n4')] }));
  assert.deepEqual(deleted(actions), []);
  assert.equal(createdReplicas(actions).length, 0);
  assert.equal(condition(actions, 'Eviction')?.reason, 'WaitingForAttach');
  assert.ok(notes.some((n) => n.includes('waits for the volume to be attached')), notes.join('\n'));
});
