// What the manager and the API need from a backup target, as plain data: src/control may not
// import src/backup (tools/tidy.ts), so src/bin/backup-store-adapter.ts implements this port
// with the backup library and the composition root hands it in. Tests of the pure cores use
// plain values of these types.

/** One backup as found in the target. */
export interface BackupEntry {
  readonly name: string;
  readonly state: 'complete' | 'in_progress' | 'unreadable';
  /** Why it could not be read (unreadable only). */
  readonly error?: string;
  readonly snapshotName?: string;
  readonly snapshotCreatedAt?: string;
  readonly createdAt?: string;
  readonly sizeBytes?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly compressionMethod?: 'none' | 'lz4' | 'gzip';
  readonly newlyUploadedBytes?: number;
  readonly reUploadedBytes?: number;
  readonly volumeSizeBytes?: number;
  readonly url: string;
}

/** One backup volume (volume.cfg) and its backups. */
export interface BackupVolumeEntry {
  readonly name: string;
  /** volume.cfg could not be read: the backups are still listed when possible. */
  readonly error?: string;
  readonly sizeBytes?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly createdAt?: string;
  readonly lastBackupName?: string;
  readonly lastBackupAt?: string;
  readonly dataStoredBytes?: number;
  readonly backingImageName?: string;
  readonly backups: readonly BackupEntry[];
}

export interface VerifyFinding {
  readonly offsetBytes: number;
  readonly checksum: string;
  readonly reason: string;
}

export interface VerifyResult {
  readonly volumeName: string;
  readonly backupName: string;
  readonly ok: boolean;
  readonly blocksChecked: number;
  readonly missing: readonly VerifyFinding[];
  readonly corrupt: readonly VerifyFinding[];
  readonly blockListOk: boolean | undefined;
  readonly bytesFetched: number;
  readonly elapsedMs: number;
}

/** Typed failures of the port: the caller branches on these codes. */
export type BackupStorePortErrorCode = 'not_found' | 'invalid' | 'conflict' | 'unavailable';

export interface BackupStoreSession {
  readonly url: string;
  listVolumeNames(): Promise<string[]>;
  readVolume(name: string): Promise<BackupVolumeEntry>;
  /** Deletes the backup and collects unreferenced blocks; not_found when it is not there. */
  deleteBackup(volumeName: string, backupName: string): Promise<{ blocksDeleted: number; skipped?: string }>;
  deleteBackupVolume(volumeName: string): Promise<void>;
  verifyBackup(volumeName: string, backupName: string): Promise<VerifyResult>;
  close(): Promise<void>;
}

/** Open a target by URL with credentials (AWS_* keys); errors carry a BackupStorePortErrorCode. */
export type OpenBackupStore = (url: string, credentials: Readonly<Record<string, string>>) => Promise<BackupStoreSession>;

/** The error code of a port failure, or undefined when it is something else (a bug). */
export function portErrorCode(error: unknown): BackupStorePortErrorCode | undefined {
  const code = error instanceof Error ? (error as { portCode?: unknown }).portCode : undefined;
  return code === 'not_found' || code === 'invalid' || code === 'conflict' || code === 'unavailable' ? code : undefined;
}

export class BackupStorePortError extends Error {
  readonly portCode: BackupStorePortErrorCode;
  constructor(code: BackupStorePortErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.portCode = code;
    this.name = 'BackupStorePortError';
  }
}
