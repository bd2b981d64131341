// The one typed error of the backup store, from the codecs (format/backup) up to the targets and
// the backup, restore, delete and verify operations (backup/). Callers branch on `code`.
import { ShorthornError } from '../../lib/errors.ts';

export const BackupErrorCode = {
  /** A URL, name, key or option was refused before anything was touched. */
  invalidArgument: 'invalid_argument',
  /** An object the operation needs is not on the target. */
  notFound: 'not_found',
  /** An object is larger than the limit for its kind (checked before reading it whole). */
  tooLarge: 'too_large',
  /** A config, lock or block on the target does not decode (JSON, field, compression frame). */
  corrupt: 'corrupt',
  /** A block decoded, but its content does not hash to its name. */
  checksumMismatch: 'checksum_mismatch',
  /** Another client holds a conflicting lock on the backup volume. */
  locked: 'locked',
  /** The target failed (I/O error, network, S3 error status) or could not be reached. */
  io: 'io',
  /** The operation was cancelled by its caller. */
  aborted: 'aborted',
  /** A backup or restore refused a state it cannot work from (snapshot gone, sizes disagree). */
  conflict: 'conflict',
  /** The mount tool or the NFS client is missing on this host. */
  notSupported: 'not_supported',
} as const;
export type BackupErrorCode = (typeof BackupErrorCode)[keyof typeof BackupErrorCode];

export class BackupError extends ShorthornError<BackupErrorCode> {}

/** Whether `error` is a BackupError with `code` (for tests and for callers that branch). */
export function isBackupError(error: unknown, code?: BackupErrorCode): error is BackupError {
  return error instanceof BackupError && (code === undefined || error.code === code);
}
