import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Action } from '../runtime/controller.ts';
import type { Engine } from '../resources/engine.ts';
import type { Resource } from '../resources/object-meta.ts';
import type { Replica } from '../resources/replica.ts';
import { resourceExamples } from '../resources/testing/resource-examples.ts';
import type { Snapshot } from '../resources/snapshot.ts';
import { validateResource } from '../resources/validate-resource.ts';
import type { Volume } from '../resources/volume.ts';
import { parseTree, type EngineSnapshot, type EngineSnapshotTree } from './engine-control-client.ts';
import {
  afterEngineOp,
  engineControlAddress,
  purgeAnnotation,
  reconcileSnapshots,
  revertAnnotation,
  revertConditionType,
  snapshotFinalizer,
  type Change,
  type SnapshotObserved,
} from './snapshot-reconcile.ts';

const mib = 1024 ** 2;
const nowMs = Date.parse('2026-01-01T00:00:00Z');

const volume: Volume = {
  ...resourceExamples.Volume,
  metadata: { name: 'vol-a', resourceVersion: '5' },
  spec: { ...resourceExamples.Volume.spec, size: 64 * mib, diskSelector: [] },
  status: { ownerID: 'mgr', state: 'attached', robustness: 'healthy', expansionRequired: false, currentSize: 64 * mib },
};
const engine: Engine = {
  apiVersion: 'shorthorn.io/v1', kind: 'Engine', metadata: { name: 'vol-a-e-0', resourceVersion: '7' },
  spec: { volumeName: 'vol-a', volumeSize: 64 * mib, desireState: 'running', nodeID: 'n1', frontend: 'blockdev', epoch: 1, minimumWriteReplicas: 1, replicaAddressMap: {}, active: true },
  status: { currentState: 'running', ip: '127.0.0.1', port: 10001, currentSize: 64 * mib },
};
const replica: Replica = {
  apiVersion: 'shorthorn.io/v1', kind: 'Replica', metadata: { name: 'vol-a-r-1', resourceVersion: '3' },
  spec: { volumeName: 'vol-a', volumeSize: 64 * mib, desireState: 'running', active: true, rebuildRetryCount: 0, evictionRequested: false },
};

