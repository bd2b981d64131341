// Names in the backup store: volume, backup and lock names follow Longhorn's rule (a letter or
// digit, then letters, digits, `_`, `.`, `-`), which also keeps them safe as path segments.
import { backupNameLengthMax } from '../../lib/limits.ts';
import { BackupError, BackupErrorCode } from './backup-error.ts';

const namePattern = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function isValidBackupStoreName(name: string): boolean {
  return name.length <= backupNameLengthMax && namePattern.test(name);
}

/** Throws invalid_argument naming `what` unless `name` is a valid backup store name. */
export function checkBackupStoreName(name: string, what: string): string {
  if (!isValidBackupStoreName(name)) {
    throw new BackupError(
      BackupErrorCode.invalidArgument,
      `Invalid ${what} ${JSON.stringify(name.slice(0, 300))}: it must match ${namePattern.source} and be at most ${backupNameLengthMax} characters`,
    );
  }
  return name;
}

/** `<prefix>-<16 hex>`, Longhorn's generated backup and lock names, from 8 random bytes. */
export function generatedName(prefix: 'backup' | 'lock', randomBytes: Uint8Array): string {
  if (randomBytes.length < 8) throw new BackupError(BackupErrorCode.invalidArgument, 'a generated name needs 8 random bytes');
  let hex = '';
  for (const byte of randomBytes.subarray(0, 8)) hex += byte.toString(16).padStart(2, '0');
  return `${prefix}-${hex}`;
}
