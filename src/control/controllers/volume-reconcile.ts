// The volume controller's pure core (Longhorn's volume and volume-attachment controllers, reference
// §2.2–2.4): from a Volume and what was observed of its attachment tickets, engine, replicas and
// the nodes, decide the writes that move things along one step, with a note for every decision
// that matters (placement, failure, reuse, attach, detach). One write per object per pass: the
// store's events bring the volume back for the next step.
import type { Action } from '../runtime/controller.ts';
import type { Engine } from '../resources/engine.ts';
import type { Node } from '../resources/node.ts';
import { apiVersion } from '../resources/object-meta.ts';
import { replicaRebuildRetryMax, type Replica } from '../resources/replica.ts';
import { attacherPriority, type AttachmentTicket, type VolumeAttachment } from '../resources/volume-attachment.ts';
import type { Volume, VolumeRobustness, VolumeState, VolumeStatus } from '../resources/volume.ts';
import { planReplica } from '../scheduler/replica-plan.ts';
import { nextEngineEpoch } from './engine-epoch.ts';
import type { SchedulerSettings } from '../scheduler/replica-scheduler.ts';
import type { SettingValues } from '../settings/settings.ts';
import { evictionRequestedFor, evictionStep } from './eviction.ts';
import { admitRebuild, rebuildAllowedAtMs, type RebuildsByNode } from './rebuild-admission.ts';
import { autoSalvageSetting, salvageStage, salvageStep, type SalvageStep } from './volume-salvage.ts';
import { describeSnapshotLimits, engineSnapshotLimitsSpec } from './volume-snapshot-limits.ts';
import { attachSpec, detachSpec, engineFrontendSpec, frontendModeMismatch, ticketDisablesFrontend } from './volume-frontend.ts';

/** Keeps a Volume until its engine and replicas are gone. */
export const volumeFinalizer = 'shorthorn.io/volume';
/** Keeps a Replica until the node agent has removed its data directory. */
export const replicaDataFinalizer = 'shorthorn.io/replica-data';
/** Label on engines and replicas naming their volume. */
export const volumeLabel = 'shorthorn.io/volume';
/** Annotation on a Replica: why the manager created it (placement of a new volume, or which failed replica it replaces and why). */
export const replicaReasonAnnotation = 'shorthorn.io/reason';
/** Annotation on a Replica: why the manager marked it failed (the last failure). */
export const replicaFailureAnnotation = 'shorthorn.io/failure-reason';

export interface VolumeObserved {
  readonly attachment: VolumeAttachment | undefined;
  /** Engines and replicas whose spec.volumeName is this volume. */
  readonly engines: readonly Engine[];
  readonly replicas: readonly Replica[];
  readonly nodes: readonly Node[];
  readonly settings: SchedulerSettings & Pick<SettingValues, 'concurrent-replica-rebuild-per-node-limit' | 'snapshot-max-count'>;
  /**
   * Replicas rebuilding now on each node, across every volume (the driver counts them from its
   * informers plus the rebuilds it granted that they do not show yet). Absent: none known.
   */
  readonly rebuilds?: RebuildsByNode;
  readonly nowMs: number;
  /** Fresh 8-hex-digit ids for new replica names, from the injected Random. */
  readonly freshIds: readonly string[];
}

export interface VolumeDecision {
  readonly actions: Action[];
  /** Decisions and their reasons, for the log. */
  readonly notes: string[];
  /** Replicas this pass adds to the engine's write set to be rebuilt (counted against the per-node limit). */
  readonly rebuildsStarted?: readonly { readonly replica: string; readonly nodeID: string }[];
}

export function engineNameOf(volumeName: string): string {
  return `${volumeName}-e-0`;
}

const isoTime = (ms: number): string => new Date(ms).toISOString();

/** The ticket that decides where the volume attaches: highest priority, then smallest id. */
export function chooseTicket(attachment: VolumeAttachment | undefined): AttachmentTicket | undefined {
  const tickets = Object.values(attachment?.spec.attachmentTickets ?? {});
  return tickets.sort((a, b) => attacherPriority[b.type] - attacherPriority[a.type] || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))[0];
}

function instanceStopped(state: string | undefined): boolean {
  return state === undefined || state === 'stopped' || state === 'error';
}

export function replicaAddress(replica: Replica): string | undefined {
  const { ip, port, currentState } = replica.status ?? {};
  return currentState === 'running' && ip !== undefined && port !== undefined ? `${ip}:${port}` : undefined;
}

