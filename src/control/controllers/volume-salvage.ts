// Salvage: what the volume controller does when every replica of an attached volume failed
// (DESIGN §3.3; Longhorn's auto-salvage, reference §2.5). Pure.
//
// The steps, recorded in the volume's `Salvage` condition so that they survive a manager restart
// and show in the volume's status:
// 1. `False/AllReplicasFailed`: a fresh observation of the running engine shows no RW replica.
//    The volume is `faulted`; on the next pass its engine, which can serve nothing, is stopped. With the setting
//    `auto-salvage` off it stays so until the API's `salvage` action names replicas
//    (`spec.salvageRequested`).
// 2. Choose: with auto-salvage, the replicas whose durable record (read by their node agent from
//    the replica's metadata, Replica `status.generation`/`epoch`) has the highest generation;
//    otherwise the named ones. Never by file times. Their `failedAt` is cleared and they are run.
// 3. `False/Salvaging`: once they run, the engine starts with only them and `salvageRequested`
//    (`shorthorn engine --salvage`): it starts from the newest members it can reach, even if some
//    member of the newest generation is gone, and logs whose last writes may be lost.
// 4. `True/Salvaged`: the engine runs; `salvageRequested` is cleared. The other replicas are
//    neither deleted nor started with it: they join the write set afterwards and are rebuilt from
//    the chosen ones, as any returning replica is (only what differs is copied).
import type { Engine } from '../resources/engine.ts';
import type { Replica } from '../resources/replica.ts';

export const salvageConditionType = 'Salvage';

interface ConditionLike {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
}

export type SalvageStage = 'none' | 'failed' | 'salvaging';

/** Where a volume's salvage stands, from its `Salvage` condition. */
export function salvageStage(conditions: readonly ConditionLike[] | undefined): SalvageStage {
  const condition = conditions?.find((c) => c.type === salvageConditionType);
  if (condition === undefined || condition.status !== 'False') return 'none';
  return condition.reason === 'Salvaging' ? 'salvaging' : condition.reason === 'AllReplicasFailed' ? 'failed' : 'none';
}

/** The `auto-salvage` setting (default on) from the settings the controller passes. */
export function autoSalvageSetting(settings: object): boolean {
  return (settings as { readonly 'auto-salvage'?: unknown })['auto-salvage'] !== false;
}

/**
 * Every replica failed: the engine runs and its node agent's fresh poll (a map; no map means no
 * answer, which says nothing) shows none of the volume's replicas RW.
 */
export function everyReplicaFailed(engine: Engine, replicaNames: readonly string[]): boolean {
  if (engine.spec.desireState !== 'running' || engine.status?.currentState !== 'running') return false;
  const modes = engine.status.replicaModeMap;
  if (modes === undefined) return false;
  return !replicaNames.some((name) => modes[name] === 'RW');
}

/** What the replicas looked like when every one had failed, for the condition and the log. */
export function failureSummary(engine: Engine, replicas: readonly Replica[]): string {
  const modes = engine.status?.replicaModeMap ?? {};
  return replicas
    .map((r) => `${r.metadata.name} ${modes[r.metadata.name] ?? 'not in the engine'}${r.spec.failedAt === undefined ? '' : ' (failed)'}`)
    .sort()
    .join(', ');
}

export type SalvagePick =
  | { readonly kind: 'chosen'; readonly chosen: readonly Replica[]; readonly reason: string }
  | { readonly kind: 'wait'; readonly reason: string };

const recordText = (r: Replica): string =>
  r.status?.generation === undefined ? `${r.metadata.name} (no record)` : `${r.metadata.name} generation ${r.status.generation} epoch ${r.status.epoch ?? '?'}`;

/**
 * The replicas to salvage from. Auto: of the replicas placed on ready nodes whose record is
 * known, those of the highest generation (the engine then keeps the members among them). Manual:
 * the replicas the salvage action named, on ready nodes.
 */