function snapshot(name: string, extra: { create?: boolean; finalizer?: boolean; deleting?: boolean; status?: Snapshot['status'] } = {}): Snapshot {
  return {
    apiVersion: 'shorthorn.io/v1', kind: 'Snapshot',
    metadata: {
      name, resourceVersion: '9', labels: { shorthornvolume: 'vol-a' },
      ...(extra.finalizer === false ? {} : { finalizers: [snapshotFinalizer] }),
      ...(extra.deleting === true ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    spec: { volume: 'vol-a', createSnapshot: extra.create ?? true, labels: { app: 'db' } },
    ...(extra.status === undefined ? {} : { status: extra.status }),
  };
}

function node(name: string, parent: string | null, children: string[], extra: Partial<EngineSnapshot> = {}): EngineSnapshot {
  return { name, parent, children, createdMs: nowMs - 1000, sizeBytes: 4096, removed: false, userCreated: true, labels: { app: 'db' }, checksumState: 'none', checksumComputedMs: null, ...extra };
}

function tree(...snapshots: EngineSnapshot[]): EngineSnapshotTree {
  const last = snapshots.at(-1);
  return { snapshots, head: { parent: last?.name ?? null, sizeBytes: 0 } };
}

function observed(extra: Partial<SnapshotObserved> = {}): SnapshotObserved {
  const snapshots = extra.snapshots ?? [];
  return {
    volumeName: 'vol-a', volume, engine, replicas: [replica], snapshots,
    snapshotOwners: new Map(snapshots.map((s) => [s.metadata.name, s.spec.volume])),
    tree: tree(), nowMs, managerId: 'mgr',
    ...extra,
  };
}

const ofType = (actions: readonly Action[], type: Action['type']): Action[] => actions.filter((a) => a.type === type);
const objects = (actions: readonly Action[], type: 'create' | 'update' | 'updateStatus'): Resource[] =>
  actions.flatMap((a) => (a.type === type ? [a.object] : []));

/** Apply changes to in-memory objects, as the driver does against the store. */
function applyChanges(changes: readonly Change[], objects: Map<string, Resource>): void {
  for (const change of changes) {
    const current = objects.get(`${change.kind}/${change.name}`);
    if (current === undefined) continue;
    const next = change.change(structuredClone(current));
    if (next !== null) objects.set(`${change.kind}/${change.name}`, next);
  }
}

test('the engine control address exists only while the volume is attached and the engine runs', () => {
  assert.equal(engineControlAddress(volume, engine), '127.0.0.1:10001');
  assert.equal(engineControlAddress({ ...volume, status: { ...volume.status, state: 'attaching' } }, engine), undefined);
  assert.equal(engineControlAddress(volume, { ...engine, status: { ...engine.status, currentState: 'starting' } }), undefined);
  assert.equal(engineControlAddress(volume, undefined), undefined);
});

test('a Snapshot with createSnapshot on an attached volume is taken under its name with its labels; then mirrored ready', () => {
  const s = snapshot('snap-1');
  const first = reconcileSnapshots(observed({ snapshots: [s] }));
  assert.deepEqual(first.op, { kind: 'create', name: 'snap-1', labels: { app: 'db' } });
  assert.deepEqual(first.actions, []);
  // Next pass: the engine has it; the status follows the tree.
  const next = reconcileSnapshots(observed({ snapshots: [s], tree: tree(node('base', null, ['snap-1']), node('snap-1', 'base', ['volume-head'])) }));
  assert.equal(next.op, undefined);
  const status = (objects(next.actions, 'updateStatus').find((o) => o.metadata.name === 'snap-1') as Snapshot).status;
  assert.deepEqual(status, {
    ownerID: 'mgr', parent: 'base', children: { 'volume-head': true }, markRemoved: false, userCreated: true,
    creationTime: new Date(nowMs - 1000).toISOString(), size: 4096, labels: { app: 'db' }, readyToUse: true, checksumState: 'none',
  });
  // Background hashing shows up in the status: state and when it finished.
  const hashedNext = reconcileSnapshots(observed({ snapshots: [s], tree: tree(node('base', null, ['snap-1']), node('snap-1', 'base', ['volume-head'], { checksumState: 'computed', checksumComputedMs: nowMs - 500 })) }));
  const hashed = (objects(hashedNext.actions, 'updateStatus').find((o) => o.metadata.name === 'snap-1') as Snapshot).status;
  assert.deepEqual([hashed?.checksumState, hashed?.checksumComputedAt], ['computed', new Date(nowMs - 500).toISOString()]);
  // The snapshot "base" had no resource: it is mirrored with createSnapshot false, and valid.
  const mirrored = objects(next.actions, 'create') as Snapshot[];
  assert.deepEqual(mirrored.map((m) => [m.metadata.name, m.spec.createSnapshot, m.status?.parent]), [['base', false, undefined]]);
  assert.ok(validateResource('Snapshot', mirrored[0]).ok);
  // Nothing changes when nothing changed.
  const settled = reconcileSnapshots(observed({
    snapshots: [{ ...s, status }],
    tree: tree(node('snap-1', null, ['volume-head'])),
  }));
  const statusOnly = objects(settled.actions, 'updateStatus').filter((o) => o.kind === 'Snapshot');
  assert.equal(statusOnly.length, 1, 'parent went away: rewritten once');
  assert.equal((statusOnly[0] as Snapshot).status?.parent, undefined);
});

test('the finalizer is added before a snapshot is taken', () => {
  const decision = reconcileSnapshots(observed({ snapshots: [snapshot('snap-1', { finalizer: false })] }));
  assert.equal(decision.op, undefined);
  assert.deepEqual(objects(decision.actions, 'update').map((o) => o.metadata.finalizers), [[snapshotFinalizer]]);
});

test('not attached: status.error says so, and the snapshot is taken once attached', () => {
  const s = snapshot('snap-1');
  const detached = observed({ snapshots: [s], tree: undefined, volume: { ...volume, status: { ...volume.status, state: 'detached' } } });
  const decision = reconcileSnapshots(detached);
  assert.equal(decision.op, undefined);
  const status = (objects(decision.actions, 'updateStatus')[0] as Snapshot).status;
  assert.equal(status?.readyToUse, false);
  assert.match(status?.error ?? '', /vol-a is not attached \(it is detached\): the snapshot is taken when it attaches/);
  // Written once: the same error is not written again.
  assert.deepEqual(reconcileSnapshots({ ...detached, snapshots: [{ ...s, ...(status === undefined ? {} : { status }) }] }).actions, []);
  // Attached: taken.
  assert.equal(reconcileSnapshots(observed({ snapshots: [{ ...s, ...(status === undefined ? {} : { status }) }] })).op?.kind, 'create');
});

test('a failed create records the engine\'s message and is retried', () => {
  const s = snapshot('snap-1');
  const after = afterEngineOp({ kind: 'create', name: 'snap-1', labels: {} }, { ok: false, message: 'replicas failed', refused: false }, observed({ snapshots: [s] }));
  assert.equal(after.retryMs, 5000);
  const store = new Map<string, Resource>([['Snapshot/snap-1', s]]);
  applyChanges(after.changes, store);
  assert.equal((store.get('Snapshot/snap-1') as Snapshot).status?.error, 'Taking the snapshot failed: replicas failed');
});

test('deleting a Snapshot marks it removed in the engine, then releases the finalizer', () => {
  const s = snapshot('snap-1', { deleting: true, status: { creationTime: '2026-01-01T00:00:00.000Z', readyToUse: true } });
  const decision = reconcileSnapshots(observed({ snapshots: [s], tree: tree(node('snap-1', null, ['volume-head'])) }));
  assert.deepEqual(decision.op, { kind: 'markRemoved', name: 'snap-1' });
  const after = afterEngineOp(decision.op, { ok: true }, observed({ snapshots: [s] }));
  const store = new Map<string, Resource>([['Snapshot/snap-1', s]]);
  applyChanges(after.changes, store);
  assert.deepEqual(store.get('Snapshot/snap-1')?.metadata.finalizers, []);
  // Marked removed already (or gone): no engine call, just the finalizer.
  const removed = reconcileSnapshots(observed({ snapshots: [s], tree: tree(node('snap-1', null, ['volume-head'], { removed: true })) }));
  assert.equal(removed.op, undefined);
  assert.deepEqual(objects(removed.actions, 'update').map((o) => o.metadata.finalizers), [[]]);
  // A removed snapshot without a resource is not mirrored back.
  assert.deepEqual(objects(reconcileSnapshots(observed({ snapshots: [], tree: tree(node('snap-1', null, [], { removed: true })) })).actions, 'create'), []);
  // Never taken and the volume detached: released at once.
  const never = snapshot('snap-2', { deleting: true });
  const detached = reconcileSnapshots(observed({ snapshots: [never], tree: undefined, volume: { ...volume, status: { ...volume.status, state: 'detached' } } }));
  assert.deepEqual(objects(detached.actions, 'update').map((o) => o.metadata.finalizers), [[]]);
});

test('a snapshot gone from the engine (purged) takes its resource with it; system snapshots are mirrored', () => {
  const gone = snapshot('snap-1', { status: { creationTime: '2026-01-01T00:00:00.000Z', readyToUse: true } });
  const decision = reconcileSnapshots(observed({ snapshots: [gone], tree: tree(node('rebuild-x', null, ['volume-head'], { userCreated: false, labels: {} })) }));
  assert.deepEqual(ofType(decision.actions, 'delete'), [{ type: 'delete', kind: 'Snapshot', name: 'snap-1' }]);
  assert.deepEqual(objects(decision.actions, 'update').map((o) => [o.metadata.name, o.metadata.finalizers]), [['snap-1', []]]);
  const system = objects(decision.actions, 'create') as Snapshot[];
  assert.deepEqual(system.map((s) => [s.metadata.name, s.spec.createSnapshot, s.status?.userCreated, s.metadata.labels]), [['rebuild-x', false, false, { shorthornvolume: 'vol-a' }]]);
  // A name another volume's snapshot holds is not taken over.
  const clash = reconcileSnapshots(observed({ tree: tree(node('rebuild-x', null, [])), snapshotOwners: new Map([['rebuild-x', 'vol-b']]) }));
  assert.deepEqual(objects(clash.actions, 'create'), []);
  assert.match(clash.notes.join('\n'), /taken by a snapshot of volume vol-b/);
});

test('purge runs once per request: the annotation acted on is cleared, a newer one stays', () => {
  const annotated = { ...volume, metadata: { ...volume.metadata, annotations: { [purgeAnnotation]: 't1' } } };
  const decision = reconcileSnapshots(observed({ volume: annotated }));
  assert.deepEqual(decision.op, { kind: 'purge', requestedAt: 't1' });
  const after = afterEngineOp(decision.op, { ok: true }, observed({ volume: annotated }));
  const store = new Map<string, Resource>([['Volume/vol-a', annotated]]);
  applyChanges(after.changes, store);
  assert.deepEqual(store.get('Volume/vol-a')?.metadata.annotations, {});
  const newer = new Map<string, Resource>([['Volume/vol-a', { ...volume, metadata: { ...volume.metadata, annotations: { [purgeAnnotation]: 't2' } } }]]);
  applyChanges(after.changes, newer);
  assert.deepEqual(newer.get('Volume/vol-a')?.metadata.annotations, { [purgeAnnotation]: 't2' });
  // Failed: retried, the annotation stays.
  const failed = afterEngineOp(decision.op, { ok: false, message: 'Cannot purge while rebuild runs', refused: true }, observed({ volume: annotated }));
  assert.deepEqual(failed.changes, []);
  assert.equal(failed.retryMs, 5000);
});

test('revert: to a live snapshot once; refusals end the request with a condition', () => {
  const annotated = { ...volume, metadata: { ...volume.metadata, annotations: { [revertAnnotation]: 'snap-1' } } };
  const chain = tree(node('snap-1', null, ['snap-2']), node('snap-2', 'snap-1', ['volume-head']));
  const decision = reconcileSnapshots(observed({ volume: annotated, tree: { ...chain, head: { parent: 'snap-2', sizeBytes: 8192 } } }));
  assert.deepEqual(decision.op, { kind: 'revert', name: 'snap-1' });
  const conditionOf = (changes: readonly Change[]): { annotations: unknown; condition: unknown } => {
    const store = new Map<string, Resource>([['Volume/vol-a', annotated]]);
    applyChanges(changes, store);
    const v = store.get('Volume/vol-a') as Volume;
    const c = v.status?.conditions?.find((x) => x.type === revertConditionType);
    return { annotations: v.metadata.annotations, condition: c === undefined ? undefined : [c.status, c.reason, c.message] };
  };
  assert.deepEqual(conditionOf(afterEngineOp(decision.op, { ok: true }, observed()).changes), {
    annotations: {}, condition: ['True', 'Reverted', 'Reverted to snap-1'],
  });
  const refused = afterEngineOp(decision.op, { ok: false, message: 'Cannot revert while 1 NBD clients are connected: detach them first', refused: true }, observed());
  assert.deepEqual(conditionOf(refused.changes), {
    annotations: {}, condition: ['False', 'RevertFailed', 'Revert to snap-1 refused by the engine: Cannot revert while 1 NBD clients are connected: detach them first'],
  });
  // Unreachable engine: retried, nothing written.
  const unreachable = afterEngineOp(decision.op, { ok: false, message: 'ECONNREFUSED', refused: false }, observed());
  assert.deepEqual(unreachable.changes, []);
  // Already at the snapshot with an empty head: not reverted twice.
  const done = reconcileSnapshots(observed({ volume: annotated, tree: { snapshots: chain.snapshots, head: { parent: 'snap-1', sizeBytes: 0 } } }));
  assert.equal(done.op, undefined);
  assert.deepEqual(conditionOf(done.changes ?? []).condition, ['True', 'Reverted', 'Reverted to snap-1']);
  // Unknown or removed target: refused without an engine call.
  const unknown = reconcileSnapshots(observed({ volume: { ...annotated, metadata: { ...annotated.metadata, annotations: { [revertAnnotation]: 'nope' } } }, tree: chain }));
  assert.equal(unknown.op, undefined);
  assert.match(unknown.notes.join(), /Revert to nope refused: the engine has no such snapshot/);
  // Detached before it ran: dropped, not kept for the next attach.
  const detached = reconcileSnapshots(observed({ volume: { ...annotated, status: { ...annotated.status, state: 'detached' } }, tree: undefined }));
  assert.deepEqual((conditionOf(detached.changes ?? []).condition as string[]).slice(0, 2), ['False', 'RevertFailed']);
});

test('expand: a larger spec.size is expanded in the engine, then the engine and replicas carry the new size', () => {
  const bigger = { ...volume, spec: { ...volume.spec, size: 128 * mib } };
  const decision = reconcileSnapshots(observed({ volume: bigger }));
  assert.deepEqual(decision.op, { kind: 'expand', sizeBytes: 128 * mib });
  const after = afterEngineOp(decision.op, { ok: true }, observed({ volume: bigger }));
  const store = new Map<string, Resource>([['Engine/vol-a-e-0', engine], ['Replica/vol-a-r-1', replica]]);
  applyChanges(after.changes, store);
  assert.equal((store.get('Engine/vol-a-e-0') as Engine).spec.volumeSize, 128 * mib);
  assert.equal((store.get('Replica/vol-a-r-1') as Replica).spec.volumeSize, 128 * mib);
  // While detached: nothing yet (the engine starts at the replicas' size and expands once attached).
  const detached = reconcileSnapshots(observed({ volume: { ...bigger, status: { ...bigger.status, state: 'detached' } }, tree: undefined }));
  assert.equal(detached.op, undefined);
  // A failed expansion is recorded on the engine and retried.
  const failed = afterEngineOp(decision.op, { ok: false, message: 'Cannot expand while rebuild runs', refused: true }, observed({ volume: bigger }));
  applyChanges(failed.changes, store);
  assert.equal((store.get('Engine/vol-a-e-0') as Engine).status?.lastExpansionError, 'Cannot expand while rebuild runs');
  assert.equal(failed.retryMs, 5000);
  // expansionRequired follows the engine's size.
  const status = (volumeAfter: Volume, e: Engine): unknown =>
    (objects(reconcileSnapshots(observed({ volume: volumeAfter, engine: e, tree: undefined, treeError: 'x' })).actions, 'updateStatus')[0] as Volume | undefined)?.status?.expansionRequired;
  assert.equal(status(volume, engine), undefined, 'nothing to write when unchanged');
  assert.equal(status(bigger, engine), true, 'detached and bigger: an expansion is due');
  const expanded = { ...engine, spec: { ...engine.spec, volumeSize: 128 * mib } };
  const written = objects(reconcileSnapshots(observed({ volume: { ...bigger, status: { ...bigger.status, expansionRequired: true } }, engine: expanded, tree: undefined, treeError: 'x' })).actions, 'updateStatus')[0] as Volume;
  assert.deepEqual([written.status?.expansionRequired, written.status?.currentSize], [false, 128 * mib]);
  assert.equal(status({ ...volume, status: { ...volume.status, expansionRequired: true } }, engine), false);
});

test('the volume gone or being deleted takes its Snapshot resources with it', () => {
  const s = snapshot('snap-1');
  const decision = reconcileSnapshots(observed({ volume: undefined, snapshots: [s] }));
  assert.deepEqual(decision.actions.map((a) => a.type), ['update', 'delete']);
  const deleting = reconcileSnapshots(observed({ volume: { ...volume, metadata: { ...volume.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } }, snapshots: [snapshot('s2', { deleting: true })] }));
  assert.deepEqual(deleting.actions.map((a) => a.type), ['update']);
});

test('engine answers are checked: hostile trees are refused with a typed error', () => {
  const good = { snapshots: [{ name: 's1', parent: null, children: ['volume-head'], createdMs: 1, sizeBytes: 0, removed: false, userCreated: true, labels: {} }], head: { parent: 's1', sizeBytes: 0 } };
  assert.equal(parseTree(good).snapshots[0]?.name, 's1');
  assert.equal(parseTree(good).snapshots[0]?.checksumState, 'none', 'an engine from before snapshot hashing reports none');
  const hashed = parseTree({ ...good, snapshots: [{ ...good.snapshots[0], checksumState: 'computed', checksumComputedMs: 1_700_000_000_000 }] }).snapshots[0];
  assert.deepEqual([hashed?.checksumState, hashed?.checksumComputedMs], ['computed', 1_700_000_000_000]);
  for (const bad of [
    { ...good, snapshots: [{ ...good.snapshots[0], checksumState: 'done' }] },
    { ...good, snapshots: [{ ...good.snapshots[0], checksumState: 'computed', checksumComputedMs: -5 }] },
    null, [], { snapshots: 'x', head: {} },
    { ...good, snapshots: [{ ...good.snapshots[0], name: 'x'.repeat(300) }] },
    { ...good, snapshots: [{ ...good.snapshots[0], sizeBytes: -1 }] },
    { ...good, snapshots: [{ ...good.snapshots[0], labels: { a: 7 } }] },
    { ...good, snapshots: new Array(2000).fill(good.snapshots[0]) },
  ]) {
    assert.throws(() => parseTree(bad), (error: unknown) => (error as { code?: string }).code === 'bad_answer', JSON.stringify(bad).slice(0, 80));
  }
});
