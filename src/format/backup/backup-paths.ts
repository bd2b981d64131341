// Where each object of a backup volume lives on a target, relative to the target's root:
//   backupstore/volumes/<h0-2>/<h2-4>/<volume>/volume.cfg           h = checksum of the volume name
//   .../backups/backup_<name>.cfg   .../blocks/<c0-2>/<c2-4>/<c>.blk   .../locks/<lock>.lck
import { checkBackupStoreName } from './backup-names.ts';
import { blockChecksum, isBlockChecksum, type Sha512 } from './block-checksum.ts';
import { BackupError, BackupErrorCode } from './backup-error.ts';

export const backupstoreBase = 'backupstore';
export const volumesDir = `${backupstoreBase}/volumes`;
const backupPrefix = 'backup_';
const configSuffix = '.cfg';
const blockSuffix = '.blk';
const lockSuffix = '.lck';

export class BackupVolumePaths {
  readonly volumeName: string;
  /** `backupstore/volumes/<h0-2>/<h2-4>/<volume>` (no trailing slash). */
  readonly dir: string;
  readonly volumeConfig: string;
  readonly backupsDir: string;
  readonly blocksDir: string;
  readonly locksDir: string;

  /** `nameChecksum` is blockChecksum(volumeName); use `backupVolumePaths()` to compute it. */
  constructor(volumeName: string, nameChecksum: string) {
    checkBackupStoreName(volumeName, 'volume name');
    if (!isBlockChecksum(nameChecksum)) throw new BackupError(BackupErrorCode.invalidArgument, `Invalid volume name checksum ${nameChecksum}`);
    this.volumeName = volumeName;
    this.dir = `${volumesDir}/${nameChecksum.slice(0, 2)}/${nameChecksum.slice(2, 4)}/${volumeName}`;
    this.volumeConfig = `${this.dir}/volume.cfg`;
    this.backupsDir = `${this.dir}/backups`;
    this.blocksDir = `${this.dir}/blocks`;
    this.locksDir = `${this.dir}/locks`;
  }

  backupConfig(backupName: string): string {
    checkBackupStoreName(backupName, 'backup name');
    return `${this.backupsDir}/${backupPrefix}${backupName}${configSuffix}`;
  }

  block(checksum: string): string {
    if (!isBlockChecksum(checksum)) throw new BackupError(BackupErrorCode.invalidArgument, `Invalid block checksum ${JSON.stringify(checksum.slice(0, 100))}`);
    return `${this.blocksDir}/${checksum.slice(0, 2)}/${checksum.slice(2, 4)}/${checksum}${blockSuffix}`;
  }

  lock(lockName: string): string {
    checkBackupStoreName(lockName, 'lock name');
    return `${this.locksDir}/${lockName}${lockSuffix}`;
  }

  /** The backup name of a key under backupsDir, or undefined for anything else. */
  backupNameOf(key: string): string | undefined {
    const file = childName(key, this.backupsDir);
    if (file === undefined || !file.startsWith(backupPrefix) || !file.endsWith(configSuffix)) return undefined;
    const name = file.slice(backupPrefix.length, -configSuffix.length);
    return name.length > 0 ? name : undefined;
  }

  /** The checksum of a key under blocksDir in its right <c0-2>/<c2-4> place, or undefined. */
  blockChecksumOf(key: string): string | undefined {
    if (!key.startsWith(`${this.blocksDir}/`) || !key.endsWith(blockSuffix)) return undefined;
    const parts = key.slice(this.blocksDir.length + 1, -blockSuffix.length).split('/');
    if (parts.length !== 3) return undefined;
    const [a, b, checksum] = parts as [string, string, string];
    if (!isBlockChecksum(checksum) || a !== checksum.slice(0, 2) || b !== checksum.slice(2, 4)) return undefined;
    return checksum;
  }

  /** The lock name of a key under locksDir, or undefined. */
  lockNameOf(key: string): string | undefined {
    const file = childName(key, this.locksDir);
    if (file === undefined || !file.endsWith(lockSuffix)) return undefined;
    return file.slice(0, -lockSuffix.length);
  }
}

function childName(key: string, dir: string): string | undefined {
  if (!key.startsWith(`${dir}/`)) return undefined;
  const rest = key.slice(dir.length + 1);
  return rest.length > 0 && !rest.includes('/') ? rest : undefined;
}

export async function backupVolumePaths(volumeName: string, sha512: Sha512): Promise<BackupVolumePaths> {
  checkBackupStoreName(volumeName, 'volume name');
  return new BackupVolumePaths(volumeName, await blockChecksum(new TextEncoder().encode(volumeName), sha512));
}

/** The volume name of a `volume.cfg` key found by listing `volumesDir`, or undefined. */
export function volumeNameOfConfigKey(key: string): string | undefined {
  const match = /^backupstore\/volumes\/[0-9a-f]{2}\/[0-9a-f]{2}\/([^/]+)\/volume\.cfg$/.exec(key);
  return match?.[1];
}