export function pickSalvageReplicas(input: {
  readonly replicas: readonly Replica[];
  readonly autoSalvage: boolean;
  readonly nodeReady: (nodeID: string | undefined) => boolean;
}): SalvagePick {
  const placed = input.replicas.filter((r) => r.metadata.deletionTimestamp === undefined && r.spec.nodeID !== undefined && r.spec.dataDirectoryName !== undefined);
  const named = placed.filter((r) => r.spec.salvageRequested === true);
  if (named.length > 0) {
    const down = named.filter((r) => !input.nodeReady(r.spec.nodeID));
    if (down.length > 0) return { kind: 'wait', reason: `named replicas on nodes that are not ready: ${down.map((r) => `${r.metadata.name} (${r.spec.nodeID ?? '?'})`).join(', ')}` };
    return { kind: 'chosen', chosen: named, reason: `named by the salvage action: ${named.map(recordText).join(', ')}` };
  }
  if (!input.autoSalvage) return { kind: 'wait', reason: 'auto-salvage is off: the volume stays faulted until the salvage action names replicas' };
  const reachable = placed.filter((r) => input.nodeReady(r.spec.nodeID));
  const known = reachable.filter((r) => r.status?.generation !== undefined);
  if (known.length === 0) {
    return { kind: 'wait', reason: `no replica on a ready node has a known record yet (${placed.map(recordText).join(', ') || 'no replicas'})` };
  }
  const top = Math.max(...known.map((r) => r.status?.generation ?? 0));
  const chosen = known.filter((r) => r.status?.generation === top);
  const others = placed.filter((r) => !chosen.includes(r));
  const away = placed.filter((r) => !reachable.includes(r));
  const reason =
    `highest generation ${top}: ${chosen.map(recordText).join(', ')}` +
    (others.length > 0 ? `; rebuilt from it afterwards: ${others.map(recordText).join(', ')}` : '') +
    (away.length > 0 ? `; not considered (node not ready, its data is kept): ${away.map((r) => r.metadata.name).join(', ')}` : '');
  return { kind: 'chosen', chosen, reason };
}

export interface SalvageStepInput {
  readonly volumeName: string;
  readonly nodeID: string;
  readonly engine: Engine;
  /** The volume's replicas as this pass sees them (not the ones it creates). */
  readonly replicas: readonly Replica[];
  readonly conditions: readonly ConditionLike[];
  readonly autoSalvage: boolean;
  readonly nodeReady: (nodeID: string | undefined) => boolean;
  /** The replica's `host:port` once its process runs, else undefined. */
  readonly addressOf: (replica: Replica) => string | undefined;
  readonly spec: { readonly minimumWriteReplicas: number; readonly frontend: Engine['spec']['frontend'] };
}

export interface SalvageStep {
  /** The salvage decides the engine this pass: skip the normal attach (the volume is `attaching`). */
  readonly takeOver: boolean;
  /** Show the volume as faulted. */
  readonly faulted: boolean;
  readonly engine?: Engine;
  /** The engine runs after a salvage start: clear its `salvageRequested` (merge into any engine write). */
  readonly clearEngineSalvage: boolean;
  readonly replicas: readonly Replica[];
  readonly condition?: { readonly ok: boolean; readonly reason: string; readonly message: string };
  readonly notes: readonly string[];
  readonly requeueMs?: number;
}

const stopped = (state: string | undefined): boolean => state === undefined || state === 'stopped' || state === 'error';

