// The replica's metadata file (`replica.meta`): volume, membership, the snapshot tree, which files
// hold each layer, and an in-progress purge step. One file, replaced atomically, so every chain
// change commits with one rename. A binary envelope (magic, version, length, CRC-32) around JSON;
// decoding validates every field and the tree's shape (docs/replica-format.md).
import { crc32 } from 'node:zlib';
import { blockSizeBytes as blockSize, labelCountMax, labelLengthMax, metadataSizeMaxBytes, nameLengthMax, replicaCountMax, snapshotCountMax, volumeSizeMaxBytes } from '../lib/limits.ts';
import type { SnapshotKind } from './replica-store.ts';
import { ReplicaError } from './replica-error.ts';
import { formatVersion } from './layer-codec.ts';

export const metaMagic = 'SHRMETA1';
export const metaHeaderBytes = 24;

export interface SnapshotRecord {
  readonly name: string;
  readonly parent: string | null;
  readonly createdMs: number;
  readonly kind: SnapshotKind;
  readonly labels: Readonly<Record<string, string>>;
  readonly removed: boolean;
  /** The layer's sparse data file (a name in the replica directory). */
  readonly dataFile: string;
  /** The layer's extent file. */
  readonly extentFile: string;
  /** Blocks of data the layer holds itself. */
  readonly dataBlocks: number;
}

export interface HeadRecord {
  readonly dataFile: string;
  readonly journalFile: string;
  readonly parent: string | null;
}

/** A purge step whose intent is durable: reopening completes it (roll forward). */
export interface PendingCoalesce {
  readonly op: 'coalesce';
  readonly parent: string;
  readonly child: string;
  /** Which file receives the other's data; the receiving file becomes the merged layer's. */
  readonly direction: 'child-into-parent' | 'parent-into-child';
  /** The merged layer's extent file, already written and synced. */
  readonly extentFile: string;
  readonly dataBlocks: number;
}

export interface ReplicaMeta {
  readonly volumeName: string;
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  readonly createdMs: number;
  readonly epoch: number;
  readonly generation: number;
  readonly members: readonly string[];
  /** Next number for a layer file name; never reused. */
  readonly nextFileId: number;
  readonly head: HeadRecord;
  /** Oldest first (creation order). */
  readonly snapshots: readonly SnapshotRecord[];
  readonly pending: PendingCoalesce | null;
}

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const fileNamePattern = /^layer-[0-9]{1,15}\.(data|extents|journal)$/;

/** Names of volumes and snapshots: 1–63 of [A-Za-z0-9._-], starting alphanumeric (safe as file names). */
export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= nameLengthMax && namePattern.test(name);
}

/** A volume size we accept: whole blocks, positive, at most volumeSizeMaxBytes. */
export function checkVolumeSize(sizeBytes: number): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % blockSize !== 0 || sizeBytes > volumeSizeMaxBytes) {
    throw new ReplicaError('invalid_argument', `Volume size ${sizeBytes} is not a positive multiple of ${blockSize} up to ${volumeSizeMaxBytes}`);
  }
}

export function checkLabels(labels: unknown, what: string): Record<string, string> {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    throw new ReplicaError('invalid_argument', `${what}: labels must be an object`);
  }
  const entries = Object.entries(labels as Record<string, unknown>);
  if (entries.length > labelCountMax) throw new ReplicaError('invalid_argument', `${what}: ${entries.length} labels, at most ${labelCountMax}`);
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (typeof value !== 'string' || key.length === 0 || key.length > labelLengthMax || value.length > labelLengthMax) {
      throw new ReplicaError('invalid_argument', `${what}: label ${JSON.stringify(key).slice(0, 80)} is not a string of at most ${labelLengthMax} characters`);
    }
    out[key] = value;
  }
  return out;
}

