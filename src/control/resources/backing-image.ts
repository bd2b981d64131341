// BackingImage: a base image (raw or qcow2) that replicas are layered on, kept in copies on
// several disks (reference §1.13, §10.3).
import { Type, type Static } from '@sinclair/typebox';
import { diskCountMax, replicaCountMax, urlLengthMax } from '../../lib/limits.ts';
import { Bytes, NameMap, OwnerID, StrictObject, StringEnum, Tags, Text, Timestamp } from './common-schemas.ts';
import type { Resource } from './object-meta.ts';

export const backingImageSourceTypes = ['download', 'upload', 'export-from-volume', 'restore', 'clone'] as const;
export type BackingImageSourceType = (typeof backingImageSourceTypes)[number];
export const backingImageFileStates = [
  'pending',
  'starting',
  'ready-for-transfer',
  'ready',
  'in-progress',
  'failed',
  'failed-and-cleanup',
  'unknown',
] as const;
export type BackingImageFileState = (typeof backingImageFileStates)[number];

/** Disk UUIDs key the copy maps. */
const diskUUIDPattern = '^[A-Za-z0-9]([-A-Za-z0-9]{0,62}[A-Za-z0-9])?$';
/** Copies are tracked per disk across the cluster: allow many nodes' worth of disks. */
const copiesMax = 16 * diskCountMax;

export const BackingImageSpecSchema = StrictObject({
  sourceType: StringEnum(backingImageSourceTypes),
  sourceParameters: Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: urlLengthMax }), {
    maxProperties: 16,
    default: {},
    description: 'url (download), volume-name and export-type (export-from-volume), backup-url (restore), backing-image (clone).',
  }),
  checksum: Type.Optional(Type.String({ pattern: '^[0-9a-f]{128}$', description: 'Expected SHA-512 of the image file.' })),
  diskFileSpecMap: NameMap(StrictObject({ evictionRequested: Type.Boolean({ default: false }) }), {
    keyPattern: diskUUIDPattern,
    maxProperties: copiesMax,
    description: 'Disks (by UUID) that should hold a copy.',
  }),
  minNumberOfCopies: Type.Integer({ minimum: 1, maximum: replicaCountMax, default: 3 }),
  nodeSelector: Tags('Node tags a copy\'s node must have; volumes using the image inherit it.'),
  diskSelector: Tags('Disk tags a copy\'s disk must have; volumes using the image inherit it.'),
});
export type BackingImageSpec = Static<typeof BackingImageSpecSchema>;

export const BackingImageStatusSchema = StrictObject({
  ownerID: OwnerID(),
  uuid: Type.Optional(Type.String({ maxLength: 64 })),
  size: Type.Optional(Bytes()),
  virtualSize: Type.Optional(Bytes()),
  checksum: Type.Optional(Type.String({ maxLength: 128 })),
  diskFileStatusMap: Type.Optional(
    NameMap(
      StrictObject({
        state: StringEnum(backingImageFileStates),
        progress: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
        message: Type.Optional(Text()),
        lastStateTransitionTime: Type.Optional(Timestamp()),
      }),
      { keyPattern: diskUUIDPattern, maxProperties: copiesMax },
    ),
  ),
  diskLastRefAtMap: Type.Optional(NameMap(Timestamp(), { keyPattern: diskUUIDPattern, maxProperties: copiesMax })),
});
export type BackingImageStatus = Static<typeof BackingImageStatusSchema>;

export type BackingImage = Resource<BackingImageSpec, BackingImageStatus>;
