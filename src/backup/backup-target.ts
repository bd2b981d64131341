// One interface for every place backups live (a directory, S3, an NFS mount). Keys are relative
// to the target's root, `/`-separated, and always checked (checkKey): a key can never name
// anything outside the target. Writes are atomic: a reader sees the old object or the new one.
import { backupKeyLengthMax } from '../lib/limits.ts';
import { BackupError, BackupErrorCode } from '../format/backup/backup-error.ts';

export interface BackupTargetEntry {
  readonly key: string;
  readonly sizeBytes: number;
  /** The target's modification time (S3 LastModified, file mtime): lock times come from here. */
  readonly modifiedMs: number;
}

export interface BackupTarget {
  /** The target URL, without credentials. */
  readonly url: string;
  /** Every object under `prefix/` (or every object for ""), recursively, in no given order. */
  list(prefix: string): AsyncIterable<BackupTargetEntry>;
  /** The whole object; not_found if absent, too_large (before reading it) if over `maxBytes`. */
  read(key: string, maxBytes: number): Promise<Uint8Array>;
  /** Size and time of an object, or undefined if absent. */
  stat(key: string): Promise<BackupTargetEntry | undefined>;
  exists(key: string): Promise<boolean>;
  /** Create or replace an object atomically. */
  write(key: string, data: Uint8Array): Promise<void>;
  /** Remove objects (absent ones are fine); batched where the target can. */
  delete(keys: readonly string[]): Promise<void>;
  /** Remove everything under `prefix/`; returns how many objects were removed. */
  deletePrefix(prefix: string): Promise<number>;
  close(): Promise<void>;
}

/** Throws invalid_argument unless `key` is a safe relative key (`allowEmpty` for the root prefix). */
export function checkKey(key: string, options: { allowEmpty?: boolean } = {}): string {
  const refuse = (problem: string): never => {
    throw new BackupError(BackupErrorCode.invalidArgument, `Refused backup target key ${JSON.stringify(key.slice(0, 200))}: ${problem}`);
  };
  if (key === '') return options.allowEmpty === true ? key : refuse('empty');
  if (key.length > backupKeyLengthMax) refuse(`longer than ${backupKeyLengthMax} characters`);
  if (key.startsWith('/')) refuse('absolute');
  for (const segment of key.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') refuse(`it has a "${segment}" segment`);
    if (segment.startsWith('.')) refuse('a segment starts with "." (reserved for temporary files)');
    if (/[\0\\]/.test(segment)) refuse('it contains NUL or a backslash');
  }
  return key;
}
