// The bodies of the engine's backup and restore requests, checked field by field: a hostile body
// gets a clear 400 naming the field, and unknown fields are refused (a typo must not silently
// turn an incremental backup into something else). Credentials are checked for shape only and
// never appear in an error message.
import { ShorthornError } from '../lib/errors.ts';
import { backupConcurrencyMax, backupLabelCountMax, backupLabelLengthMax, nameLengthMax, urlLengthMax } from '../lib/limits.ts';
import { isBackupError } from '../format/backup/backup-error.ts';
import { isValidBackupStoreName } from '../format/backup/backup-names.ts';
import { parseBackupTargetUrl } from '../format/backup/backup-target-url.ts';
import { compressionMethods, type CompressionMethod } from '../format/backup/compression-method.ts';

export class BackupRequestError extends ShorthornError<'bad_request'> {}

export interface BackupRequest {
  readonly backupName: string;
  readonly snapshotName: string;
  readonly targetURL: string;
  readonly credentials?: Readonly<Record<string, string>>;
  readonly compression?: CompressionMethod;
  readonly mode?: 'full' | 'incremental';
  readonly fullBackupInterval?: number;
  readonly concurrency?: number;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface RestoreRequest {
  readonly targetURL: string;
  readonly credentials?: Readonly<Record<string, string>>;
  readonly backupVolumeName: string;
  readonly backupName: string;
  /** The backup the volume holds already: only what differs from it is written (a DR volume). */
  readonly fromBackupName?: string;
  readonly concurrency?: number;
}

const snapshotNamePattern = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const credentialKeyPattern = /^[A-Z][A-Z0-9_]{0,63}$/;
const credentialCountMax = 32;
const credentialValueLengthMax = 8192;
/** The largest full-backup interval accepted (Longhorn's setting is a small count). */
const fullBackupIntervalMax = 1_000_000;

function bad(message: string): never {
  throw new BackupRequestError('bad_request', message);
}

function checkFields(body: Record<string, unknown>, known: readonly string[]): void {
  const unknown = Object.keys(body).filter((k) => !known.includes(k));
  if (unknown.length > 0) bad(`unknown field ${JSON.stringify(unknown[0]!.slice(0, 60))} (known: ${known.join(', ')})`);
}

function storeName(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  if (typeof value !== 'string' || !isValidBackupStoreName(value)) {
    bad(`${key} must be a letter or digit followed by letters, digits, '_', '.' or '-', at most 200 characters`);
  }
  return value;
}

function targetUrl(body: Record<string, unknown>): string {
  const value = body['targetURL'];
  if (typeof value !== 'string' || value.length === 0 || value.length > urlLengthMax) bad(`targetURL must be a string of 1 to ${urlLengthMax} characters`);
  try {
    parseBackupTargetUrl(value);
  } catch (error) {
    if (isBackupError(error)) bad(`targetURL: ${error.message}`);
    throw error;
  }
  return value;
}

function credentials(body: Record<string, unknown>): Record<string, string> | undefined {
  const value = body['credentials'];
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('credentials must be an object of strings');
  const entries = Object.entries(value);
  if (entries.length > credentialCountMax) bad(`credentials: at most ${credentialCountMax} entries`);
  for (const [key, v] of entries) {
    if (!credentialKeyPattern.test(key)) bad(`credentials: key ${JSON.stringify(key.slice(0, 64))} must be an upper-case environment name such as AWS_ACCESS_KEY_ID`);
    // The value is a secret: say what is wrong with it, never what it is.
    if (typeof v !== 'string' || v.length > credentialValueLengthMax) bad(`credentials: ${key} must be a string of at most ${credentialValueLengthMax} characters`);
  }
  return value as Record<string, string>;
}

function concurrency(body: Record<string, unknown>): number | undefined {
  return integer(body, 'concurrency', 1, backupConcurrencyMax);
}

function integer(body: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) bad(`${key} must be an integer from ${min} to ${max}`);
  return value;
}

function labels(body: Record<string, unknown>): Record<string, string> | undefined {
  const value = body['labels'];
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('labels must be an object of strings');
  const entries = Object.entries(value);
  if (entries.length > backupLabelCountMax) bad(`labels: at most ${backupLabelCountMax}`);
  for (const [key, v] of entries) {
    if (key.length === 0 || key.length > backupLabelLengthMax || typeof v !== 'string' || v.length > backupLabelLengthMax) {
      bad(`labels: ${JSON.stringify(key.slice(0, 60))} must be a non-empty key with a string value, each at most ${backupLabelLengthMax} characters`);
    }
  }
  return value as Record<string, string>;
}

function oneOf<T extends string>(body: Record<string, unknown>, key: string, allowed: readonly T[]): T | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  const found = allowed.find((a) => a === value);
  if (found === undefined) bad(`${key} must be one of ${allowed.join(', ')}`);
  return found;
}

/** Drop the keys whose value is undefined (exactOptionalPropertyTypes). */
function defined<T extends object>(value: { [K in keyof T]-?: T[K] | undefined }): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

export function parseBackupRequest(body: Record<string, unknown>): BackupRequest {
  checkFields(body, ['backupName', 'snapshotName', 'targetURL', 'credentials', 'compression', 'mode', 'fullBackupInterval', 'concurrency', 'labels']);
  const snapshotName = body['snapshotName'];
  if (typeof snapshotName !== 'string' || snapshotName.length > nameLengthMax || !snapshotNamePattern.test(snapshotName)) {
    bad(`snapshotName must be lowercase letters, digits, '-' and '.', at most ${nameLengthMax} characters`);
  }
  return defined<BackupRequest>({
    backupName: storeName(body, 'backupName'),
    snapshotName,
    targetURL: targetUrl(body),
    credentials: credentials(body),
    compression: oneOf(body, 'compression', compressionMethods),
    mode: oneOf(body, 'mode', ['full', 'incremental'] as const),
    fullBackupInterval: integer(body, 'fullBackupInterval', 0, fullBackupIntervalMax),
    concurrency: concurrency(body),
    labels: labels(body),
  });
}

export function parseRestoreRequest(body: Record<string, unknown>): RestoreRequest {
  checkFields(body, ['targetURL', 'credentials', 'backupVolumeName', 'backupName', 'fromBackupName', 'concurrency']);
  return defined<RestoreRequest>({
    targetURL: targetUrl(body),
    credentials: credentials(body),
    backupVolumeName: storeName(body, 'backupVolumeName'),
    backupName: storeName(body, 'backupName'),
    fromBackupName: body['fromBackupName'] === undefined ? undefined : storeName(body, 'fromBackupName'),
    concurrency: concurrency(body),
  });
}