export function encodeMeta(meta: ReplicaMeta): Uint8Array {
  const body = new TextEncoder().encode(JSON.stringify(meta));
  if (body.length > metadataSizeMaxBytes - metaHeaderBytes) {
    throw new ReplicaError('invalid_argument', `metadata of ${body.length} bytes exceeds ${metadataSizeMaxBytes}`);
  }
  const bytes = new Uint8Array(metaHeaderBytes + body.length);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 8; i++) bytes[i] = metaMagic.charCodeAt(i);
  view.setUint32(8, formatVersion, true);
  view.setUint32(12, body.length, true);
  view.setUint32(16, crc32(body), true);
  view.setUint32(20, crc32(bytes.subarray(0, 20)), true);
  bytes.set(body, metaHeaderBytes);
  return bytes;
}

export function decodeMeta(bytes: Uint8Array, what: string): ReplicaMeta {
  const bad = (message: string): ReplicaError => new ReplicaError('corrupt', `${what}: ${message}`);
  if (bytes.length < metaHeaderBytes) throw bad(`${bytes.length} bytes is shorter than the header`);
  for (let i = 0; i < 8; i++) if (bytes[i] !== metaMagic.charCodeAt(i)) throw bad('not a replica metadata file (bad magic)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const version = view.getUint32(8, true);
  if (version > formatVersion) {
    throw new ReplicaError('unsupported_version', `${what}: format version ${version} is newer than ${formatVersion}; upgrade Shorthorn`);
  }
  if (view.getUint32(20, true) !== crc32(bytes.subarray(0, 20))) throw bad('header checksum mismatch');
  if (version !== formatVersion) throw bad(`unknown format version ${version}`);
  const length = view.getUint32(12, true);
  if (bytes.length !== metaHeaderBytes + length) throw bad(`${bytes.length} bytes, header says ${metaHeaderBytes + length}`);
  const body = bytes.subarray(metaHeaderBytes);
  if (crc32(body) !== view.getUint32(16, true)) throw bad('body checksum mismatch');
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (error) {
    throw new ReplicaError('corrupt', `${what}: body is not JSON`, { cause: error });
  }
  return validateMeta(parsed, bad);
}

type Bad = (message: string) => ReplicaError;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function int(value: unknown, field: string, bad: Bad, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) throw bad(`${field} is not an integer in [0, ${max}]`);
  return value;
}

function str(value: unknown, field: string, bad: Bad): string {
  if (typeof value !== 'string') throw bad(`${field} is not a string`);
  return value;
}

function fileName(value: unknown, field: string, bad: Bad): string {
  const name = str(value, field, bad);
  if (!fileNamePattern.test(name)) throw bad(`${field} ${JSON.stringify(name).slice(0, 80)} is not a layer file name`);
  return name;
}

function nameOrNull(value: unknown, field: string, bad: Bad): string | null {
  if (value === null) return null;
  const name = str(value, field, bad);
  if (!isValidName(name)) throw bad(`${field} is not a valid name`);
  return name;
}

