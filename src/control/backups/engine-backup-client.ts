// The manager's client for the backup and restore routes of an engine's control API
// (src/engine/control-server.ts): start a backup of a snapshot, read its progress, start a restore
// into the engine's volume, read that. Answers are checked field by field: an engine of another
// version (or something else on the port) gives a typed error, never a half-read object.
import { ShorthornError } from '../../lib/errors.ts';
import { EngineControlClient, EngineControlError } from '../controllers/engine-control-client.ts';

export type EngineBackupErrorCode = 'unreachable' | 'not_found' | 'refused' | 'bad_response';
export class EngineBackupError extends ShorthornError<EngineBackupErrorCode> {}

export type CompressionMethod = 'lz4' | 'gzip' | 'none';

export interface EngineBackupRequest {
  readonly backupName: string;
  readonly snapshotName: string;
  /** A URL openBackupTarget accepts (vfs:///dir, s3://bucket@region/path, nfs://...). */
  readonly targetURL: string;
  /** AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINTS, ...; never logged. */
  readonly credentials?: Readonly<Record<string, string>>;
  readonly compression?: CompressionMethod;
  readonly mode?: 'full' | 'incremental';
  readonly concurrency?: number;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface EngineBackupReport {
  readonly backupName: string;
  readonly state: 'in_progress' | 'completed' | 'error';
  readonly progressPercent: number;
  readonly error?: string;
  readonly backupURL?: string;
  readonly dataBytes?: number;
  readonly newlyUploadedBytes?: number;
}

export interface EngineRestoreRequest {
  readonly targetURL: string;
  readonly credentials?: Readonly<Record<string, string>>;
  readonly backupVolumeName: string;
  readonly backupName: string;
  /** The backup the volume holds: the engine writes only what differs (a DR volume). */
  readonly fromBackupName?: string;
  readonly concurrency?: number;
}

export interface EngineRestoreReport {
  readonly state: 'idle' | 'in_progress' | 'completed' | 'error';
  readonly backupName?: string;
  readonly fromBackupName?: string;
  readonly progressPercent: number;
  readonly error?: string;
  readonly lastRestoredBackup?: string;
  /** Once completed: full or incremental, and the backup blocks written with data and zeroed. */
  readonly mode?: 'full' | 'incremental';
  readonly blocksFetched?: number;
  readonly blocksZeroed?: number;
}

/** How the manager talks to engines; the tests of the pure cores need none of this. */
export interface EngineBackupApi {
  startBackup(address: string, request: EngineBackupRequest): Promise<void>;
  /** undefined: the engine does not know the backup (it restarted, or never started it). */
  backupStatus(address: string, backupName: string): Promise<EngineBackupReport | undefined>;
  startRestore(address: string, request: EngineRestoreRequest): Promise<void>;
  restoreStatus(address: string): Promise<EngineRestoreReport>;
}

const requestTimeoutMs = 10_000;
const textMax = 4000;

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new EngineBackupError('bad_response', `${what}: not a JSON object`);
  return value as Record<string, unknown>;
}

function optionalText(body: Record<string, unknown>, key: string, what: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new EngineBackupError('bad_response', `${what}: ${key} is not a string`);
  return value.slice(0, textMax);
}

function optionalCount(body: Record<string, unknown>, key: string, what: string): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new EngineBackupError('bad_response', `${what}: ${key} is not a count`);
  return value;
}

function percent(body: Record<string, unknown>, what: string): number {
  const value = optionalCount(body, 'progressPercent', what) ?? 0;
  return Math.min(100, Math.floor(value));
}

function oneOf<T extends string>(body: Record<string, unknown>, key: string, allowed: readonly T[], what: string): T {
  const value = body[key];
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new EngineBackupError('bad_response', `${what}: ${key} ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
  }
  return value as T;
}

export function parseBackupReport(value: unknown, what = 'engine backup status'): EngineBackupReport {
  const body = record(value, what);
  const backupName = optionalText(body, 'backupName', what);
  if (backupName === undefined) throw new EngineBackupError('bad_response', `${what}: backupName is missing`);
  const error = optionalText(body, 'error', what);
  const backupURL = optionalText(body, 'backupURL', what);
  const dataBytes = optionalCount(body, 'dataBytes', what);
  const newlyUploadedBytes = optionalCount(body, 'newlyUploadedBytes', what);
  return {
    backupName,
    state: oneOf(body, 'state', ['in_progress', 'completed', 'error'] as const, what),
    progressPercent: percent(body, what),
    ...(error === undefined ? {} : { error }),
    ...(backupURL === undefined ? {} : { backupURL }),
    ...(dataBytes === undefined ? {} : { dataBytes }),
    ...(newlyUploadedBytes === undefined ? {} : { newlyUploadedBytes }),
  };
}

export function parseRestoreReport(value: unknown, what = 'engine restore status'): EngineRestoreReport {
  const body = record(value, what);
  const backupName = optionalText(body, 'backupName', what);
  const error = optionalText(body, 'error', what);
  const lastRestoredBackup = optionalText(body, 'lastRestoredBackup', what);
  const fromBackupName = optionalText(body, 'fromBackupName', what);
  const blocksFetched = optionalCount(body, 'blocksFetched', what);
  const blocksZeroed = optionalCount(body, 'blocksZeroed', what);
  return {
    state: oneOf(body, 'state', ['idle', 'in_progress', 'completed', 'error'] as const, what),
    progressPercent: percent(body, what),
    ...(backupName === undefined ? {} : { backupName }),
    ...(fromBackupName === undefined ? {} : { fromBackupName }),
    ...(body['mode'] === undefined ? {} : { mode: oneOf(body, 'mode', ['full', 'incremental'] as const, what) }),
    ...(blocksFetched === undefined ? {} : { blocksFetched }),
    ...(blocksZeroed === undefined ? {} : { blocksZeroed }),
    ...(error === undefined ? {} : { error }),
    ...(lastRestoredBackup === undefined ? {} : { lastRestoredBackup }),
  };
}

/** The shared control-API transport (bounded answer, JSON, typed errors), in this client's codes. */
async function call(address: string, method: string, path: string, body?: unknown): Promise<unknown> {
  try {
    return await new EngineControlClient(address).call(method, path, body, requestTimeoutMs);
  } catch (error) {
    if (!(error instanceof EngineControlError)) throw error;
    const code: EngineBackupErrorCode =
      error.status === 404 ? 'not_found' : error.code === 'unreachable' ? 'unreachable' : error.code === 'bad_answer' ? 'bad_response' : 'refused';
    throw new EngineBackupError(code, error.message, { cause: error });
  }
}

export const httpEngineBackupApi: EngineBackupApi = {
  async startBackup(address, request) {
    await call(address, 'POST', '/v1/backups', request);
  },
  async backupStatus(address, backupName) {
    try {
      return parseBackupReport(await call(address, 'GET', `/v1/backups/${encodeURIComponent(backupName)}`));
    } catch (error) {
      if (error instanceof EngineBackupError && error.code === 'not_found') return undefined;
      throw error;
    }
  },
  async startRestore(address, request) {
    await call(address, 'POST', '/v1/restore', request);
  },
  async restoreStatus(address) {
    return parseRestoreReport(await call(address, 'GET', '/v1/restore'));
  },
};
