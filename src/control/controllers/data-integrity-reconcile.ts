// The data-integrity controller's pure core (Longhorn's snapshot-data-integrity cronjob): for one
// volume, whether to scrub its engine now, how (fast-check: the replicas' stored per-chunk
// checksums compared; enabled: each replica's data also read against its own sums), whether the
// engine may fail the odd replica out, and what the engine's report means for the Volume status.
//
// When (docs/manager.md "Snapshot data integrity"):
// - A user's snapshotCheck request (the volume annotation, acted on once: its value is recorded in
//   status.dataIntegrity.lastRequest) is a full check (verifyData), whatever the mode.
// - Otherwise the effective mode (volume spec.snapshotDataIntegrity unless `ignored`, else the
//   setting) decides: `disabled`, nothing; else one check per slot of the cron setting
//   snapshot-data-integrity-cronjob, by the recurring jobs' rules (recurring/job-schedule.ts): the
//   slot is recorded in status.dataIntegrity.lastScheduledAt, so a manager restart never checks a
//   slot again, slots missed while the manager was down or the volume detached fold into one
//   check, and a wall clock stepped back does not repeat a slot.
// - Only while the volume is attached with its engine running: a detached volume's due check runs
//   when it is attached again. And a scheduled check waits while the volume is not healthy (a
//   replica not RW): the engine refuses rebuilds while it scrubs, and healing comes first.
// markErr only with 3 or more rw replicas: with 2 a disagreement has no majority to say which copy
// is right (the engine would mark nothing anyway, but the report should say why); with 1 there is
// nothing to compare. Corruption is reported, never "repaired" by guessing.
import { freeTextLengthMax, replicaCountMax } from '../../lib/limits.ts';
import type { Engine } from '../resources/engine.ts';
import type { SnapshotDataIntegrityMode, Volume, VolumeDataIntegrityStatus } from '../resources/volume.ts';
import { parseCronSchedule } from '../recurring/cron-schedule.ts';
import { decideSchedule } from '../recurring/job-schedule.ts';
import type { EngineScrubReport } from './engine-control-client.ts';
import { engineControlAddress } from './snapshot-reconcile.ts';

/** Annotation the API's snapshotCheck action sets (to the request time): check this volume now. */
export const snapshotCheckAnnotation = 'shorthorn.io/snapshot-check-requested-at';

export type IntegrityMode = Exclude<SnapshotDataIntegrityMode, 'ignored'>;
/** Replicas in rw mode needed before a check may fail one: a strict majority against one exists. */
export const markErrReplicasMin = 3;

/** The volume's own mode unless `ignored`, else the setting's (an unknown setting value: the default, fast-check). */
export function effectiveMode(volumeMode: SnapshotDataIntegrityMode | undefined, settingMode: string | undefined): IntegrityMode {
  if (volumeMode !== undefined && volumeMode !== 'ignored') return volumeMode;
  return settingMode === 'disabled' || settingMode === 'enabled' ? settingMode : 'fast-check';
}

export interface IntegrityInput {
  readonly volume: Volume;
  /** The volume's engine (`<volume>-e-0`), when there is one. */
  readonly engine: Engine | undefined;
  readonly managerId: string;
  /** Values of the settings snapshot-data-integrity and snapshot-data-integrity-cronjob (undefined: default). */
  readonly settingMode: string | undefined;
  readonly cron: string;
  readonly nowMs: number;
  /** Monotonic ms since this process started the check of status.dataIntegrity.lastScheduledAt, if it did. */
  readonly realSinceLastCheckMs?: number;
}

export interface CheckPlan {
  readonly trigger: 'schedule' | 'request';
  readonly address: string;
  readonly mode: Exclude<IntegrityMode, 'disabled'>;
  readonly verifyData: boolean;
  readonly markErr: boolean;
  readonly rwReplicas: number;
  /** The cron slot this check covers (schedule) or the request's annotation value (request). */
  readonly slotMs?: number;
  readonly request?: string;
  /** Slots folded into this one (schedule; more than 1 after downtime or a clock step forward). */
  readonly collapsedSlots?: number;
  readonly nextMs?: number | null;
}

export type IntegrityDecision =
  /** Not this manager's volume, or nothing to do until something changes. `status`: fields to record. */
  | { readonly kind: 'idle'; readonly note?: string; readonly status?: VolumeDataIntegrityStatus }
  /** Look again at `atMs` (the next slot, or a due check waiting for the engine). */
  | { readonly kind: 'wait'; readonly atMs: number; readonly note?: string; readonly status?: VolumeDataIntegrityStatus }
  | { readonly kind: 'check'; readonly plan: CheckPlan };

const iso = (ms: number): string => new Date(ms).toISOString();

/** The engine's rw replicas as the agent last saw them (status.replicaModeMap). */
export function rwReplicaCount(engine: Engine | undefined): number {
  return Object.values(engine?.status?.replicaModeMap ?? {}).filter((mode) => mode === 'RW').length;
}

