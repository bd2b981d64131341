// backups/backup_<name>.cfg (Go struct `Backup` of longhorn/backupstore). `Blocks` is the whole
// block map of the volume at the snapshot: one entry per block-sized slot with data, sorted by
// offset; a slot that is absent reads as zeros. `CreatedTime` "" marks a backup in progress.
// Shorthorn adds one key that Go ignores: `ShorthornBlocksChecksum`, the checksum of the block
// list (see blockListBytes), so `verify` can tell a damaged list from a damaged block.
import { backupConfigSizeMaxBytes } from '../../lib/limits.ts';
import { checkBackupStoreName, isValidBackupStoreName } from './backup-names.ts';
import { isBlockChecksum } from './block-checksum.ts';
import { blockSizeParameter, parseBlockSize } from './block-size.ts';
import { parseCompressionMethod, type CompressionMethod } from './compression-method.ts';
import { fieldError, goField, parseConfigObject, readBool, readInt64, readString, readStringMap, type JsonObject } from './go-json.ts';

export interface BlockMapping {
  readonly offsetBytes: number;
  readonly checksum: string;
}

export interface BackupConfig {
  readonly name: string;
  readonly volumeName: string;
  readonly snapshotName: string;
  readonly snapshotCreatedAt: string;
  /** "" while the backup is in progress (or was abandoned by a failed one). */
  readonly createdTime: string;
  readonly sizeBytes: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly parameters: Readonly<Record<string, string>>;
  readonly isIncremental: boolean;
  readonly compressionMethod: CompressionMethod;
  readonly newlyUploadedDataSize: number;
  readonly reUploadedDataSize: number;
  readonly blocks: readonly BlockMapping[];
  /** Block size from Parameters["backup-block-size"] (2 MiB when absent). */
  readonly blockSizeBytes: number;
  /** Shorthorn's checksum of the block list, when a Shorthorn wrote it. */
  readonly blocksChecksum?: string;
}

export const blocksChecksumKey = 'ShorthornBlocksChecksum';

export function isInProgress(config: Pick<BackupConfig, 'createdTime'>): boolean {
  return config.createdTime === '';
}

function readBlocks(o: JsonObject, what: string, blockSize: number): BlockMapping[] {
  const value = goField(o, 'Blocks');
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw fieldError(what, 'Blocks', 'must be an array');
  const blocks: BlockMapping[] = [];
  let sorted = true;
  for (let i = 0; i < value.length; i++) {
    const entry: unknown = value[i];
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw fieldError(what, `Blocks[${i}]`, 'must be an object');
    const e = entry as JsonObject;
    const offsetBytes = readInt64(e, 'Offset', `${what} Blocks[${i}]`);
    const checksum = readString(e, 'BlockChecksum', `${what} Blocks[${i}]`);
    if (offsetBytes % blockSize !== 0) throw fieldError(what, `Blocks[${i}].Offset`, `${offsetBytes} is not a multiple of the block size ${blockSize}`);
    if (!isBlockChecksum(checksum)) throw fieldError(what, `Blocks[${i}].BlockChecksum`, `is not 64 lowercase hex digits: ${JSON.stringify(checksum.slice(0, 80))}`);
    const previous = blocks[blocks.length - 1];
    if (previous !== undefined && previous.offsetBytes >= offsetBytes) sorted = false;
    blocks.push({ offsetBytes, checksum });
  }
  if (!sorted) {
    blocks.sort((a, b) => a.offsetBytes - b.offsetBytes);
    for (let i = 1; i < blocks.length; i++) {
      if (blocks[i]!.offsetBytes === blocks[i - 1]!.offsetBytes) throw fieldError(what, 'Blocks', `maps offset ${blocks[i]!.offsetBytes} twice`);
    }
  }
  return blocks;
}

export function decodeBackupConfig(bytes: Uint8Array, what = 'backup config'): BackupConfig {
  const o = parseConfigObject(bytes, what, backupConfigSizeMaxBytes);
  const name = readString(o, 'Name', what);
  if (!isValidBackupStoreName(name)) throw fieldError(what, 'Name', `is not a valid backup name: ${JSON.stringify(name.slice(0, 100))}`);
  const volumeName = readString(o, 'VolumeName', what);
  if (!isValidBackupStoreName(volumeName)) throw fieldError(what, 'VolumeName', `is not a valid volume name: ${JSON.stringify(volumeName.slice(0, 100))}`);
  const parameters = readStringMap(o, 'Parameters', what);
  const blockSizeBytes = parseBlockSize(parameters[blockSizeParameter], `${what} Parameters`);
  const blocksChecksum = goField(o, blocksChecksumKey);
  if (blocksChecksum !== undefined && (typeof blocksChecksum !== 'string' || !isBlockChecksum(blocksChecksum))) {
    throw fieldError(what, blocksChecksumKey, 'must be 64 lowercase hex digits');
  }
  return {
    name,
    volumeName,
    snapshotName: readString(o, 'SnapshotName', what),
    snapshotCreatedAt: readString(o, 'SnapshotCreatedAt', what),
    createdTime: readString(o, 'CreatedTime', what),
    sizeBytes: readInt64(o, 'Size', what),
    labels: readStringMap(o, 'Labels', what),
    parameters,
    isIncremental: readBool(o, 'IsIncremental', what),
    compressionMethod: parseCompressionMethod(readString(o, 'CompressionMethod', what), `${what} CompressionMethod`),
    newlyUploadedDataSize: readInt64(o, 'NewlyUploadedDataSize', what),
    reUploadedDataSize: readInt64(o, 'ReUploadedDataSize', what),
    blocks: readBlocks(o, what, blockSizeBytes),
    blockSizeBytes,
    ...(typeof blocksChecksum === 'string' ? { blocksChecksum } : {}),
  };
}

/** backup_<name>.cfg as Go writes it (struct field order; Blocks left out when empty). */
export function encodeBackupConfig(config: BackupConfig): Uint8Array {
  checkBackupStoreName(config.name, 'backup name');
  checkBackupStoreName(config.volumeName, 'volume name');
  const json: Record<string, unknown> = {
    Name: config.name,
    VolumeName: config.volumeName,
    SnapshotName: config.snapshotName,
    SnapshotCreatedAt: config.snapshotCreatedAt,
    CreatedTime: config.createdTime,
    Size: String(config.sizeBytes),
    Labels: config.labels,
    Parameters: config.parameters,
    IsIncremental: config.isIncremental,
    CompressionMethod: config.compressionMethod,
    NewlyUploadedDataSize: String(config.newlyUploadedDataSize),
    ReUploadedDataSize: String(config.reUploadedDataSize),
    ProcessingBlocks: null,
  };
  if (config.blocks.length > 0) json['Blocks'] = config.blocks.map((b) => ({ Offset: b.offsetBytes, BlockChecksum: b.checksum }));
  json['SingleFile'] = { FilePath: '' };
  if (config.blocksChecksum !== undefined) json[blocksChecksumKey] = config.blocksChecksum;
  return new TextEncoder().encode(JSON.stringify(json));
}

/** The bytes whose checksum is ShorthornBlocksChecksum: one "<offset> <checksum>\n" per block. */
export function blockListBytes(blocks: readonly BlockMapping[]): Uint8Array {
  return new TextEncoder().encode(blocks.map((b) => `${b.offsetBytes} ${b.checksum}\n`).join(''));
}
