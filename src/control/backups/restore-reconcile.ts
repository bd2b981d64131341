// Restoring a volume created with `fromBackup`, pure (Longhorn's restore flow, reference §2.11):
// mark it restoreRequired, attach it for the restore with a volume-restore-controller ticket
// (frontend off) on a ready node that holds one of its replicas, ask the engine to restore,
// follow the engine's progress in the volume's `Restore` condition, and when the engine says
// completed clear restoreRequired and remove the ticket, so the volume detaches. Only then does
// the API let users attach it. A failed restore leaves restoreRequired set (the data is not
// what the backup holds) and the volume detached. Standby (DR) volumes, and those being
// activated, are left to standby-reconcile.ts.
import type { Static } from '@sinclair/typebox';
import type { ConditionSchema } from '../resources/common-schemas.ts';
import type { Engine } from '../resources/engine.ts';
import type { Node } from '../resources/node.ts';
import type { Replica } from '../resources/replica.ts';
import type { VolumeAttachment } from '../resources/volume-attachment.ts';
import type { Volume, VolumeStatus } from '../resources/volume.ts';
import { engineAddress } from './backup-reconcile.ts';
import { parseBackupUrl } from './backup-url.ts';
import type { EngineRestoreReport, EngineRestoreRequest } from './engine-backup-client.ts';

type Condition = Static<typeof ConditionSchema>;

export const restoreConditionType = 'Restore';

export function restoreTicketId(volumeName: string): string {
  return `volume-restore-controller-${volumeName}`;
}

export interface RestoreContext {
  readonly attachment: VolumeAttachment | undefined;
  readonly engine: Engine | undefined;
  readonly replicas: readonly Replica[];
  readonly nodes: readonly Node[];
  readonly concurrency: number;
  readonly nowText: string;
}

export type RestoreStep =
  | { readonly kind: 'none' }
  | { readonly kind: 'status'; readonly status: VolumeStatus; readonly note?: string }
  | { readonly kind: 'ticket'; readonly attachment: VolumeAttachment; readonly note: string }
  | { readonly kind: 'start'; readonly address: string; readonly request: Omit<EngineRestoreRequest, 'credentials'>; readonly status: VolumeStatus }
  | { readonly kind: 'poll'; readonly address: string };

/** Whether the volume needs (or waits for) a restore before users may attach it. */
export function restorePending(volume: Volume): boolean {
  return volume.spec.fromBackup !== undefined && volume.status?.restoreRequired !== false;
}

export function withCondition(status: VolumeStatus, condition: Omit<Condition, 'lastTransitionTime'>, nowText: string): VolumeStatus {
  const conditions = [...(status.conditions ?? [])];
  const i = conditions.findIndex((c) => c.type === condition.type);
  const old = conditions[i];
  const next: Condition = {
    ...condition,
    ...(condition.message === undefined ? {} : { message: condition.message.slice(0, 4000) }),
    lastTransitionTime: old !== undefined && old.status === condition.status ? (old.lastTransitionTime ?? nowText) : nowText,
  };
  if (i >= 0) conditions[i] = next;
  else conditions.push(next);
  return { ...status, conditions };
}

function nodeReady(nodes: readonly Node[], name: string | undefined): boolean {
  return nodes.find((n) => n.metadata.name === name)?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
}

