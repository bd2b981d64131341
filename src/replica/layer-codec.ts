// Byte layouts of the replica's binary files: sealed-layer extent files, head extent journals and
// chunk-checksum files (docs/replica-format.md). Pure functions over bytes; every decoder checks
// magic, version, lengths (against limits, before allocating) and CRC-32 checksums, and answers
// with a typed ReplicaError, never with a guess.
import { crc32 } from 'node:zlib';
import { ReplicaError } from './replica-error.ts';

export const formatVersion = 1;
export const fileHeaderBytes = 32;
export const extentEntryBytes = 16;
export const journalRecordHeaderBytes = 16;
export const checksumEntryBytes = 40;
const journalRecordMagic = 0x4a_52_45_43; // "CERJ" little-endian

export type ExtentKind = 'data' | 'zero';

/** One range a layer holds itself: data in its file, or zeros it records (trim, write-zeroes). */
export interface LayerRange {
  readonly startBlock: number;
  readonly blockCount: number;
  readonly kind: ExtentKind;
}

export const fileMagic = {
  extents: 'SHRLEXT1',
  journal: 'SHRLJNL1',
  checksums: 'SHRLSUM1',
} as const;
export type FileKind = keyof typeof fileMagic;

function corrupt(what: string, message: string): ReplicaError {
  return new ReplicaError('corrupt', `${what}: ${message}`);
}

function writeHeader(view: DataView, kind: FileKind, fields: readonly number[]): void {
  const magic = fileMagic[kind];
  for (let i = 0; i < 8; i++) view.setUint8(i, magic.charCodeAt(i));
  view.setUint32(8, formatVersion, true);
  fields.forEach((value, i) => view.setUint32(12 + 4 * i, value, true));
  view.setUint32(28, crc32(new Uint8Array(view.buffer, view.byteOffset, 28)), true);
}

