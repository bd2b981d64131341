// The snapshot controller's pure core (Longhorn's snapshot controller plus the snapshot, purge,
// revert and expansion parts of its engine and volume controllers). Keyed by volume: from the
// Volume, its Engine, Replicas and Snapshot resources, and the engine's snapshot tree (present
// only while the volume is attached and the engine answered), decide either ONE engine operation
// (create, mark removed, purge, revert, expand: each changes the tree, so the driver runs it and
// looks again with a fresh tree) or the store writes that mirror the tree into Snapshot resources.
// What to write after an engine operation is `afterEngineOp`, also pure.
import type { Static } from '@sinclair/typebox';
import type { Action } from '../runtime/controller.ts';
import type { ConditionSchema } from '../resources/common-schemas.ts';
import type { Engine } from '../resources/engine.ts';
import { apiVersion, type Resource } from '../resources/object-meta.ts';
import type { Replica } from '../resources/replica.ts';
import type { Snapshot, SnapshotStatus } from '../resources/snapshot.ts';
import { validateResource } from '../resources/validate-resource.ts';
import type { Volume } from '../resources/volume.ts';
import type { EngineSnapshot, EngineSnapshotTree } from './engine-control-client.ts';

/** Keeps a Snapshot resource until the snapshot is marked removed in the engine. */
export const snapshotFinalizer = 'shorthorn.io/snapshot';
/** Label on Snapshot resources naming their volume (the API's snapshotVolumeLabel; Longhorn's `longhornvolume`). */
export const snapshotVolumeLabel = 'shorthornvolume';
/** Volume annotations the API writes (see src/api/volume-actions.ts). */
export const revertAnnotation = 'shorthorn.io/snapshot-revert-requested';
export const purgeAnnotation = 'shorthorn.io/snapshot-purge-requested-at';
/** Volume condition with the outcome of the last revert request. */
export const revertConditionType = 'SnapshotRevert';
/** The head of the chain in the engine's tree; never a Snapshot resource. */
export const volumeHeadName = 'volume-head';
/** Store writes in one mirror pass; more wait for the next pass (which comes at once). */
export const mirrorWritesMax = 200;

export interface SnapshotObserved {
  readonly volumeName: string;
  readonly volume: Volume | undefined;
  readonly engine: Engine | undefined;
  readonly replicas: readonly Replica[];
  /** Snapshot resources whose spec.volume is this volume. */
  readonly snapshots: readonly Snapshot[];
  /** Every Snapshot resource name in the store (names are global; another volume may hold one). */
  readonly snapshotOwners: ReadonlyMap<string, string>;
  /** The engine's tree; undefined while the volume is not attached or the engine did not answer. */
  readonly tree: EngineSnapshotTree | undefined;
  /** Why there is no tree although the volume is attached. */
  readonly treeError?: string;
  readonly nowMs: number;
  readonly managerId: string;
}

export type EngineOp =
  | { readonly kind: 'expand'; readonly sizeBytes: number }
  | { readonly kind: 'markRemoved'; readonly name: string }
  | { readonly kind: 'create'; readonly name: string; readonly labels: Readonly<Record<string, string>> }
  | { readonly kind: 'purge'; readonly requestedAt: string }
  | { readonly kind: 'revert'; readonly name: string };

export interface SnapshotDecision {
  /** At most one engine operation; when set, `actions` and `changes` are empty. */
  readonly op?: EngineOp;
  readonly actions: Action[];
  /** Read-modify-writes run after the actions (several writes to one object). */
  readonly changes?: Change[];
  readonly notes: string[];
  /** Look again after this long even if nothing changes (the engine's tree is polled). */
  readonly requeueMs?: number;
}

/** A read-modify-write the driver runs with a fresh copy, retrying on conflict; null: no change. */
export interface Change {
  readonly kind: string;
  readonly name: string;
  readonly part: 'object' | 'status';
  readonly change: (current: Resource) => Resource | null;
}
type Condition = Static<typeof ConditionSchema>;

export type OpOutcome = { readonly ok: true } | { readonly ok: false; readonly message: string; readonly refused: boolean };