export function planRestore(volume: Volume, context: RestoreContext): RestoreStep {
  const name = volume.metadata.name;
  const status: VolumeStatus = volume.status ?? {};
  const url = volume.spec.fromBackup;
  if (url === undefined || volume.spec.standby || status.isStandby === true || volume.metadata.deletionTimestamp !== undefined || status.restoreRequired === false) return { kind: 'none' };
  const ticketId = restoreTicketId(name);
  const ticket = context.attachment?.spec.attachmentTickets[ticketId];
  const condition = status.conditions?.find((c) => c.type === restoreConditionType);
  const setStatus = (next: VolumeStatus, note?: string): RestoreStep =>
    JSON.stringify(next) === JSON.stringify(status) ? { kind: 'none' } : { kind: 'status', status: next, ...(note === undefined ? {} : { note }) };
  const parsed = parseBackupUrl(url);
  if (typeof parsed === 'string') {
    return setStatus(withCondition({ ...status, restoreRequired: true, restoreInitiated: false }, { type: restoreConditionType, status: 'False', reason: 'InvalidBackupURL', message: parsed }, context.nowText));
  }
  if (status.restoreRequired === undefined) {
    return setStatus(
      withCondition({ ...status, restoreRequired: true, restoreInitiated: false }, { type: restoreConditionType, status: 'False', reason: 'Pending', message: `waiting to restore ${parsed.backupName}` }, context.nowText),
      `volume ${name}: will be restored from backup ${parsed.backupName} of ${parsed.volumeName}`,
    );
  }
  if (condition?.reason === 'RestoreFailed') {
    // Failed for good: detach (drop our ticket) and leave it to the user.
    if (ticket !== undefined && context.attachment !== undefined) return { kind: 'ticket', attachment: withoutTicket(context.attachment, ticketId), note: `volume ${name}: restore failed; detaching` };
    return { kind: 'none' };
  }
  if (ticket === undefined) {
    if (context.attachment === undefined) return { kind: 'none' };
    const placed = context.replicas.filter((r) => r.metadata.deletionTimestamp === undefined && r.spec.nodeID !== undefined);
    if (placed.length === 0) return { kind: 'none' };
    const node = placed.map((r) => r.spec.nodeID!).sort().find((n) => nodeReady(context.nodes, n));
    if (node === undefined) return setStatus(withCondition(status, { type: restoreConditionType, status: 'False', reason: 'Pending', message: 'no ready node holds a replica of the volume' }, context.nowText));
    const attachment: VolumeAttachment = {
      ...context.attachment,
      spec: {
        ...context.attachment.spec,
        attachmentTickets: { ...context.attachment.spec.attachmentTickets, [ticketId]: { id: ticketId, type: 'volume-restore-controller', nodeID: node, parameters: { disableFrontend: true }, generation: 1 } },
      },
    };
    return { kind: 'ticket', attachment, note: `volume ${name}: attaching on ${node} to restore backup ${parsed.backupName}` };
  }
  const engine = engineAddress(context.engine);
  if (status.state !== 'attached' || engine === undefined) return { kind: 'none' };
  if (status.restoreInitiated !== true) {
    return {
      kind: 'start',
      address: engine.address,
      request: { targetURL: parsed.targetURL, backupVolumeName: parsed.volumeName, backupName: parsed.backupName, concurrency: context.concurrency },
      status: withCondition({ ...status, restoreInitiated: true }, { type: restoreConditionType, status: 'False', reason: 'InProgress', message: `restoring ${parsed.backupName}: 0%` }, context.nowText),
    };
  }
  return { kind: 'poll', address: engine.address };
}

function withoutTicket(attachment: VolumeAttachment, ticketId: string): VolumeAttachment {
  const { [ticketId]: _removed, ...tickets } = attachment.spec.attachmentTickets;
  return { ...attachment, spec: { ...attachment.spec, attachmentTickets: tickets } };
}

/** What the engine's restore report means for the volume; the ticket goes once it is done. */
export function restoreFromReport(
  volume: Volume,
  attachment: VolumeAttachment | undefined,
  report: EngineRestoreReport,
  nowText: string,
): { status: VolumeStatus; attachment?: VolumeAttachment; note?: string } {
  const status: VolumeStatus = volume.status ?? {};
  const parsed = parseBackupUrl(volume.spec.fromBackup ?? '');
  const backupName = typeof parsed === 'string' ? '?' : parsed.backupName;
  const ticketId = restoreTicketId(volume.metadata.name);
  switch (report.state) {
    case 'in_progress':
      return { status: withCondition(status, { type: restoreConditionType, status: 'False', reason: 'InProgress', message: `restoring ${backupName}: ${report.progressPercent}%` }, nowText) };
    case 'idle':
      // The engine restarted and forgot the restore: ask again.
      return { status: { ...status, restoreInitiated: false }, note: `volume ${volume.metadata.name}: the engine has no restore running; starting it again` };
    case 'completed':
      if (report.lastRestoredBackup !== undefined && report.lastRestoredBackup !== backupName && report.backupName !== backupName) {
        return { status: { ...status, restoreInitiated: false }, note: `volume ${volume.metadata.name}: the engine restored ${report.lastRestoredBackup}, not ${backupName}; asking again` };
      }
      return {
        status: withCondition({ ...status, restoreRequired: false, restoreInitiated: false }, { type: restoreConditionType, status: 'True', reason: 'Completed', message: `restored ${backupName}` }, nowText),
        ...(attachment === undefined ? {} : { attachment: withoutTicket(attachment, ticketId) }),
        note: `volume ${volume.metadata.name}: restore of ${backupName} completed; detaching`,
      };
    case 'error':
      return {
        status: withCondition({ ...status, restoreInitiated: false }, { type: restoreConditionType, status: 'False', reason: 'RestoreFailed', message: report.error ?? 'the engine reported an error' }, nowText),
        ...(attachment === undefined ? {} : { attachment: withoutTicket(attachment, ticketId) }),
        note: `volume ${volume.metadata.name}: restore of ${backupName} failed: ${report.error ?? '?'}`,
      };
    default: {
      const unknown: never = report.state;
      throw new Error(`unknown restore state ${String(unknown)}`);
    }
  }
}