/** Check magic, version and header checksum; returns the four header fields after the version. */
export function readHeader(bytes: Uint8Array, kind: FileKind, what: string): number[] {
  if (bytes.length < fileHeaderBytes) throw corrupt(what, `${bytes.length} bytes is shorter than a header`);
  const magic = fileMagic[kind];
  for (let i = 0; i < 8; i++) {
    if (bytes[i] !== magic.charCodeAt(i)) throw corrupt(what, `not a ${kind} file (bad magic)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, fileHeaderBytes);
  const version = view.getUint32(8, true);
  if (version > formatVersion) {
    throw new ReplicaError('unsupported_version', `${what}: format version ${version} is newer than ${formatVersion}`);
  }
  if (view.getUint32(28, true) !== crc32(bytes.subarray(0, 28))) throw corrupt(what, 'header checksum mismatch');
  if (version !== formatVersion) throw corrupt(what, `unknown format version ${version}`);
  return [0, 1, 2, 3].map((i) => view.getUint32(12 + 4 * i, true));
}

function putEntry(view: DataView, at: number, range: LayerRange): void {
  view.setUint32(at, range.startBlock % 2 ** 32, true);
  view.setUint32(at + 4, Math.floor(range.startBlock / 2 ** 32), true);
  view.setUint32(at + 8, range.blockCount, true);
  view.setUint32(at + 12, range.kind === 'data' ? 1 : 2, true);
}

function getEntry(view: DataView, at: number, what: string): LayerRange {
  const startBlock = view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
  const blockCount = view.getUint32(at + 8, true);
  const code = view.getUint32(at + 12, true);
  if (code !== 1 && code !== 2) throw corrupt(what, `bad extent kind ${code} at byte ${at}`);
  if (blockCount === 0) throw corrupt(what, `empty extent at byte ${at}`);
  return { startBlock, blockCount, kind: code === 1 ? 'data' : 'zero' };
}

/** A sealed layer's extent file: header, then sorted disjoint ranges. */
export function encodeExtentFile(ranges: readonly LayerRange[], blockSizeBytes: number): Uint8Array {
  const bytes = new Uint8Array(fileHeaderBytes + ranges.length * extentEntryBytes);
  const view = new DataView(bytes.buffer);
  ranges.forEach((range, i) => putEntry(view, fileHeaderBytes + i * extentEntryBytes, range));
  const body = bytes.subarray(fileHeaderBytes);
  writeHeader(view, 'extents', [blockSizeBytes, ranges.length, crc32(body), 0]);
  return bytes;
}

export interface DecodeLimits {
  readonly blockSizeBytes: number;
  /** Blocks in the volume: no range may end past it. */
  readonly volumeBlocks: number;
  readonly entriesMax: number;
}

export function decodeExtentFile(bytes: Uint8Array, limits: DecodeLimits, what: string): LayerRange[] {
  const [blockSize, count, bodyCrc] = readHeader(bytes, 'extents', what) as [number, number, number];
  if (blockSize !== limits.blockSizeBytes) throw corrupt(what, `block size ${blockSize}, expected ${limits.blockSizeBytes}`);
  if (count > limits.entriesMax) throw corrupt(what, `${count} extents is more than ${limits.entriesMax}`);
  if (bytes.length !== fileHeaderBytes + count * extentEntryBytes) {
    throw corrupt(what, `${bytes.length} bytes does not hold ${count} extents`);
  }
  if (crc32(bytes.subarray(fileHeaderBytes)) !== bodyCrc) throw corrupt(what, 'extent checksum mismatch');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  return checkRanges(
    Array.from({ length: count }, (_, i) => getEntry(view, fileHeaderBytes + i * extentEntryBytes, what)),
    limits,
    what,
  );
}

/** Sealed ranges must be sorted, disjoint and inside the volume. */
function checkRanges(ranges: LayerRange[], limits: DecodeLimits, what: string): LayerRange[] {
  let end = 0;
  for (const r of ranges) {
    if (r.startBlock < end) throw corrupt(what, `extent at block ${r.startBlock} overlaps or is out of order`);
    end = r.startBlock + r.blockCount;
    if (end > limits.volumeBlocks) throw corrupt(what, `extent ends at block ${end}, past the volume (${limits.volumeBlocks})`);
  }
  return ranges;
}

export function encodeJournalHeader(blockSizeBytes: number): Uint8Array {
  const bytes = new Uint8Array(fileHeaderBytes);
  writeHeader(new DataView(bytes.buffer), 'journal', [blockSizeBytes, 0, 0, 0]);
  return bytes;
}

/** One journal record: ranges applied in order, sealed by a sequence number and a CRC. */
export function encodeJournalRecord(ranges: readonly LayerRange[], sequence: number): Uint8Array {
  const bytes = new Uint8Array(journalRecordHeaderBytes + ranges.length * extentEntryBytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, journalRecordMagic, true);
  view.setUint32(4, ranges.length, true);
  view.setUint32(8, sequence, true);
  ranges.forEach((range, i) => putEntry(view, journalRecordHeaderBytes + i * extentEntryBytes, range));
  view.setUint32(12, recordCrc(bytes), true);
  return bytes;
}

function recordCrc(record: Uint8Array): number {
  return crc32(record.subarray(journalRecordHeaderBytes), crc32(record.subarray(4, 12)));
}

export type JournalRecordDecode =
  | { readonly kind: 'record'; readonly ranges: LayerRange[]; readonly lengthBytes: number }
  /** Too few bytes for the record the header announces (or for a header). */
  | { readonly kind: 'short'; readonly needBytes: number }
  /** Not a valid record: bad magic, count, sequence, range or checksum. */
  | { readonly kind: 'invalid'; readonly reason: string };

/** Decode the record at the start of `bytes`, expecting `sequence`. */
export function decodeJournalRecord(
  bytes: Uint8Array,
  options: { sequence: number; entriesMax: number; volumeBlocks: number; anyLaterSequence?: boolean },
): JournalRecordDecode {
  if (bytes.length < journalRecordHeaderBytes) return { kind: 'short', needBytes: journalRecordHeaderBytes };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.getUint32(0, true) !== journalRecordMagic) return { kind: 'invalid', reason: 'bad record magic' };
  const count = view.getUint32(4, true);
  if (count === 0 || count > options.entriesMax) return { kind: 'invalid', reason: `bad entry count ${count}` };
  const lengthBytes = journalRecordHeaderBytes + count * extentEntryBytes;
  if (bytes.length < lengthBytes) return { kind: 'short', needBytes: lengthBytes };
  const record = bytes.subarray(0, lengthBytes);
  if (view.getUint32(12, true) !== recordCrc(record)) return { kind: 'invalid', reason: 'record checksum mismatch' };
  const sequence = view.getUint32(8, true);
  const sequenceOk = options.anyLaterSequence === true ? sequence >= options.sequence : sequence === options.sequence;
  if (!sequenceOk) return { kind: 'invalid', reason: `sequence ${sequence}, expected ${options.sequence}` };
  const ranges: LayerRange[] = [];
  for (let i = 0; i < count; i++) {
    let range: LayerRange;
    try {
      range = getEntry(view, journalRecordHeaderBytes + i * extentEntryBytes, 'journal record');
    } catch (error) {
      if (error instanceof ReplicaError) return { kind: 'invalid', reason: error.message };
      throw error;
    }
    if (range.startBlock + range.blockCount > options.volumeBlocks) {
      return { kind: 'invalid', reason: `range at block ${range.startBlock} runs past the volume` };
    }
    ranges.push(range);
  }
  return { kind: 'record', ranges, lengthBytes };
}

export interface ChunkDigest {
  readonly chunkIndex: number;
  /** 32 bytes of SHA-256. */
  readonly digest: Uint8Array;
}

/** `computedSeconds`: when the digests were computed (Unix seconds; 0 = unknown, as in older files). */
export function encodeChecksumFile(chunks: readonly ChunkDigest[], chunkSizeBytes: number, computedSeconds = 0): Uint8Array {
  const bytes = new Uint8Array(fileHeaderBytes + chunks.length * checksumEntryBytes);
  const view = new DataView(bytes.buffer);
  chunks.forEach((chunk, i) => {
    const at = fileHeaderBytes + i * checksumEntryBytes;
    view.setUint32(at, chunk.chunkIndex % 2 ** 32, true);
    view.setUint32(at + 4, Math.floor(chunk.chunkIndex / 2 ** 32), true);
    bytes.set(chunk.digest, at + 8);
  });
  writeHeader(view, 'checksums', [chunkSizeBytes, chunks.length, crc32(bytes.subarray(fileHeaderBytes)), computedSeconds]);
  return bytes;
}

/** When a checksum file's digests were computed (Unix seconds, 0 = unknown), from its header alone. */
export function checksumFileComputedSeconds(header: Uint8Array, what: string): number {
  return readHeader(header, 'checksums', what)[3]!;
}

export function decodeChecksumFile(bytes: Uint8Array, chunkSizeBytes: number, what: string): ChunkDigest[] {
  const [chunkSize, count, bodyCrc] = readHeader(bytes, 'checksums', what) as [number, number, number];
  if (chunkSize !== chunkSizeBytes) throw corrupt(what, `chunk size ${chunkSize}, expected ${chunkSizeBytes}`);
  if (bytes.length !== fileHeaderBytes + count * checksumEntryBytes) {
    throw corrupt(what, `${bytes.length} bytes does not hold ${count} chunk digests`);
  }
  if (crc32(bytes.subarray(fileHeaderBytes)) !== bodyCrc) throw corrupt(what, 'checksum file checksum mismatch');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const out: ChunkDigest[] = [];
  let previous = -1;
  for (let i = 0; i < count; i++) {
    const at = fileHeaderBytes + i * checksumEntryBytes;
    const chunkIndex = view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
    if (chunkIndex <= previous) throw corrupt(what, `chunk ${chunkIndex} out of order`);
    previous = chunkIndex;
    out.push({ chunkIndex, digest: bytes.slice(at + 8, at + 40) });
  }
  return out;
}

/** The parts of sorted `ranges` inside blocks [b0, b1). */
export function clipRanges(ranges: readonly LayerRange[], b0: number, b1: number): LayerRange[] {
  const out: LayerRange[] = [];
  for (const r of ranges) {
    const s = Math.max(r.startBlock, b0);
    const e = Math.min(r.startBlock + r.blockCount, b1);
    if (s < e) out.push({ startBlock: s, blockCount: e - s, kind: r.kind });
  }
  return out;
}