function validateMeta(raw: unknown, bad: Bad): ReplicaMeta {
  if (!isRecord(raw)) throw bad('body is not an object');
  const volumeName = str(raw['volumeName'], 'volumeName', bad);
  if (!isValidName(volumeName)) throw bad('volumeName is not a valid name');
  const blockSizeBytes = int(raw['blockSizeBytes'], 'blockSizeBytes', bad);
  if (blockSizeBytes !== blockSize) throw bad(`block size ${blockSizeBytes} is not ${blockSize}`);
  const sizeBytes = int(raw['sizeBytes'], 'sizeBytes', bad, volumeSizeMaxBytes);
  if (sizeBytes % blockSizeBytes !== 0) throw bad(`size ${sizeBytes} is not whole blocks`);
  const members = raw['members'];
  if (!Array.isArray(members) || members.length > replicaCountMax * 4) throw bad('members is not a short list');
  const head = raw['head'];
  if (!isRecord(head)) throw bad('head is not an object');
  const snapshotsRaw = raw['snapshots'];
  if (!Array.isArray(snapshotsRaw) || snapshotsRaw.length > snapshotCountMax) throw bad(`snapshots is not a list of at most ${snapshotCountMax}`);
  const snapshots = snapshotsRaw.map((s: unknown, i): SnapshotRecord => {
    const field = `snapshots[${i}]`;
    if (!isRecord(s)) throw bad(`${field} is not an object`);
    const kind = s['kind'];
    if (kind !== 'user' && kind !== 'system') throw bad(`${field}.kind is not user or system`);
    if (typeof s['removed'] !== 'boolean') throw bad(`${field}.removed is not a boolean`);
    const name = nameOrNull(s['name'], `${field}.name`, bad);
    if (name === null) throw bad(`${field}.name is null`);
    let labels: Record<string, string>;
    try {
      labels = checkLabels(s['labels'], field);
    } catch (error) {
      throw new ReplicaError('corrupt', bad(`${field}.labels are invalid`).message, { cause: error });
    }
    return {
      name,
      parent: nameOrNull(s['parent'], `${field}.parent`, bad),
      createdMs: int(s['createdMs'], `${field}.createdMs`, bad),
      kind,
      labels,
      removed: s['removed'],
      dataFile: fileName(s['dataFile'], `${field}.dataFile`, bad),
      extentFile: fileName(s['extentFile'], `${field}.extentFile`, bad),
      dataBlocks: int(s['dataBlocks'], `${field}.dataBlocks`, bad),
    };
  });
  const meta: ReplicaMeta = {
    volumeName,
    sizeBytes,
    blockSizeBytes,
    createdMs: int(raw['createdMs'], 'createdMs', bad),
    epoch: int(raw['epoch'], 'epoch', bad),
    generation: int(raw['generation'], 'generation', bad),
    members: members.map((m: unknown, i) => str(m, `members[${i}]`, bad)),
    nextFileId: int(raw['nextFileId'], 'nextFileId', bad),
    head: {
      dataFile: fileName(head['dataFile'], 'head.dataFile', bad),
      journalFile: fileName(head['journalFile'], 'head.journalFile', bad),
      parent: nameOrNull(head['parent'], 'head.parent', bad),
    },
    snapshots,
    pending: validatePending(raw['pending'], bad),
  };
  checkTree(meta, bad);
  return meta;
}

function validatePending(raw: unknown, bad: Bad): PendingCoalesce | null {
  if (raw === null) return null;
  if (!isRecord(raw) || raw['op'] !== 'coalesce') throw bad('pending is not null or a coalesce step');
  const direction = raw['direction'];
  if (direction !== 'child-into-parent' && direction !== 'parent-into-child') throw bad('pending.direction is invalid');
  const parent = nameOrNull(raw['parent'], 'pending.parent', bad);
  const child = nameOrNull(raw['child'], 'pending.child', bad);
  if (parent === null || child === null) throw bad('pending names a null snapshot');
  return {
    op: 'coalesce',
    parent,
    child,
    direction,
    extentFile: fileName(raw['extentFile'], 'pending.extentFile', bad),
    dataBlocks: int(raw['dataBlocks'], 'pending.dataBlocks', bad),
  };
}

/** Unique names and files, parents that exist and come earlier, a head parent that exists. */
function checkTree(meta: ReplicaMeta, bad: Bad): void {
  const seen = new Set<string>();
  const files = new Set<string>([meta.head.dataFile, meta.head.journalFile]);
  const addFile = (file: string): void => {
    if (files.has(file)) throw bad(`file ${file} is used twice`);
    files.add(file);
  };
  if (files.size !== 2) throw bad('head files are the same file');
  for (const s of meta.snapshots) {
    if (seen.has(s.name)) throw bad(`snapshot ${s.name} appears twice`);
    if (s.parent !== null && !seen.has(s.parent)) throw bad(`snapshot ${s.name} has an unknown or later parent ${s.parent}`);
    seen.add(s.name);
    addFile(s.dataFile);
    addFile(s.extentFile);
  }
  if (meta.head.parent !== null && !seen.has(meta.head.parent)) throw bad(`head parent ${meta.head.parent} is not a snapshot`);
  const pending = meta.pending;
  if (pending !== null) {
    const child = meta.snapshots.find((s) => s.name === pending.child);
    if (!seen.has(pending.parent) || child?.parent !== pending.parent) throw bad('pending coalesce does not match the tree');
    addFile(pending.extentFile);
  }
  for (const file of files) {
    const id = Number(/^layer-([0-9]+)\./.exec(file)?.[1]);
    if (!(id < meta.nextFileId)) throw bad(`file ${file} is not below nextFileId ${meta.nextFileId}`);
  }
}
