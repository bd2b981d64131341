// Lock files of a backup volume (locks/lock-<16 hex>.lck) and Longhorn's rule for who may go
// ahead. A lock's time is the target's modification time of its file (S3 LastModified, file
// mtime), never the writer's clock. Backups and restores take type 1, deletions type 2; locks of
// the same type never block each other.
import { backupLockSizeMaxBytes } from '../../lib/limits.ts';
import { isValidBackupStoreName } from './backup-names.ts';
import { fieldError, goField, parseConfigObject, readBool, readString } from './go-json.ts';

export const LockType = { backupOrRestore: 1, deletion: 2 } as const;
export type LockType = (typeof LockType)[keyof typeof LockType];

/** Longhorn's timings: a lock not refreshed for 150 s is expired; holders refresh every 60 s; a
 *  new lock waits 2 s before it looks at the others (clock skew, 1 s mtime resolution). */
export const lockDurationMs = 150_000;
export const lockRefreshIntervalMs = 60_000;
export const lockSettleMs = 2_000;

export interface LockFile {
  readonly name: string;
  /** 1 or 2 for Longhorn's types; other numbers are kept so a foreign lock still ranks. */
  readonly type: number;
  readonly acquired: boolean;
}

export interface ServerLock extends LockFile {
  readonly serverTimeMs: number;
}

export function encodeLockFile(lock: LockFile): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ Name: lock.name, Type: lock.type, Acquired: lock.acquired }));
}

export function decodeLockFile(bytes: Uint8Array, what = 'lock file'): LockFile {
  const o = parseConfigObject(bytes, what, backupLockSizeMaxBytes);
  const name = readString(o, 'Name', what);
  if (!isValidBackupStoreName(name)) throw fieldError(what, 'Name', 'is not a valid lock name');
  const type = goField(o, 'Type');
  if (typeof type !== 'number' || !Number.isInteger(type)) throw fieldError(what, 'Type', 'must be an integer');
  return { name, type, acquired: readBool(o, 'Acquired', what) };
}

/** Longhorn's order: acquired locks first, then the older server time, then the name. */
export function compareLocks(a: ServerLock, b: ServerLock): number {
  if (a.acquired !== b.acquired) return a.acquired ? -1 : 1;
  if (a.serverTimeMs !== b.serverTimeMs) return a.serverTimeMs < b.serverTimeMs ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function isLockExpired(lock: ServerLock, nowMs: number): boolean {
  return nowMs - lock.serverTimeMs > lockDurationMs;
}

/** The lock that stops `own` from being acquired, or undefined if it may go ahead. */
export function blockingLock(own: ServerLock, others: readonly ServerLock[], nowMs: number): ServerLock | undefined {
  return others.find((other) => other.name !== own.name && other.type !== own.type && compareLocks(other, own) < 0 && !isLockExpired(other, nowMs));
}
