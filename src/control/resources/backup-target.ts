// BackupTarget: a backup store (reference §1.11). Longhorn 1.7 has one, `default`, driven by the
// backup-target settings; the kind allows several so per-volume targets can come later.
import { Type, type Static } from '@sinclair/typebox';
import { urlLengthMax } from '../../lib/limits.ts';
import { backupTargetURLProblem } from '../settings/backup-target-url.ts';
import { Conditions, OwnerID, StrictObject, Timestamp } from './common-schemas.ts';
import type { Resource } from './object-meta.ts';
import type { ResourceProblem } from './resource-problem.ts';

export const BackupTargetSpecSchema = StrictObject({
  backupTargetURL: Type.String({ maxLength: urlLengthMax, description: 's3://bucket@region/path, nfs://server:/path, a directory, or empty.' }),
  credentialSecret: Type.String({ maxLength: 253, default: '', description: 'Secret with the credentials and endpoint.' }),
  pollInterval: Type.Integer({ minimum: 0, maximum: 7 * 24 * 3600, default: 300, unit: 'seconds', description: 'Seconds between listings; 0: never.' }),
  syncRequestedAt: Type.Optional(Timestamp({ description: 'Bump to list the target now.' })),
});
export type BackupTargetSpec = Static<typeof BackupTargetSpecSchema>;

export const BackupTargetStatusSchema = StrictObject({
  ownerID: OwnerID(),
  available: Type.Optional(Type.Boolean()),
  conditions: Type.Optional(Conditions()),
  lastSyncedAt: Type.Optional(Timestamp()),
});
export type BackupTargetStatus = Static<typeof BackupTargetStatusSchema>;

export type BackupTarget = Resource<BackupTargetSpec, BackupTargetStatus>;

export function backupTargetProblems(target: BackupTarget): ResourceProblem[] {
  const problem = backupTargetURLProblem(target.spec.backupTargetURL);
  return problem === null ? [] : [{ path: 'spec.backupTargetURL', reason: problem }];
}