/**
 * The robustness of an attached volume from the engine's replica modes, as its node agent last
 * observed them. No map means the agent had no answer from the engine on that pass (it timed out
 * under load, or the engine was busy): that says nothing about the replicas, so the previous
 * robustness stands (healthy or degraded), else `unknown`. Only a fresh map with no RW replica of
 * this volume is `faulted`: an empty map once made a degraded volume flicker to faulted.
 */
export function volumeRobustness(input: {
  readonly replicaModeMap: Readonly<Record<string, string>> | undefined;
  readonly replicaNames: readonly string[];
  readonly numberOfReplicas: number;
  readonly previous: VolumeRobustness | undefined;
}): VolumeRobustness {
  const { replicaModeMap, previous } = input;
  if (replicaModeMap === undefined) return previous === 'healthy' || previous === 'degraded' ? previous : 'unknown';
  const rw = input.replicaNames.filter((name) => replicaModeMap[name] === 'RW').length;
  return rw === 0 ? 'faulted' : rw >= input.numberOfReplicas ? 'healthy' : 'degraded';
}

/**
 * Why a new replica is created: a new volume's placement, or the replacement of failed replicas
 * (named, with the reason each was marked failed). Written on the replica and in the log.
 */
export function placementReason(volumeName: string, replicas: readonly Replica[], numberOfReplicas: number, firstPlacement: boolean): string {
  const failed = replicas.filter((r) => r.spec.failedAt !== undefined);
  const healthy = replicas.length - failed.length;
  if (firstPlacement || failed.length === 0) return `volume ${volumeName} has ${healthy} of ${numberOfReplicas} replicas`;
  const why = failed
    .map((r) => `${r.metadata.name} on node ${r.spec.nodeID ?? '?'} (${(r.metadata.annotations?.[replicaFailureAnnotation] ?? `failed at ${r.spec.failedAt ?? '?'}`).replace(/^\S+: /, '')})`)
    .join(', ');
  return `volume ${volumeName} is degraded (${healthy} of ${numberOfReplicas} replicas usable): replaces failed ${why}; rebuilt from the RW replicas`;
}