/** One pass of the salvage of an attached (or attaching) volume; see the steps at the top. */
export function salvageStep(input: SalvageStepInput): SalvageStep {
  const { engine, volumeName } = input;
  const none: SalvageStep = { takeOver: false, faulted: false, clearEngineSalvage: false, replicas: [], notes: [] };
  const condition = input.conditions.find((c) => c.type === salvageConditionType);
  const stage = salvageStage(input.conditions);
  if (stage === 'none') {
    if (!everyReplicaFailed(engine, input.replicas.map((r) => r.metadata.name))) return none;
    const message = `every replica failed (${failureSummary(engine, input.replicas)}); ${input.autoSalvage ? 'auto-salvage: restarting from the replicas with the newest records' : 'auto-salvage is off: faulted until the salvage action names replicas'}`;
    // The condition is stored first and the engine stopped on the next pass (the step below): a
    // manager that dies between the two writes then finds the salvage decided. Stopping first
    // lost it (S26 seed 5): the restarted manager saw a stopped engine and no condition, and
    // started the engine the normal way, which refuses for good if a member never returns.
    return {
      takeOver: true, faulted: true, clearEngineSalvage: false, replicas: [],
      condition: { ok: false, reason: 'AllReplicasFailed', message },
      notes: [`volume ${volumeName}: ${message}; stopping its engine`],
    };
  }
  // A salvage start stored without its `Salvaging` condition (the manager died between the two
  // writes; S26 seed 2) is the same salvage: stopping it to start it again would restart the
  // engine and raise the epoch twice for nothing.
  const ourStart = stage === 'failed' && engine.spec.salvageRequested === true;
  if ((stage === 'salvaging' || ourStart) && engine.spec.desireState === 'running') {
    if (engine.status?.currentState === 'running') {
      const message = `salvaged: ${condition?.message ?? ''}`.slice(0, 3000);
      return {
        ...none, clearEngineSalvage: true,
        condition: { ok: true, reason: 'Salvaged', message },
        notes: [`volume ${volumeName}: engine runs again after the salvage; the other replicas are rebuilt from the salvaged ones`],
      };
    }
    // Starting, or refused to start (the agent restarts it with back-off): keep the write set as chosen.
    const error = engine.status?.currentState === 'error' ? engine.status.errorMessage : undefined;
    return { ...none, takeOver: true, faulted: true, notes: error === undefined ? [] : [`volume ${volumeName}: salvage engine in error: ${error}`], requeueMs: 2000 };
  }
  // AllReplicasFailed, or a salvage engine that was stopped (detach): choose and start.
  if (engine.spec.desireState !== 'stopped') {
    const { salvageRequested: _s, ...spec } = engine.spec;
    return { ...none, takeOver: true, faulted: true, engine: { ...engine, spec: { ...spec, desireState: 'stopped' } } };
  }
  if (!stopped(engine.status?.currentState)) return { ...none, takeOver: true, faulted: true };
  const pick = pickSalvageReplicas({ replicas: input.replicas, autoSalvage: input.autoSalvage, nodeReady: input.nodeReady });
  if (pick.kind === 'wait') {
    const message = `${condition?.message?.replace(/; waiting: .*$/, '') ?? 'every replica failed'}; waiting: ${pick.reason}`.slice(0, 3000);
    return {
      ...none, takeOver: true, faulted: true, requeueMs: 5000,
      condition: { ok: false, reason: 'AllReplicasFailed', message },
      notes: message === condition?.message ? [] : [`volume ${volumeName}: salvage waits: ${pick.reason}`],
    };
  }
  // Run the chosen ones as usable replicas: not failed, running, no longer named.
  const replicas = pick.chosen.map((r) => {
    const { failedAt: _f, salvageRequested: _s, ...spec } = r.spec;
    return { ...r, spec: { ...spec, desireState: 'running' as const } };
  });
  const changed = replicas.filter((r, i) => JSON.stringify(r.spec) !== JSON.stringify(pick.chosen[i]?.spec));
  const addresses: Record<string, string> = {};
  for (const r of pick.chosen) {
    const address = input.addressOf(r);
    if (address !== undefined && input.nodeReady(r.spec.nodeID)) addresses[r.metadata.name] = address;
  }
  if (Object.keys(addresses).length < pick.chosen.length) {
    return {
      ...none, takeOver: true, faulted: true, replicas: changed, requeueMs: 2000,
      notes: changed.length > 0 ? [`volume ${volumeName}: salvage chose ${pick.reason}; starting them`] : [],
    };
  }
  const epoch = engine.spec.epoch + 1;
  const names = Object.keys(addresses).sort();
  return {
    ...none, takeOver: true, faulted: true, replicas: changed,
    engine: {
      ...engine,
      spec: {
        ...engine.spec, nodeID: input.nodeID, desireState: 'running', salvageRequested: true, epoch, replicaAddressMap: addresses,
        minimumWriteReplicas: input.spec.minimumWriteReplicas, frontend: input.spec.frontend,
      },
    },
    condition: { ok: false, reason: 'Salvaging', message: `salvage from ${names.join(', ')} (${pick.reason})`.slice(0, 3000) },
    notes: [`volume ${volumeName}: salvage: starting the engine on ${input.nodeID} with epoch ${epoch} from ${names.join(', ')}: ${pick.reason}`],
  };
}