/** The volume is attached and its engine runs: where the driver fetches the tree from, or undefined. */
export function engineControlAddress(volume: Volume | undefined, engine: Engine | undefined): string | undefined {
  if (volume?.status?.state !== 'attached' || engine === undefined) return undefined;
  const { currentState, ip, port } = engine.status ?? {};
  if (engine.spec.desireState !== 'running' || currentState !== 'running' || ip === undefined || port === undefined) return undefined;
  return `${ip}:${port}`;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
const hasFinalizer = (s: Snapshot): boolean => (s.metadata.finalizers ?? []).includes(snapshotFinalizer);
/** Taken at some point: the mirror has seen it in the engine. */
const taken = (s: Snapshot): boolean => s.status?.creationTime !== undefined;

function withoutFinalizer(s: Snapshot): Snapshot {
  return { ...s, metadata: { ...s.metadata, finalizers: (s.metadata.finalizers ?? []).filter((f) => f !== snapshotFinalizer) } };
}

/** Status of a Snapshot resource as the engine's tree shows it. */
export function mirroredStatus(previous: SnapshotStatus | undefined, node: EngineSnapshot, managerId: string): SnapshotStatus {
  const { error: _error, parent: _parent, checksumComputedAt: _computedAt, ...rest } = previous ?? {};
  return {
    ...rest,
    ownerID: managerId,
    ...(node.parent === null ? {} : { parent: node.parent }),
    children: Object.fromEntries(node.children.map((c) => [c, true])),
    markRemoved: node.removed,
    userCreated: node.userCreated,
    creationTime: iso(node.createdMs),
    size: node.sizeBytes,
    labels: { ...node.labels },
    readyToUse: !node.removed,
    checksumState: node.checksumState,
    ...(node.checksumComputedMs === null ? {} : { checksumComputedAt: iso(node.checksumComputedMs) }),
  };
}

export function reconcileSnapshots(observed: SnapshotObserved): SnapshotDecision {
  const { volume, tree, volumeName } = observed;
  const actions: Action[] = [];
  const notes: string[] = [];

  // ---- the volume is gone or going: its snapshots go with its replicas' data ----
  if (volume === undefined || volume.metadata.deletionTimestamp !== undefined) {
    for (const s of observed.snapshots) {
      if (hasFinalizer(s)) actions.push({ type: 'update', object: withoutFinalizer(s) });
      if (s.metadata.deletionTimestamp === undefined) actions.push({ type: 'delete', kind: 'Snapshot', name: s.metadata.name });
    }
    if (observed.snapshots.length > 0) notes.push(`volume ${volumeName} is ${volume === undefined ? 'gone' : 'being deleted'}: removing ${observed.snapshots.length} Snapshot resource(s)`);
    return { actions, notes };
  }

  const engine = observed.engine;
  const state = volume.status?.state ?? 'creating';
  const inTree = new Map((tree?.snapshots ?? []).map((n) => [n.name, n]));

  if (tree === undefined) {
    // ---- not attached: record why nothing happens; act when it attaches ----
    const why = observed.treeError ?? (state === 'attached'
      ? `the engine of volume ${volumeName} is not running`
      : `volume ${volumeName} is not attached (it is ${state})`);
    for (const s of observed.snapshots) {
      if (s.metadata.deletionTimestamp === undefined && !hasFinalizer(s)) {
        actions.push({ type: 'update', object: { ...s, metadata: { ...s.metadata, finalizers: [...(s.metadata.finalizers ?? []), snapshotFinalizer] } } });
        continue;
      }
      if (s.metadata.deletionTimestamp !== undefined && hasFinalizer(s) && !taken(s)) {
        // Never taken (or never seen in an engine): nothing to mark removed.
        actions.push({ type: 'update', object: withoutFinalizer(s) });
        continue;
      }
      const waiting = s.metadata.deletionTimestamp !== undefined
        ? `${why}: the snapshot is marked removed when it attaches`
        : s.spec.createSnapshot && !taken(s) ? `${why}: the snapshot is taken when it attaches` : undefined;
      if (waiting !== undefined && s.status?.error !== waiting) {
        actions.push({ type: 'updateStatus', object: { ...s, status: { ...s.status, ownerID: observed.managerId, readyToUse: false, error: waiting } } });
      }
    }
    const expansion = expansionStatus(volume, engine);
    if (expansion !== undefined) actions.push(expansion);
    const revert = volume.metadata.annotations?.[revertAnnotation];
    if (revert !== undefined && observed.treeError === undefined && state !== 'attaching') {
      // A revert asked of an attached volume that detached before it ran is dropped, not kept
      // for the next attach, where a client may be using the volume already.
      notes.push(`volume ${volumeName}: revert to ${revert} dropped: ${why}`);
      return { actions, changes: revertDone(observed, { target: revert, ok: false, message: `Revert to ${revert} was not done: ${why}` }), notes };
    }
    return { actions, notes };
  }

  // ---- attached: one engine operation, if any is due ----
  if (engine !== undefined && volume.spec.size > engine.spec.volumeSize) {
    return { op: { kind: 'expand', sizeBytes: volume.spec.size }, actions, notes: [`volume ${volumeName}: expanding from ${engine.spec.volumeSize} to ${volume.spec.size} bytes`] };
  }
  for (const s of observed.snapshots) {
    const node = inTree.get(s.metadata.name);
    if (s.metadata.deletionTimestamp !== undefined && hasFinalizer(s) && node !== undefined && !node.removed) {
      return { op: { kind: 'markRemoved', name: s.metadata.name }, actions, notes: [`volume ${volumeName}: marking snapshot ${s.metadata.name} removed`] };
    }
  }
  for (const s of observed.snapshots) {
    if (s.metadata.deletionTimestamp !== undefined || !s.spec.createSnapshot || taken(s) || inTree.has(s.metadata.name)) continue;
    if (!hasFinalizer(s)) {
      // The finalizer first, so that a delete from now on always reaches the engine.
      actions.push({ type: 'update', object: { ...s, metadata: { ...s.metadata, finalizers: [...(s.metadata.finalizers ?? []), snapshotFinalizer] } } });
      return { actions, notes };
    }
    return { op: { kind: 'create', name: s.metadata.name, labels: s.spec.labels ?? {} }, actions, notes: [`volume ${volumeName}: taking snapshot ${s.metadata.name}`] };
  }
  const purge = volume.metadata.annotations?.[purgeAnnotation];
  if (purge !== undefined) {
    return { op: { kind: 'purge', requestedAt: purge }, actions, notes: [`volume ${volumeName}: purging removed snapshots (asked at ${purge})`] };
  }
  const revert = volume.metadata.annotations?.[revertAnnotation];
  if (revert !== undefined) {
    const target = inTree.get(revert);
    if (target === undefined || target.removed) {
      const why = `Revert to ${revert} refused: ${target === undefined ? 'the engine has no such snapshot' : 'it is marked removed'}`;
      notes.push(`volume ${volumeName}: ${why}`);
      return { actions, changes: revertDone(observed, { target: revert, ok: false, message: why }), notes };
    }
    if (tree.head.parent === revert && tree.head.sizeBytes === 0) {
      // Already done (the annotation's removal was lost): a second revert would drop writes made since.
      return { actions, changes: revertDone(observed, { target: revert, ok: true, message: `Reverted to ${revert}` }), notes };
    }
    return { op: { kind: 'revert', name: revert }, actions, notes: [`volume ${volumeName}: reverting to snapshot ${revert}`] };
  }

  // ---- no operation due: mirror the tree into Snapshot resources ----
  const push = (action: Action): void => {
    if (actions.length < mirrorWritesMax) actions.push(action);
  };
  for (const s of observed.snapshots) {
    const node = inTree.get(s.metadata.name);
    const deleting = s.metadata.deletionTimestamp !== undefined;
    if (deleting) {
      // Marked removed in the engine (or gone from it): release the resource.
      if (hasFinalizer(s)) push({ type: 'update', object: withoutFinalizer(s) });
      continue;
    }
    if (node === undefined) {
      // Seen in the engine before (or a mirror of one), gone now: purged. The resource goes too.
      if (taken(s) || !s.spec.createSnapshot) {
        notes.push(`volume ${volumeName}: snapshot ${s.metadata.name} is gone from the engine (purged); removing its resource`);
        if (hasFinalizer(s)) push({ type: 'update', object: withoutFinalizer(s) });
        push({ type: 'delete', kind: 'Snapshot', name: s.metadata.name });
      }
      continue;
    }
    if (!hasFinalizer(s)) {
      push({ type: 'update', object: { ...s, metadata: { ...s.metadata, finalizers: [...(s.metadata.finalizers ?? []), snapshotFinalizer] } } });
      continue; // its status follows on the next pass, with the new resourceVersion
    }
    const status = mirroredStatus(s.status, node, observed.managerId);
    if (!same(status, s.status)) push({ type: 'updateStatus', object: { ...s, status } });
  }
  const mine = new Set(observed.snapshots.map((s) => s.metadata.name));
  for (const node of tree.snapshots) {
    if (node.removed || mine.has(node.name) || node.name === volumeHeadName) continue;
    const owner = observed.snapshotOwners.get(node.name);
    if (owner !== undefined) {
      notes.push(`volume ${volumeName}: engine snapshot ${node.name} has no resource: the name is taken by a snapshot of volume ${owner}`);
      continue;
    }
    const snapshot: Snapshot = {
      apiVersion, kind: 'Snapshot',
      metadata: { name: node.name, labels: { [snapshotVolumeLabel]: volumeName }, finalizers: [snapshotFinalizer] },
      spec: { volume: volumeName, createSnapshot: false, labels: { ...node.labels } },
      status: mirroredStatus(undefined, node, observed.managerId),
    };
    const checked = validateResource('Snapshot', snapshot);
    if (!checked.ok) {
      notes.push(`volume ${volumeName}: engine snapshot ${node.name} cannot be a resource: ${checked.problems.map((p) => `${p.path}: ${p.reason}`).join('; ')}`);
      continue;
    }
    notes.push(`volume ${volumeName}: mirroring engine snapshot ${node.name} (${node.userCreated ? 'user' : 'system'})`);
    push({ type: 'create', object: checked.value });
  }
  // Replicas follow the engine's size (a replica restarted later opens its files at that size).
  if (engine !== undefined) {
    for (const r of observed.replicas) {
      if (r.metadata.deletionTimestamp === undefined && r.spec.volumeSize < engine.spec.volumeSize) {
        push({ type: 'update', object: { ...r, spec: { ...r.spec, volumeSize: engine.spec.volumeSize } } });
      }
    }
  }
  const expansion = expansionStatus(volume, engine);
  if (expansion !== undefined) push(expansion);
  if (actions.length >= mirrorWritesMax) return { actions, notes, requeueMs: 0 };
  return { actions, notes };
}

/**
 * The volume's currentSize (what its engine and replicas have) and expansionRequired (spec.size is
 * above it, so an online expansion is due), when they changed.
 */
function expansionStatus(volume: Volume, engine: Engine | undefined): Action | undefined {
  if (engine === undefined) return undefined;
  const currentSize = engine.spec.volumeSize;
  const expansionRequired = volume.spec.size > currentSize;
  if (volume.status?.expansionRequired === expansionRequired && volume.status.currentSize === currentSize) return undefined;
  return { type: 'updateStatus', object: { ...volume, status: { ...volume.status, expansionRequired, currentSize } } };
}

/** Writes that finish a revert request: the annotation goes (only the one acted on), the outcome is a condition. */
function revertDone(observed: SnapshotObserved, outcome: { target: string; ok: boolean; message: string }): Change[] {
  const { volumeName } = observed;
  const { target, ok, message } = outcome;
  return [
    { kind: 'Volume', name: volumeName, part: 'object', change: (v) => {
      if (v.metadata.annotations?.[revertAnnotation] !== target) return null;
      const annotations = { ...v.metadata.annotations };
      delete annotations[revertAnnotation];
      return { ...v, metadata: { ...v.metadata, annotations } };
    } },
    { kind: 'Volume', name: volumeName, part: 'status', change: (v) => {
      const volume = v as Volume;
      const condition: Condition = {
        type: revertConditionType, status: ok ? 'True' : 'False', reason: ok ? 'Reverted' : 'RevertFailed',
        message: message.slice(0, 4000), lastTransitionTime: iso(observed.nowMs),
      };
      const conditions = [...(volume.status?.conditions ?? []).filter((c) => c.type !== revertConditionType), condition];
      return { ...volume, status: { ...volume.status, conditions } };
    } },
  ];
}

/**
 * What to write once an engine operation ran. Changes, not actions: they are applied to fresh
 * copies (the operation took time; controllers and agents wrote meanwhile).
 */
export function afterEngineOp(op: EngineOp, outcome: OpOutcome, observed: SnapshotObserved): { changes: Change[]; notes: string[]; retryMs?: number } {
  const { volumeName } = observed;
  const failed = outcome.ok ? undefined : outcome.message;
  switch (op.kind) {
    case 'expand': {
      if (failed !== undefined) {
        return {
          changes: [engineStatusChange(volumeName, observed, (e) => ({ ...e, status: { ...e.status, lastExpansionError: failed.slice(0, 4000), lastExpansionFailedAt: iso(observed.nowMs) } }))],
          notes: [`volume ${volumeName}: expansion to ${op.sizeBytes} bytes failed: ${failed}`],
          retryMs: 5000,
        };
      }
      const changes: Change[] = [];
      const engineName = observed.engine?.metadata.name;
      if (engineName !== undefined) {
        changes.push({ kind: 'Engine', name: engineName, part: 'object', change: (e) => {
          const engine = e as Engine;
          return engine.spec.volumeSize >= op.sizeBytes ? null : { ...engine, spec: { ...engine.spec, volumeSize: op.sizeBytes } };
        } });
      }
      for (const r of observed.replicas) {
        changes.push({ kind: 'Replica', name: r.metadata.name, part: 'object', change: (x) => {
          const replica = x as Replica;
          return replica.spec.volumeSize >= op.sizeBytes ? null : { ...replica, spec: { ...replica.spec, volumeSize: op.sizeBytes } };
        } });
      }
      return { changes, notes: [`volume ${volumeName}: expanded to ${op.sizeBytes} bytes`] };
    }
    case 'markRemoved':
      if (failed !== undefined) return { changes: [snapshotError(op.name, `Marking it removed failed: ${failed}`)], notes: [`volume ${volumeName}: marking ${op.name} removed failed: ${failed}`], retryMs: 5000 };
      return {
        changes: [{ kind: 'Snapshot', name: op.name, part: 'object', change: (s) => (hasFinalizer(s as Snapshot) ? withoutFinalizer(s as Snapshot) : null) }],
        notes: [`volume ${volumeName}: snapshot ${op.name} marked removed`],
      };
    case 'create':
      if (failed !== undefined) return { changes: [snapshotError(op.name, `Taking the snapshot failed: ${failed}`)], notes: [`volume ${volumeName}: snapshot ${op.name} failed: ${failed}`], retryMs: 5000 };
      return { changes: [], notes: [`volume ${volumeName}: snapshot ${op.name} taken`] };
    case 'purge': {
      if (failed !== undefined) return { changes: [], notes: [`volume ${volumeName}: purge failed (retrying): ${failed}`], retryMs: 5000 };
      return {
        // Only the request we acted on: one made while the purge ran asks for another.
        changes: [{ kind: 'Volume', name: volumeName, part: 'object', change: (v) => {
          if (v.metadata.annotations?.[purgeAnnotation] !== op.requestedAt) return null;
          const annotations = { ...v.metadata.annotations };
          delete annotations[purgeAnnotation];
          return { ...v, metadata: { ...v.metadata, annotations } };
        } }],
        notes: [`volume ${volumeName}: purged removed snapshots`],
      };
    }
    case 'revert': {
      // A refusal (a client is connected, a rebuild runs) ends the request: the user decides
      // when to ask again. An unreachable engine is retried.
      if (failed !== undefined && !outcome.ok && !outcome.refused) return { changes: [], notes: [`volume ${volumeName}: revert to ${op.name} failed (retrying): ${failed}`], retryMs: 5000 };
      const ok = failed === undefined;
      const message = ok ? `Reverted to ${op.name}` : `Revert to ${op.name} refused by the engine: ${failed}`;
      return { changes: revertDone(observed, { target: op.name, ok, message: message }), notes: [`volume ${volumeName}: ${message}`] };
    }
    default: {
      const unknown: never = op;
      throw new Error(`unknown engine operation ${JSON.stringify(unknown)}`);
    }
  }
}

function snapshotError(name: string, message: string): Change {
  return { kind: 'Snapshot', name, part: 'status', change: (s) => {
    const snapshot = s as Snapshot;
    if (snapshot.status?.error === message) return null;
    return { ...snapshot, status: { ...snapshot.status, error: message.slice(0, 4000) } };
  } };
}

function engineStatusChange(volumeName: string, observed: SnapshotObserved, change: (e: Engine) => Engine): Change {
  return { kind: 'Engine', name: observed.engine?.metadata.name ?? `${volumeName}-e-0`, part: 'status', change: (e) => change(e as Engine) };
}
