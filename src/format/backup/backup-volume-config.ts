// volume.cfg: one per backup volume (Go struct `Volume` of longhorn/backupstore). Size and
// BlockCount are int64 strings; the five string fields tagged `,string` are double encoded.
import { backupVolumeConfigSizeMaxBytes } from '../../lib/limits.ts';
import { checkBackupStoreName, isValidBackupStoreName } from './backup-names.ts';
import { parseCompressionMethod, type CompressionMethod } from './compression-method.ts';
import { fieldError, parseConfigObject, readInt64, readString, readStringMap, readTaggedString, taggedString } from './go-json.ts';

export interface BackupVolumeConfig {
  readonly name: string;
  readonly sizeBytes: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly createdTime: string;
  /** The newest complete backup ("" when none); the next backup is incremental against it. */
  readonly lastBackupName: string;
  readonly lastBackupAt: string;
  readonly blockCount: number;
  readonly backingImageName: string;
  readonly backingImageChecksum: string;
  readonly compressionMethod: CompressionMethod;
  readonly storageClassName: string;
  readonly dataEngine: string;
}

export function decodeBackupVolumeConfig(bytes: Uint8Array, what = 'volume.cfg'): BackupVolumeConfig {
  const o = parseConfigObject(bytes, what, backupVolumeConfigSizeMaxBytes);
  const name = readString(o, 'Name', what);
  if (!isValidBackupStoreName(name)) throw fieldError(what, 'Name', `is not a valid volume name: ${JSON.stringify(name.slice(0, 100))}`);
  const lastBackupName = readString(o, 'LastBackupName', what);
  if (lastBackupName !== '' && !isValidBackupStoreName(lastBackupName)) {
    throw fieldError(what, 'LastBackupName', `is not a valid backup name: ${JSON.stringify(lastBackupName.slice(0, 100))}`);
  }
  const dataEngine = readTaggedString(o, 'DataEngine', what);
  return {
    name,
    sizeBytes: readInt64(o, 'Size', what),
    labels: readStringMap(o, 'Labels', what),
    createdTime: readString(o, 'CreatedTime', what),
    lastBackupName,
    lastBackupAt: readString(o, 'LastBackupAt', what),
    blockCount: readInt64(o, 'BlockCount', what),
    backingImageName: readTaggedString(o, 'BackingImageName', what),
    backingImageChecksum: readTaggedString(o, 'BackingImageChecksum', what),
    compressionMethod: parseCompressionMethod(readTaggedString(o, 'CompressionMethod', what), `${what} CompressionMethod`),
    storageClassName: readTaggedString(o, 'StorageClassName', what),
    dataEngine: dataEngine === '' ? 'v1' : dataEngine,
  };
}

/** volume.cfg as Go's json.Marshal writes it: struct field order, `,string` fields encoded. */
export function encodeBackupVolumeConfig(config: BackupVolumeConfig): Uint8Array {
  checkBackupStoreName(config.name, 'volume name');
  const json = {
    Name: config.name,
    Size: String(config.sizeBytes),
    Labels: config.labels,
    CreatedTime: config.createdTime,
    LastBackupName: config.lastBackupName,
    LastBackupAt: config.lastBackupAt,
    BlockCount: String(config.blockCount),
    BackingImageName: taggedString(config.backingImageName),
    BackingImageChecksum: taggedString(config.backingImageChecksum),
    CompressionMethod: taggedString(config.compressionMethod),
    StorageClassName: taggedString(config.storageClassName),
    DataEngine: taggedString(config.dataEngine),
  };
  return new TextEncoder().encode(JSON.stringify(json));
}