export function reconcileVolume(volume: Volume | undefined, observed: VolumeObserved): VolumeDecision {
  const actions: Action[] = [];
  const notes: string[] = [];
  const engineName = volume === undefined ? undefined : engineNameOf(volume.metadata.name);
  // Gone without its finalizer's cleanup (should not happen): delete what is left.
  if (volume === undefined) {
    for (const object of [...observed.engines, ...observed.replicas]) {
      if (object.metadata.deletionTimestamp === undefined) actions.push({ type: 'delete', kind: object.kind, name: object.metadata.name });
    }
    return { actions, notes };
  }
  const name = volume.metadata.name;
  const status: VolumeStatus = volume.status ?? {};

  if (volume.metadata.deletionTimestamp !== undefined) {
    for (const object of [...observed.engines, ...observed.replicas, ...(observed.attachment === undefined ? [] : [observed.attachment])]) {
      if (object.metadata.deletionTimestamp === undefined) actions.push({ type: 'delete', kind: object.kind, name: object.metadata.name });
    }
    if (observed.engines.length === 0 && observed.replicas.length === 0) {
      const finalizers = (volume.metadata.finalizers ?? []).filter((f) => f !== volumeFinalizer);
      actions.push({ type: 'update', object: { ...volume, metadata: { ...volume.metadata, finalizers } } });
      notes.push(`volume ${name}: engine and replicas removed; releasing the volume`);
    } else if (status.state !== 'deleting') {
      actions.push({ type: 'updateStatus', object: { ...volume, status: { ...status, state: 'deleting' } } });
      notes.push(`volume ${name}: deleting ${observed.engines.length} engine(s) and ${observed.replicas.length} replica(s)`);
    }
    return { actions, notes };
  }

  if (!(volume.metadata.finalizers ?? []).includes(volumeFinalizer)) {
    actions.push({ type: 'update', object: { ...volume, metadata: { ...volume.metadata, finalizers: [...(volume.metadata.finalizers ?? []), volumeFinalizer] } } });
    return { actions, notes };
  }
  if (observed.attachment === undefined) {
    const attachment: VolumeAttachment = {
      apiVersion, kind: 'VolumeAttachment', metadata: { name, labels: { [volumeLabel]: name } },
      spec: { volume: name, attachmentTickets: {} },
    };
    actions.push({ type: 'create', object: attachment });
  }
  let engine = observed.engines.find((e) => e.metadata.name === engineName);
  const engineCreated = engine === undefined;
  if (engine === undefined && engineName !== undefined) {
    const created: Engine = {
      apiVersion, kind: 'Engine', metadata: { name: engineName, labels: { [volumeLabel]: name } },
      spec: engineSnapshotLimitsSpec({
        volumeName: name, volumeSize: volume.spec.size, desireState: 'stopped', frontend: volume.spec.frontend,
        epoch: 0, minimumWriteReplicas: volume.spec.minimumWriteReplicas, replicaAddressMap: {}, active: true,
      }, volume.spec, observed.settings['snapshot-max-count']),
    };
    actions.push({ type: 'create', object: created });
    engine = created;
  }
  if (engine === undefined) return { actions, notes };

  // ---- replica health from the engine's view and the agents' reports ----
  const nowText = isoTime(observed.nowMs);
  const modes = engine.status?.currentState === 'running' ? (engine.status.replicaModeMap ?? {}) : {};
  const replicas = observed.replicas.filter((r) => r.metadata.deletionTimestamp === undefined);
  const replicaUpdates = new Map<string, Replica>();
  const updateReplica = (replica: Replica, change: (r: Replica) => Replica): void => {
    replicaUpdates.set(replica.metadata.name, change(replicaUpdates.get(replica.metadata.name) ?? replica));
  };
  const nodeReady = (nodeID: string | undefined): boolean =>
    observed.nodes.find((n) => n.metadata.name === nodeID)?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  const healthyCount = replicas.filter((r) => r.spec.failedAt === undefined).length;
  const deletions = new Set<string>();
  /** Replicas that may not start rebuilding now, and why (the ReplicaRebuild condition). */
  const rebuildWaits: { reason: string; message: string }[] = [];
  let backoffUntilMs: number | undefined;
  for (const replica of replicas) {
    // A node or disk being evicted marks its replicas (Longhorn's node controller does it).
    const evict = evictionRequestedFor(replica, observed.nodes);
    if (evict !== replica.spec.evictionRequested) {
      notes.push(`replica ${replica.metadata.name} of ${name}: eviction ${evict ? 'requested' : 'cancelled'} (node ${replica.spec.nodeID ?? '?'}${replica.spec.diskPath === undefined ? '' : ` disk ${replica.spec.diskPath}`})`);
      updateReplica(replica, (r) => ({ ...r, spec: { ...r.spec, evictionRequested: evict } }));
    }
    const mode = modes[replica.metadata.name];
    // What a down node's agent last wrote is stale: its replicas count as failed while they should run.
    const nodeDown = replica.spec.nodeID !== undefined && replica.spec.desireState === 'running' && !nodeReady(replica.spec.nodeID);
    if (replica.spec.failedAt === undefined && (replica.status?.currentState === 'error' || nodeDown)) {
      const why = nodeDown ? `node ${replica.spec.nodeID ?? '?'} is not ready` : (replica.status?.errorMessage ?? 'process in error');
      notes.push(`replica ${replica.metadata.name} of ${name} failed: ${why}`);
      updateReplica(replica, (r) => ({
        ...r,
        metadata: { ...r.metadata, annotations: { ...r.metadata.annotations, [replicaFailureAnnotation]: `${nowText}: ${why}`.slice(0, 1000) } },
        spec: { ...r.spec, failedAt: nowText, lastFailedAt: nowText },
      }));
    } else if (replica.spec.failedAt !== undefined && healthyCount >= volume.spec.numberOfReplicas) {
      // Replaced already: keep it stopped (and its data, for salvage) until it is stale or has
      // failed too many rebuilds, and only delete it while another replica surely holds the data
      // (Longhorn's cleanupReplicas rule 2).
      const failedMs = Date.parse(replica.spec.failedAt);
      const timeoutMs = volume.spec.staleReplicaTimeout * 60_000;
      const stale = timeoutMs > 0 && observed.nowMs - failedMs >= timeoutMs;
      const exhausted = replica.spec.rebuildRetryCount >= replicaRebuildRetryMax;
      const rwOthers = replicas.filter((r) => r !== replica && r.spec.failedAt === undefined && modes[r.metadata.name] === 'RW');
      // A record newer than every RW replica's (a salvage chose others by hand) may hold the only
      // copy of acknowledged writes: never delete it automatically.
      const newest = Math.max(-1, ...rwOthers.map((r) => r.status?.generation ?? -1));
      const newer = replica.status?.generation !== undefined && newest >= 0 && replica.status.generation > newest;
      const safe = rwOthers.length > 0 && !newer;
      if ((stale || exhausted) && safe) {
        notes.push(`volume ${name}: deleting failed replica ${replica.metadata.name} (${stale ? `failed for over ${volume.spec.staleReplicaTimeout} min` : `${replica.spec.rebuildRetryCount} rebuilds failed`})`);
        deletions.add(replica.metadata.name);
      } else if (replica.spec.desireState !== 'stopped') {
        notes.push(`replica ${replica.metadata.name} of ${name} stays stopped: the volume has ${healthyCount} other replicas`);
        updateReplica(replica, (r) => ({ ...r, spec: { ...r.spec, desireState: 'stopped' } }));
      }
    } else if (replica.spec.failedAt !== undefined && replica.status?.currentState === 'running' && nodeReady(replica.spec.nodeID)
      && observed.nowMs < rebuildAllowedAtMs(replica)) {
      // Its rebuilds keep failing (rebuildRetryCount since it was last RW): back off before the next.
      const untilMs = rebuildAllowedAtMs(replica);
      rebuildWaits.push({
        reason: 'RebuildBackoff',
        message: `replica ${replica.metadata.name} waits until ${isoTime(untilMs)} to rebuild again: ${replica.spec.rebuildRetryCount} rebuild(s) failed since it was last RW`,
      });
      backoffUntilMs = Math.min(backoffUntilMs ?? Infinity, untilMs);
    } else if (replica.spec.failedAt !== undefined && replica.status?.currentState === 'running' && nodeReady(replica.spec.nodeID)) {
      // Back within the wait: reuse it; the engine rebuilds it in place (only what changed).
      notes.push(`replica ${replica.metadata.name} of ${name} is running again; reusing it (rebuild in place)`);
      updateReplica(replica, (r) => {
        // healthyAt is cleared until the rebuild makes it RW again (Longhorn's reuse).
        const { failedAt: _failedAt, healthyAt: _healthyAt, ...spec } = r.spec;
        return { ...r, spec: { ...spec, rebuildRetryCount: r.spec.rebuildRetryCount + 1 } };
      });
    }
    if (mode === 'RW' && replica.spec.failedAt === undefined && (replica.spec.healthyAt === undefined || replica.spec.lastHealthyAt === undefined)) {
      // RW after creation or a rebuild: the rebuild worked, so its retry count starts again.
      updateReplica(replica, (r) => ({ ...r, spec: { ...r.spec, healthyAt: r.spec.healthyAt ?? nowText, lastHealthyAt: nowText, rebuildRetryCount: 0 } }));
    }
  }
  const current = replicas.map((r) => replicaUpdates.get(r.metadata.name) ?? r);

  // ---- where the volume should be ----
  const ticket = chooseTicket(observed.attachment);
  const firstPlacement = status.state === undefined || status.state === 'creating';
  const wantNode = ticket?.nodeID;
  // The chosen ticket wants the other frontend mode (maintenance on or off): detach, then attach
  // again in that mode with a fresh engine (volume-frontend.ts says why a restart).
  const modeMismatch = frontendModeMismatch(volume.spec, ticket);
  if (volume.spec.nodeID !== wantNode || modeMismatch) {
    const detached = status.state === 'detached';
    if (volume.spec.nodeID !== undefined || detached) {
      const nextNode = volume.spec.nodeID !== undefined || wantNode === undefined ? undefined : wantNode;
      const spec: Volume['spec'] = nextNode === undefined || ticket === undefined ? detachSpec(volume.spec) : attachSpec(volume.spec, ticket);
      const mode = (t: AttachmentTicket): string => (ticketDisablesFrontend(t) ? 'the frontend disabled (maintenance)' : 'the frontend enabled');
      notes.push(nextNode === undefined
        ? `volume ${name}: detaching from ${volume.spec.nodeID ?? '?'} (${ticket === undefined ? 'no attachment ticket' : modeMismatch ? `ticket ${ticket.id} wants it with ${mode(ticket)}; the engine restarts` : `ticket ${ticket.id} wants ${ticket.nodeID}`})`
        : `volume ${name}: attaching to ${wantNode ?? '?'} for ticket ${ticket?.id ?? '?'}${ticket === undefined ? '' : ` with ${mode(ticket)}`}`);
      actions.push({ type: 'update', object: { ...volume, spec } });
      for (const r of replicaUpdates.values()) actions.push({ type: 'update', object: r });
      return { actions, notes };
    }
  }
  const nodeID = volume.spec.nodeID;
  const attaching = nodeID !== undefined && (status.currentNodeID === undefined || status.currentNodeID === nodeID);

  // ---- replicas: place missing ones (new volumes, and degraded attached volumes) ----
  const conditions = [...(status.conditions ?? [])];
  const setCondition = (type: string, ok: boolean, reason: string, message?: string): void => {
    const i = conditions.findIndex((c) => c.type === type);
    const old = conditions[i];
    const next = {
      type, status: ok ? 'True' as const : 'False' as const, reason,
      ...(message === undefined ? {} : { message: message.slice(0, 4000) }),
      lastTransitionTime: old !== undefined && old.status === (ok ? 'True' : 'False') ? (old.lastTransitionTime ?? nowText) : nowText,
    };
    if (i >= 0) conditions[i] = next;
    else conditions.push(next);
  };
  let requeueMs: number | undefined;
  const created: Replica[] = [];
  if (firstPlacement || status.state === 'attached') {
    // An evicting replica needs a replacement elsewhere (it stays until the volume is healthy without it).
    let missing = volume.spec.numberOfReplicas - current.filter((r) => r.spec.failedAt === undefined && !r.spec.evictionRequested).length;
    let ids = 0;
    let scheduled = true;
    while (missing > 0) {
      const plan = planReplica({ volume, nodes: observed.nodes, replicas: [...current, ...created], settings: observed.settings, nowMs: observed.nowMs });
      if (plan.kind === 'create') {
        const id = observed.freshIds[ids++];
        if (id === undefined) break;
        const reason = placementReason(name, current, volume.spec.numberOfReplicas, firstPlacement);
        const replica: Replica = {
          apiVersion, kind: 'Replica',
          metadata: {
            name: `${name}-r-${id}`, labels: { [volumeLabel]: name }, finalizers: [replicaDataFinalizer],
            annotations: { [replicaReasonAnnotation]: `${nowText}: ${reason}; placed on node ${plan.placement.nodeID} disk ${plan.placement.diskName}`.slice(0, 1000) },
          },
          spec: {
            volumeName: name, volumeSize: engine.spec.volumeSize, nodeID: plan.placement.nodeID, engineName: engine.metadata.name,
            desireState: attaching && status.state !== 'detached' && !firstPlacement ? 'running' : 'stopped',
            diskID: plan.placement.diskID, diskPath: plan.placement.diskPath, dataDirectoryName: `${name}-${id}`,
            active: true, rebuildRetryCount: 0, evictionRequested: false,
          },
        };
        notes.push(`volume ${name}: placed replica ${replica.metadata.name} on node ${plan.placement.nodeID} disk ${plan.placement.diskName} (${reason})`);
        created.push(replica);
        actions.push({ type: 'create', object: replica });
      } else if (plan.kind === 'reuse') {
        // Reusable, but its process is not back yet (a running one was taken back above): ask
        // for it to run if it was stopped, then the node agent starts it; look again soon.
        if (plan.replica.spec.desireState !== 'running') {
          notes.push(`volume ${name}: restarting failed replica ${plan.replica.metadata.name} to reuse it`);
          updateReplica(plan.replica, (r) => ({ ...r, spec: { ...r.spec, desireState: 'running' } }));
        } else if (plan.replica.status?.currentState !== 'running') {
          notes.push(`volume ${name}: waiting for failed replica ${plan.replica.metadata.name} to run again (reuse)`);
        }
        // (A running one is backing off between failed rebuilds: the ReplicaRebuild condition says until when.)
        requeueMs = 2000;
        break;
      } else if (plan.kind === 'wait') {
        notes.push(`volume ${name}: waiting until ${isoTime(plan.untilMs)} for ${plan.waitingFor.join(', ')} to come back before placing a new replica`);
        requeueMs = Math.max(1000, plan.untilMs - observed.nowMs);
        break;
      } else {
        scheduled = false;
        notes.push(`volume ${name}: cannot place a replica (${plan.reason}): ${plan.message}`);
        setCondition('Scheduled', false, plan.reason, plan.message);
        requeueMs = 5000;
        break;
      }
      missing--;
    }
    if (scheduled) setCondition('Scheduled', true, 'ReplicasScheduled');
  }

  // ---- eviction: replace first, remove only once healthy without the evicting replica ----
  const engineRunning = engine.status?.currentState === 'running';
  const eviction = evictionStep({
    replicas: current,
    numberOfReplicas: volume.spec.numberOfReplicas,
    attached: status.state === 'attached' && attaching && engineRunning,
    modes: engineRunning ? engine.status?.replicaModeMap : undefined,
  });
  const conditionChanged = (type: string, status: 'True' | 'False', reason: string, message: string): boolean => {
    const old = conditions.find((c) => c.type === type);
    return old?.status !== status || old.reason !== reason || old.message !== message.slice(0, 4000);
  };
  if (eviction.kind === 'remove') {
    const evicted = current.find((r) => r.metadata.name === eviction.replica);
    const message = `replica ${eviction.replica} removed from node ${evicted?.spec.nodeID ?? '?'}: the volume has ${eviction.rwElsewhere.length} RW replicas elsewhere (${eviction.rwElsewhere.join(', ')})`;
    notes.push(`volume ${name}: eviction: ${message}`);
    deletions.add(eviction.replica);
    setCondition('Eviction', true, 'Evicted', message);
  } else if (eviction.kind !== 'none') {
    const [reason, message] = eviction.kind === 'wait-attach'
      ? ['WaitingForAttach', `evicting ${eviction.evicting.join(', ')}: waits for the volume to be attached (a detached volume is not rebuilt; its replicas stay where they are)`]
      : ['ReplacementRebuilding', `evicting ${eviction.evicting.join(', ')}: ${eviction.rwElsewhere} of ${volume.spec.numberOfReplicas} RW replicas elsewhere; a replacement is placed and rebuilt before the evicting replica is removed`];
    if (conditionChanged('Eviction', 'False', reason, message)) notes.push(`volume ${name}: eviction: ${message}`);
    setCondition('Eviction', false, reason, message);
  }

  // ---- attach or detach the engine and replicas ----
  const all = [...current, ...created];
  const usable = all.filter((r) => r.spec.failedAt === undefined && r.spec.nodeID !== undefined && !created.includes(r) && !deletions.has(r.metadata.name));
  let state: VolumeState;
  let currentNodeID = status.currentNodeID;
  const rebuildsStarted: { replica: string; nodeID: string }[] = [];
  const rebuildStartNotes: string[] = [];
  let engineWrite: Engine | undefined;
  // ---- salvage: every replica failed (volume-salvage.ts) ----
  let salvage: SalvageStep | undefined;
  if (attaching && nodeID !== undefined) {
    salvage = salvageStep({
      volumeName: name, nodeID, engine, replicas: all.filter((r) => !created.includes(r)), conditions,
      autoSalvage: autoSalvageSetting(observed.settings), nodeReady, addressOf: replicaAddress,
      spec: { minimumWriteReplicas: volume.spec.minimumWriteReplicas, frontend: volume.spec.frontend },
    });
    for (const r of salvage.replicas) updateReplica(r, () => r);
    notes.push(...salvage.notes);
    if (salvage.condition !== undefined) setCondition('Salvage', salvage.condition.ok, salvage.condition.reason, salvage.condition.message);
    if (salvage.requeueMs !== undefined) requeueMs = Math.min(requeueMs ?? Infinity, salvage.requeueMs);
  }
  if (salvage?.takeOver === true) {
    state = 'attaching';
    engineWrite = salvage.engine === undefined ? undefined : { ...salvage.engine, spec: engineFrontendSpec(salvage.engine.spec, volume.spec) };
  } else if (!attaching || nodeID === undefined) {
    for (const r of all) if (r.spec.desireState !== 'stopped' && !created.includes(r)) updateReplica(r, (x) => ({ ...x, spec: { ...x.spec, desireState: 'stopped' } }));
    if (engine.spec.desireState !== 'stopped') engineWrite = { ...engine, spec: { ...engine.spec, desireState: 'stopped' } };
    // A replica on a node that is not Ready counts as stopped: its agent cannot report, and it is
    // out of every write set (failed); its agent stops it when the node comes back. Otherwise a
    // volume with a replica on a cut-off host could never detach, nor move to another host.
    const allStopped = instanceStopped(engine.status?.currentState) &&
      all.every((r) => instanceStopped(r.status?.currentState) || (r.spec.nodeID !== undefined && !nodeReady(r.spec.nodeID)));
    if (firstPlacement && all.length === 0) state = 'creating';
    else state = allStopped && engine.spec.desireState === 'stopped' ? 'detached' : 'detaching';
    if (state === 'detached' && currentNodeID !== undefined) {
      notes.push(`volume ${name}: detached from ${currentNodeID}`);
      currentNodeID = undefined;
    }
  } else {
    for (const r of usable) if (r.spec.desireState !== 'running') updateReplica(r, (x) => ({ ...x, spec: { ...x.spec, desireState: 'running' } }));
    const addresses: Record<string, string> = {};
    for (const r of usable) {
      const address = replicaAddress(r);
      if (address !== undefined) addresses[r.metadata.name] = address;
    }
    state = 'attaching';
    if (engine.spec.desireState === 'stopped') {
      // Start the engine only with every usable replica running, so it starts with all of them.
      const ready = usable.length > 0 && usable.every((r) => addresses[r.metadata.name] !== undefined);
      if (ready && instanceStopped(engine.status?.currentState)) {
        // Stored with desireState running, so the agent never starts an engine with an epoch the store lacks.
        const epoch = nextEngineEpoch(engine, usable);
        engineWrite = {
          ...engine,
          spec: {
            // The size the replicas have now: a larger spec.size is reached by online expansion once attached (snapshot controller).
            ...engine.spec, nodeID, desireState: 'running', epoch, replicaAddressMap: addresses,
            volumeSize: engine.spec.volumeSize, minimumWriteReplicas: volume.spec.minimumWriteReplicas, frontend: volume.spec.frontend,
          },
        };
        engineWrite = { ...engineWrite, spec: engineFrontendSpec(engineWrite.spec, volume.spec) };
        notes.push(`volume ${name}: starting engine on ${nodeID} with epoch ${epoch} and replicas ${Object.keys(addresses).sort().join(', ')}`);
      }
    } else {
      // Running: the write set follows the usable running replicas; the node agent rebuilds the
      // ones the engine does not have (or has as ERR).
      // A failed replica leaves the write set (the agent would otherwise keep asking the engine to
      // rebuild an address nobody serves); it comes back when it runs again and is reused.
      const map = { ...engine.spec.replicaAddressMap };
      for (const key of Object.keys(map)) if (!usable.some((r) => r.metadata.name === key)) delete map[key];
      for (const [key, address] of Object.entries(addresses)) {
        const replicaNode = usable.find((r) => r.metadata.name === key)?.spec.nodeID;
        const joining = map[key] !== address && modes[key] !== 'RW';
        // In the write set but ERR in a fresh map (restarted before this manager saw it fail): the
        // agent would rebuild it on its own, so it is held to the limit too (out of the set while it waits).
        const erred = map[key] === address && modes[key] === 'ERR';
        if ((joining || erred) && replicaNode !== undefined) {
          // Joining the write set starts a rebuild: only within the per-node limit, across volumes.
          const rebuilds = new Map(observed.rebuilds ?? []);
          for (const s of rebuildsStarted) rebuilds.set(s.nodeID, [...(rebuilds.get(s.nodeID) ?? []), s.replica]);
          const limit = observed.settings['concurrent-replica-rebuild-per-node-limit'];
          const admission = admitRebuild({ replicaName: key, nodeID: replicaNode, limit, rebuilds });
          if (!admission.ok) {
            rebuildWaits.push({ reason: admission.reason, message: admission.message });
            delete map[key];
            continue;
          }
          rebuildsStarted.push({ replica: key, nodeID: replicaNode });
          if (joining) rebuildStartNotes.push(`replica ${key} on node ${replicaNode} joins the write set to be rebuilt (${admission.running + 1} of at most ${limit} rebuilding on that node)`);
        }
        map[key] = address;
      }
      if (JSON.stringify(map) !== JSON.stringify(engine.spec.replicaAddressMap)) {
        engineWrite = { ...engine, spec: { ...engine.spec, replicaAddressMap: map } };
        notes.push(`volume ${name}: engine write set is now ${Object.keys(map).sort().join(', ')}`);
      }
      if (engine.status?.currentState === 'running') {
        state = 'attached';
        if (currentNodeID !== nodeID) notes.push(`volume ${name}: attached on ${nodeID}`);
        currentNodeID = nodeID;
      }
    }
  }

  // ---- rebuilds: started, or waiting (limit, back-off), in the log and the ReplicaRebuild condition ----
  for (const note of rebuildStartNotes) notes.push(`volume ${name}: ${note}`);
  if (rebuildWaits.length > 0) {
    const reason = rebuildWaits[0]!.reason;
    const message = rebuildWaits.map((w) => w.message).join('; ');
    if (conditionChanged('ReplicaRebuild', 'False', reason, message)) notes.push(`volume ${name}: ${message}`);
    setCondition('ReplicaRebuild', false, reason, message);
    if (backoffUntilMs !== undefined) requeueMs = Math.min(requeueMs ?? Infinity, Math.max(1000, backoffUntilMs - observed.nowMs));
    // A replica held back by the limit is tried again when another rebuild ends (a store event) or soon.
    if (rebuildWaits.some((w) => w.reason === 'RebuildLimitReached')) requeueMs = Math.min(requeueMs ?? Infinity, 5000);
  } else if (rebuildStartNotes.length > 0) {
    setCondition('ReplicaRebuild', true, 'RebuildStarted', rebuildStartNotes.join('; '));
  } else if (conditions.find((c) => c.type === 'ReplicaRebuild')?.status === 'False') {
    setCondition('ReplicaRebuild', true, 'NotWaiting', 'no replica is waiting to rebuild');
  }

  if (salvage?.clearEngineSalvage === true) {
    const { salvageRequested: _s, ...spec } = (engineWrite ?? engine).spec;
    engineWrite = { ...(engineWrite ?? engine), spec };
  }

  // ---- robustness: RW replicas in the running engine ----
  let robustness: VolumeRobustness = 'unknown';
  let lastDegradedAt = status.lastDegradedAt;
  if (state === 'attached') {
    robustness = volumeRobustness({
      replicaModeMap: engine.status?.replicaModeMap,
      replicaNames: all.map((r) => r.metadata.name),
      numberOfReplicas: volume.spec.numberOfReplicas,
      previous: status.robustness,
    });
    const rw = all.filter((r) => modes[r.metadata.name] === 'RW').length;
    if (robustness === 'degraded' && status.robustness !== 'degraded') {
      lastDegradedAt = nowText;
      notes.push(`volume ${name}: degraded, ${rw} of ${volume.spec.numberOfReplicas} replicas RW`);
    }
    if (robustness !== status.robustness && robustness !== 'degraded') notes.push(`volume ${name}: ${robustness}`);
  }
  // Every replica failed and the salvage has not brought the engine back: faulted, attached or not
  // (the API offers the salvage action on faulted volumes).
  if (salvage?.faulted === true || salvageStage(conditions) !== 'none') robustness = 'faulted';

  for (const r of replicaUpdates.values()) {
    if (!created.some((c) => c.metadata.name === r.metadata.name) && !deletions.has(r.metadata.name)) actions.push({ type: 'update', object: r });
  }
  for (const replicaName of deletions) actions.push({ type: 'delete', kind: 'Replica', name: replicaName });
  // Snapshot limits follow the Volume and the setting in every state, in this pass's one engine
  // write: the agent starts a stopped engine with them and changes a running one's live (never a restart).
  const limited = engineCreated ? undefined : engineSnapshotLimitsSpec((engineWrite ?? engine).spec, volume.spec, observed.settings['snapshot-max-count']);
  if (limited !== undefined && limited !== (engineWrite ?? engine).spec) {
    notes.push(`volume ${name}: engine snapshot limits now ${describeSnapshotLimits(limited)} (were ${describeSnapshotLimits(engine.spec)})`);
    engineWrite = { ...(engineWrite ?? engine), spec: limited };
  }
  if (engineWrite !== undefined) actions.push({ type: 'update', object: engineWrite });
  if (observed.attachment !== undefined) {
    const ticketStatuses = Object.fromEntries(
      Object.values(observed.attachment.spec.attachmentTickets).map((t) => [
        t.id,
        { id: t.id, satisfied: state === 'attached' && currentNodeID === t.nodeID && ticketDisablesFrontend(t) === (engine.spec.disableFrontend === true), ...(t.generation === undefined ? {} : { generation: t.generation }) },
      ]),
    );
    const vaStatus = { ...observed.attachment.status, attachmentTicketStatuses: ticketStatuses };
    if (JSON.stringify(vaStatus) !== JSON.stringify(observed.attachment.status ?? {})) {
      actions.push({ type: 'updateStatus', object: { ...observed.attachment, status: vaStatus } });
    }
  }
  const { currentNodeID: _c, lastDegradedAt: _l, frontendDisabled: _f, ...statusRest } = status;
  const nextStatus: VolumeStatus = {
    ...statusRest,
    state,
    robustness,
    conditions,
    ...(currentNodeID === undefined ? {} : { currentNodeID }),
    // Maintenance mode in effect: the running engine was started without a frontend.
    ...(state === 'attached' && engine.spec.disableFrontend === true ? { frontendDisabled: true } : {}),
    ...(lastDegradedAt === undefined ? {} : { lastDegradedAt }),
    ...(engine.status?.generation === undefined ? {} : { generation: engine.status.generation }),
  };
  if (JSON.stringify(nextStatus) !== JSON.stringify(status)) actions.push({ type: 'updateStatus', object: { ...volume, status: nextStatus } });
  if (requeueMs !== undefined) actions.push({ type: 'requeueAfter', delayMs: requeueMs });
  return { actions, notes, ...(rebuildsStarted.length === 0 ? {} : { rebuildsStarted }) };
}