export function decideIntegrity(input: IntegrityInput): IntegrityDecision {
  const { volume, engine, nowMs } = input;
  const name = volume.metadata.name;
  if (volume.status?.ownerID !== input.managerId || volume.metadata.deletionTimestamp !== undefined) return { kind: 'idle' };
  const status = volume.status.dataIntegrity ?? {};
  const address = engineControlAddress(volume, engine?.spec.volumeName === name ? engine : undefined);
  const rwReplicas = rwReplicaCount(engine);
  const request = volume.metadata.annotations?.[snapshotCheckAnnotation]?.slice(0, 64);
  const mode = effectiveMode(volume.spec.snapshotDataIntegrity, input.settingMode);
  if (request !== undefined && request !== status.lastRequest) {
    // The API offers the action only while the volume is attached; it may have detached since.
    if (address === undefined) return { kind: 'idle', note: `volume ${name}: the requested check waits for the volume to be attached with its engine running` };
    return { kind: 'check', plan: { trigger: 'request', address, mode: 'enabled', verifyData: true, markErr: rwReplicas >= markErrReplicasMin, rwReplicas, request } };
  }
  if (mode === 'disabled') {
    return status.nextCheckAt === undefined ? { kind: 'idle' } : { kind: 'idle', status: withoutNext(status) };
  }
  const schedule = parseCronSchedule(input.cron);
  if (typeof schedule === 'string') return { kind: 'idle', note: `volume ${name}: no scheduled data check: ${schedule}` };
  const lastSlotMs = status.lastScheduledAt === undefined ? undefined : Date.parse(status.lastScheduledAt);
  const createdAtMs = Date.parse(volume.metadata.creationTimestamp ?? '') || nowMs;
  const decision = decideSchedule({
    schedule,
    lastSlotMs,
    createdAtMs,
    nowMs,
    ...(input.realSinceLastCheckMs === undefined ? {} : { realSinceLastRunMs: input.realSinceLastCheckMs }),
  });
  switch (decision.kind) {
    case 'never':
      return { kind: 'idle', note: `volume ${name}: cron ${input.cron} fires no more`, ...(status.nextCheckAt === undefined ? {} : { status: withoutNext(status) }) };
    case 'wait': {
      const next: VolumeDataIntegrityStatus = {
        ...status,
        nextCheckAt: iso(decision.nextMs),
        // A wall clock far behind the recorded slot (a clock once set into the future): start the schedule again from now.
        ...(decision.resetAnchorMs === undefined ? {} : { lastScheduledAt: iso(decision.resetAnchorMs) }),
      };
      const note = decision.resetAnchorMs === undefined ? undefined : `volume ${name}: the clock is behind the last checked slot by more than a day; the check schedule restarts from ${iso(decision.resetAnchorMs)}`;
      return { kind: 'wait', atMs: decision.nextMs, ...(note === undefined ? {} : { note }), ...(same(next, status) ? {} : { status: next }) };
    }
    case 'run': {
      // Due, but the engine is not running: check when it is (the volume's events bring us back).
      if (address === undefined) return { kind: 'idle', note: `volume ${name}: a scheduled data check is due; it runs when the volume is attached` };
      // While the engine scrubs, its chain is busy and it refuses rebuilds: a degraded volume is
      // healed first (Longhorn too hashes only when every replica is RW and none rebuilds).
      const unhealthy = unhealthyReason(volume, engine);
      if (unhealthy !== undefined) return { kind: 'idle', note: `volume ${name}: a scheduled data check is due; it waits while ${unhealthy}` };
      return {
        kind: 'check',
        plan: {
          trigger: 'schedule', address, mode, verifyData: mode === 'enabled', markErr: rwReplicas >= markErrReplicasMin, rwReplicas,
          slotMs: decision.slotMs, collapsedSlots: decision.collapsedSlots, nextMs: decision.nextMs,
        },
      };
    }
    default: {
      const unknown: never = decision;
      throw new Error(`unknown schedule decision ${JSON.stringify(unknown)}`);
    }
  }
}

/** Why the volume is not whole (some replica not RW, or degraded), or undefined. */
function unhealthyReason(volume: Volume, engine: Engine | undefined): string | undefined {
  const modes = Object.entries(engine?.status?.replicaModeMap ?? {});
  const notRw = modes.filter(([, mode]) => mode !== 'RW').map(([replica, mode]) => `${replica} is ${mode}`);
  if (notRw.length > 0) return notRw.join(', ');
  if (volume.status?.robustness !== 'healthy') return `the volume is ${volume.status?.robustness ?? 'of unknown robustness'}`;
  return undefined;
}

