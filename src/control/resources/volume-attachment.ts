// VolumeAttachment: the attach requests ("tickets") for one volume; same name as the volume. The
// attachment controller picks the highest-priority ticket and sets volume.spec.nodeID
// (reference §1.3, §2.2).
import { Type, type Static } from '@sinclair/typebox';
import { Conditions, NameMap, NameRef, OwnerID, StrictObject, StringEnum } from './common-schemas.ts';
import type { Resource } from './object-meta.ts';
import type { ResourceProblem } from './resource-problem.ts';

export const attacherTypes = [
  'volume-restore-controller',
  'volume-expansion-controller',
  'shorthorn-api',
  'csi-attacher',
  'salvage-controller',
  'share-manager-controller',
  'snapshot-controller',
  'backup-controller',
  'volume-clone-controller',
  'volume-eviction-controller',
  'bim-ds-controller',
  'volume-rebuilding-controller',
] as const;
export type AttacherType = (typeof attacherTypes)[number];

/** Higher wins when the controller chooses which ticket to honour (Longhorn's priorities). */
export const attacherPriority: Readonly<Record<AttacherType, number>> = {
  'volume-restore-controller': 2000,
  'volume-expansion-controller': 2000,
  'shorthorn-api': 1000,
  'csi-attacher': 900,
  'salvage-controller': 900,
  'share-manager-controller': 900,
  'snapshot-controller': 800,
  'backup-controller': 800,
  'volume-clone-controller': 800,
  'volume-eviction-controller': 800,
  'bim-ds-controller': 800,
  'volume-rebuilding-controller': 800,
};

/** Ticket ids: `<attacherType>-<name>`, `csi-<sha256>`, or what an API caller chose. */
const ticketIdPattern = '^[A-Za-z0-9]([-A-Za-z0-9_.]{0,251}[A-Za-z0-9])?$';
const ticketsMax = 64;

export const AttachmentTicketSchema = StrictObject({
  id: Type.String({ minLength: 1, maxLength: 253, pattern: ticketIdPattern }),
  type: StringEnum(attacherTypes),
  nodeID: NameRef({ description: 'Node the requester wants the volume attached to.' }),
  parameters: Type.Optional(
    StrictObject({
      disableFrontend: Type.Optional(Type.Boolean({ description: 'Attach without exposing the device (maintenance).' })),
      lastAttachedBy: Type.Optional(Type.String({ maxLength: 253 })),
    }),
  ),
  generation: Type.Optional(Type.Integer({ minimum: 0, description: 'Bumped on every change to the ticket.' })),
});
export type AttachmentTicket = Static<typeof AttachmentTicketSchema>;

export const VolumeAttachmentSpecSchema = StrictObject({
  volume: NameRef({ description: 'The volume these tickets are for.' }),
  attachmentTickets: NameMap(AttachmentTicketSchema, {
    keyPattern: ticketIdPattern,
    maxProperties: ticketsMax,
    description: 'Tickets by id.',
  }),
});
export type VolumeAttachmentSpec = Static<typeof VolumeAttachmentSpecSchema>;

export const AttachmentTicketStatusSchema = StrictObject({
  id: Type.String({ minLength: 1, maxLength: 253, pattern: ticketIdPattern }),
  satisfied: Type.Boolean({ description: 'The volume is attached on the ticket\'s node with its parameters.' }),
  conditions: Type.Optional(Conditions()),
  generation: Type.Optional(Type.Integer({ minimum: 0, description: 'The ticket generation this status is about.' })),
});

export const VolumeAttachmentStatusSchema = StrictObject({
  ownerID: OwnerID(),
  attachmentTicketStatuses: Type.Optional(
    NameMap(AttachmentTicketStatusSchema, { keyPattern: ticketIdPattern, maxProperties: ticketsMax }),
  ),
});
export type VolumeAttachmentStatus = Static<typeof VolumeAttachmentStatusSchema>;

export type VolumeAttachment = Resource<VolumeAttachmentSpec, VolumeAttachmentStatus>;

export function volumeAttachmentProblems(attachment: VolumeAttachment): ResourceProblem[] {
  const problems: ResourceProblem[] = [];
  if (attachment.spec.volume !== attachment.metadata.name) {
    problems.push({ path: 'spec.volume', reason: `must equal metadata.name ${JSON.stringify(attachment.metadata.name)}` });
  }
  for (const [key, ticket] of Object.entries(attachment.spec.attachmentTickets)) {
    if (ticket.id !== key) problems.push({ path: `spec.attachmentTickets.${key}.id`, reason: `must equal its key ${JSON.stringify(key)}` });
  }
  return problems;
}
