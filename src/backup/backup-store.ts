// A backup target seen as Longhorn's backup store: volumes, their volume.cfg, backups and blocks.
// Every read is bounded by its kind's limit and every decode names what it read.
import { webcrypto, randomBytes } from 'node:crypto';
import type { Clock } from '../lib/clock.ts';
import { backupConfigSizeMaxBytes, backupVolumeConfigSizeMaxBytes } from '../lib/limits.ts';
import { BackupError, BackupErrorCode } from '../format/backup/backup-error.ts';
import { decodeBackupConfig, encodeBackupConfig, isInProgress, type BackupConfig } from '../format/backup/backup-config.ts';
import { backupVolumePaths, volumeNameOfConfigKey, volumesDir, type BackupVolumePaths } from '../format/backup/backup-paths.ts';
import { decodeBackupVolumeConfig, encodeBackupVolumeConfig, type BackupVolumeConfig } from '../format/backup/backup-volume-config.ts';
import type { Sha512 } from '../format/backup/block-checksum.ts';
import type { BackupTarget, BackupTargetEntry } from './backup-target.ts';

/** SHA-512 through Web Crypto: it runs on libuv's thread pool, so blocks hash in parallel. */
export const webSha512: Sha512 = async (data) => new Uint8Array(await webcrypto.subtle.digest('SHA-512', data));

export const systemClock: Clock = { nowMs: () => Date.now(), monotonicMs: () => performance.now() };

export interface BackupStoreOptions {
  readonly sha512?: Sha512;
  readonly clock?: Clock;
  readonly randomBytes?: (n: number) => Uint8Array;
}

export type BackupListing =
  | { readonly name: string; readonly state: 'complete' | 'in_progress'; readonly config: BackupConfig; readonly modifiedMs: number }
  | { readonly name: string; readonly state: 'unreadable'; readonly error: BackupError; readonly modifiedMs: number };

export class BackupStore {
  readonly target: BackupTarget;
  readonly sha512: Sha512;
  readonly clock: Clock;
  readonly randomBytes: (n: number) => Uint8Array;

  constructor(target: BackupTarget, options: BackupStoreOptions = {}) {
    this.target = target;
    this.sha512 = options.sha512 ?? webSha512;
    this.clock = options.clock ?? systemClock;
    this.randomBytes = options.randomBytes ?? ((n) => new Uint8Array(randomBytes(n)));
  }

  paths(volumeName: string): Promise<BackupVolumePaths> {
    return backupVolumePaths(volumeName, this.sha512);
  }

  /** The backup URL Longhorn uses: `<target>?backup=<name>&volume=<volume>`. */
  backupUrl(volumeName: string, backupName: string): string {
    return `${this.target.url}?${new URLSearchParams({ backup: backupName, volume: volumeName }).toString()}`;
  }

  async listVolumes(): Promise<string[]> {
    const names: string[] = [];
    for await (const entry of this.target.list(volumesDir)) {
      const name = volumeNameOfConfigKey(entry.key);
      if (name !== undefined) names.push(name);
    }
    return names.sort();
  }

  async loadVolumeConfig(paths: BackupVolumePaths): Promise<BackupVolumeConfig> {
    const bytes = await this.readConfig(paths.volumeConfig, backupVolumeConfigSizeMaxBytes, `volume.cfg of backup volume ${paths.volumeName}`);
    const config = decodeBackupVolumeConfig(bytes, `${paths.volumeConfig}`);
    if (config.name !== paths.volumeName) {
      throw new BackupError(BackupErrorCode.corrupt, `${paths.volumeConfig}: names volume ${config.name}, expected ${paths.volumeName}`);
    }
    return config;
  }

  async saveVolumeConfig(paths: BackupVolumePaths, config: BackupVolumeConfig): Promise<void> {
    await this.target.write(paths.volumeConfig, encodeBackupVolumeConfig(config));
  }

  async loadBackup(paths: BackupVolumePaths, backupName: string): Promise<BackupConfig> {
    const key = paths.backupConfig(backupName);
    const config = decodeBackupConfig(await this.readConfig(key, backupConfigSizeMaxBytes, `backup ${backupName} of volume ${paths.volumeName}`), key);
    if (config.name !== backupName || config.volumeName !== paths.volumeName) {
      throw new BackupError(BackupErrorCode.corrupt, `${key}: names backup ${config.name} of volume ${config.volumeName}`);
    }
    return config;
  }

  async saveBackup(paths: BackupVolumePaths, config: BackupConfig): Promise<void> {
    await this.target.write(paths.backupConfig(config.name), encodeBackupConfig(config));
  }

  /** Names and times of backup configs, without reading them. */
  async backupEntries(paths: BackupVolumePaths): Promise<Map<string, BackupTargetEntry>> {
    const out = new Map<string, BackupTargetEntry>();
    for await (const entry of this.target.list(paths.backupsDir)) {
      const name = paths.backupNameOf(entry.key);
      if (name !== undefined) out.set(name, entry);
    }
    return out;
  }

  /** Every backup of a volume with its state; an unreadable config is listed as such, not thrown. */
  async listBackups(paths: BackupVolumePaths): Promise<BackupListing[]> {
    const out: BackupListing[] = [];
    for (const [name, entry] of [...(await this.backupEntries(paths))].sort(([a], [b]) => (a < b ? -1 : 1))) {
      try {
        const config = await this.loadBackup(paths, name);
        out.push({ name, state: isInProgress(config) ? 'in_progress' : 'complete', config, modifiedMs: entry.modifiedMs });
      } catch (error) {
        if (!(error instanceof BackupError) || (error.code !== BackupErrorCode.corrupt && error.code !== BackupErrorCode.tooLarge && error.code !== BackupErrorCode.notFound)) throw error;
        out.push({ name, state: 'unreadable', error, modifiedMs: entry.modifiedMs });
      }
    }
    return out;
  }

  /** Every block object of a volume, by checksum, from one listing (no request per block). */
  async listBlocks(paths: BackupVolumePaths): Promise<Map<string, BackupTargetEntry>> {
    const out = new Map<string, BackupTargetEntry>();
    for await (const entry of this.target.list(paths.blocksDir)) {
      const checksum = paths.blockChecksumOf(entry.key);
      if (checksum !== undefined) out.set(checksum, entry);
    }
    return out;
  }

  private async readConfig(key: string, maxBytes: number, what: string): Promise<Uint8Array> {
    try {
      return await this.target.read(key, maxBytes);
    } catch (error) {
      if (error instanceof BackupError && error.code === BackupErrorCode.notFound) {
        throw new BackupError(BackupErrorCode.notFound, `${what}: ${key} is not on ${this.target.url}`, { cause: error });
      }
      throw error;
    }
  }
}