function withoutNext(status: VolumeDataIntegrityStatus): VolumeDataIntegrityStatus {
  const { nextCheckAt: _next, ...rest } = status;
  return rest;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The engine's answer to the check, or why there is none. */
export type CheckOutcome =
  | { readonly ok: true; readonly report: EngineScrubReport }
  /** The engine ran the check and failed (5xx, bad answer): recorded as `failed`. */
  | { readonly ok: false; readonly recorded: true; readonly message: string }
  /** Unreachable, or refused (busy with a purge, a rebuild, another scrub): not a check; try again later. */
  | { readonly ok: false; readonly recorded: false; readonly message: string };

/** Status fields recording a finished check, and the log line. */
export function recordCheck(
  before: VolumeDataIntegrityStatus,
  plan: CheckPlan,
  outcome: Exclude<CheckOutcome, { recorded: false }>,
  context: { readonly volumeName: string; readonly engine: Engine | undefined; readonly nowMs: number },
): { status: VolumeDataIntegrityStatus; note: string } {
  const base: VolumeDataIntegrityStatus = {
    ...before,
    ...(plan.slotMs === undefined ? {} : { lastScheduledAt: iso(plan.slotMs) }),
    ...(plan.nextMs === undefined || plan.nextMs === null ? {} : { nextCheckAt: iso(plan.nextMs) }),
    ...(plan.request === undefined ? {} : { lastRequest: plan.request }),
    lastCheckAt: iso(context.nowMs),
    lastCheckTrigger: plan.trigger,
    lastCheckMode: plan.mode,
  };
  const what = `volume ${context.volumeName}: data check (${plan.mode}, ${plan.trigger === 'request' ? `requested at ${plan.request ?? '?'}` : `slot ${iso(plan.slotMs ?? 0)}`})`;
  if (!outcome.ok) {
    const { mismatchedReplicas: _m, markedFailed: _f, bytesVerified: _b, chunksChecked: _c, ...rest } = base;
    const message = `the engine failed the check: ${outcome.message}`.slice(0, freeTextLengthMax);
    return { status: { ...rest, lastCheckResult: 'failed', message }, note: `${what}: failed: ${outcome.message}` };
  }
  const { report } = outcome;
  const nameOf = replicaNames(context.engine);
  const named = (address: string): string => nameOf.get(address) ?? address;
  const odd = new Set<string>([
    ...report.disagreeing,
    ...report.corrupt.map((c) => c.replica),
    ...report.storedChecksumErrors.map((e) => e.replica),
    ...report.mismatches.flatMap((m) => m.replicas),
  ]);
  const mismatched = [...odd].map(named).sort().slice(0, 2 * replicaCountMax);
  const marked = report.markedErr.map(named).sort().slice(0, 2 * replicaCountMax);
  const clean = report.mismatchCount === 0 && report.corruptCount === 0 && report.storedChecksumErrors.length === 0 && odd.size === 0;
  const folded = (plan.collapsedSlots ?? 1) > 1 ? `; ${plan.collapsedSlots} slots since the last check folded into this one` : '';
  const counts = `${report.layersChecked} layer(s), ${report.chunksChecked} chunk(s) on ${report.replicas.length} rw replica(s), ${report.bytesVerified} bytes of data read`;
  let message: string;
  if (clean) {
    message = `clean: ${counts}${folded}`;
  } else {
    const parts = [
      report.mismatchCount > 0 ? `${report.mismatchCount} chunk(s) whose stored checksums disagree` : '',
      report.corruptCount > 0 ? `${report.corruptCount} chunk(s) whose data fails its replica's own checksum` : '',
      report.storedChecksumErrors.length > 0 ? `${report.storedChecksumErrors.length} damaged checksum file(s)` : '',
    ].filter((p) => p !== '');
    const action = marked.length > 0
      ? `replica(s) ${marked.join(', ')} failed and will be rebuilt`
      : !report.comparable
        ? 'nothing marked: one rw replica, nothing to compare with'
        : plan.markErr
          ? 'nothing marked: no majority says which copy is right'
          : `nothing marked: ${plan.rwReplicas} rw replica(s); a replica is failed only with ${markErrReplicasMin} or more`;
    message = `mismatch on ${mismatched.join(', ') || 'no replica named'}: ${parts.join('; ')}; ${action} (${counts})${folded}`;
  }
  const status: VolumeDataIntegrityStatus = {
    ...base,
    lastCheckResult: clean ? 'clean' : 'mismatch',
    mismatchedReplicas: mismatched,
    markedFailed: marked,
    bytesVerified: report.bytesVerified,
    chunksChecked: report.chunksChecked,
    message: message.slice(0, freeTextLengthMax),
  };
  return { status, note: `${what}: ${message}` };
}

/** Replica name by address: the engine's spec (what it was given) and status (what it reports). */
function replicaNames(engine: Engine | undefined): Map<string, string> {
  const names = new Map<string, string>();
  for (const [name, address] of Object.entries(engine?.spec.replicaAddressMap ?? {})) names.set(address, name);
  for (const [name, address] of Object.entries(engine?.status?.currentReplicaAddressMap ?? {})) names.set(address, name);
  return names;
}
