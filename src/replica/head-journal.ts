// The head's extent journal: which ranges the writable head holds (data, or zeros from trim and
// write-zeroes), appended at flush time *after* the head's data was fdatasync'ed, so the journal
// never points at data that is not durable. Ranges of writes since the last flush wait in
// `pending` (bounded: a full pending list forces a flush).
import { journalPendingEntriesMax, journalRecordEntriesMax } from '../lib/limits.ts';
import { assert } from '../lib/assert.ts';
import type { ReplicaFile } from './replica-files.ts';
import { ReplicaError } from './replica-error.ts';
import {
  decodeJournalRecord,
  encodeJournalHeader,
  encodeJournalRecord,
  extentEntryBytes,
  fileHeaderBytes,
  journalRecordHeaderBytes,
  readHeader,
  type LayerRange,
} from './layer-codec.ts';

const replayChunkBytes = 1024 * 1024;
/** Garbage after the last valid record longer than one whole record cannot be a torn append. */
const tornTailMaxBytes = journalRecordHeaderBytes + journalRecordEntriesMax * extentEntryBytes;

export interface JournalReplay {
  /** Where the next record goes. */
  readonly endBytes: number;
  readonly nextSequence: number;
  readonly records: number;
  /** Bytes of a torn tail cut off (0 when the journal ended cleanly). */
  readonly tornBytes: number;
}

/** Offset in `tail` of a valid record with a sequence at least `sequence` (records are 16-byte aligned), or -1. */
function findLaterRecord(tail: Uint8Array, options: { sequence: number; volumeBlocks: number }): number {
  for (let at = extentEntryBytes; at + journalRecordHeaderBytes <= tail.length; at += extentEntryBytes) {
    const decoded = decodeJournalRecord(tail.subarray(at), { ...options, entriesMax: journalRecordEntriesMax, anyLaterSequence: true });
    if (decoded.kind === 'record') return at;
  }
  return -1;
}

export class HeadJournal {
  private readonly file: ReplicaFile;
  private endBytes: number;
  private sequence: number;
  private pending: LayerRange[] = [];
  records: number;

  constructor(file: ReplicaFile, replay: JournalReplay) {
    this.file = file;
    this.endBytes = replay.endBytes;
    this.sequence = replay.nextSequence;
    this.records = replay.records;
  }

  static async initialize(file: ReplicaFile, blockSizeBytes: number): Promise<void> {
    await file.write(encodeJournalHeader(blockSizeBytes), 0);
    await file.sync();
  }

  /** Write a fresh journal holding `ranges` (a compaction of a long one), durably. */
  static async writeCompacted(file: ReplicaFile, ranges: readonly LayerRange[], blockSizeBytes: number): Promise<void> {
    let at = 0;
    await file.write(encodeJournalHeader(blockSizeBytes), at);
    at += fileHeaderBytes;
    for (let i = 0, sequence = 1; i < ranges.length; i += journalRecordEntriesMax, sequence++) {
      const record = encodeJournalRecord(ranges.slice(i, i + journalRecordEntriesMax), sequence);
      await file.write(record, at);
      at += record.length;
    }
    await file.sync();
  }

  /** Bytes a compacted journal of `rangeCount` ranges takes. */
  static compactedBytes(rangeCount: number): number {
    return fileHeaderBytes + Math.ceil(rangeCount / journalRecordEntriesMax) * journalRecordHeaderBytes + rangeCount * extentEntryBytes;
  }

  /**
   * Read every record in order, handing each range to `apply`. A torn tail (a record cut short or
   * failing its checksum, with less than one record's bytes after it) is an append whose flush
   * never returned: it is cut off and the cut synced. Anything else invalid is corruption.
   */
  static async replay(
    file: ReplicaFile,
    options: { blockSizeBytes: number; volumeBlocks: number; what: string },
    apply: (range: LayerRange) => void,
  ): Promise<JournalReplay> {
    const sizeBytes = await file.sizeBytes();
    const header = new Uint8Array(fileHeaderBytes);
    if ((await file.read(header, 0)) < fileHeaderBytes) {
      throw new ReplicaError('corrupt', `${options.what}: shorter than its header`);
    }
    const [blockSize] = readHeader(header, 'journal', options.what);
    if (blockSize !== options.blockSizeBytes) {
      throw new ReplicaError('corrupt', `${options.what}: block size ${blockSize}, expected ${options.blockSizeBytes}`);
    }
    let offset = fileHeaderBytes;
    let sequence = 1;
    let records = 0;
    let buffer = new Uint8Array(0);
    let bufferAt = offset;
    for (;;) {
      const view = buffer.subarray(offset - bufferAt);
      const decoded = decodeJournalRecord(view, { sequence, entriesMax: journalRecordEntriesMax, volumeBlocks: options.volumeBlocks });
      if (decoded.kind === 'record') {
        for (const range of decoded.ranges) apply(range);
        offset += decoded.lengthBytes;
        sequence++;
        records++;
        continue;
      }
      if (decoded.kind === 'short' && offset + decoded.needBytes <= sizeBytes) {
        // Read more: at least what the record needs, at most a chunk beyond it.
        const want = Math.min(sizeBytes - offset, Math.max(decoded.needBytes, replayChunkBytes));
        buffer = new Uint8Array(want);
        bufferAt = offset;
        const got = await file.read(buffer, offset);
        if (got < want) buffer = buffer.subarray(0, got);
        if (got < decoded.needBytes) throw new ReplicaError('io', `${options.what}: short read at ${offset}`);
        continue;
      }
      const tornBytes = sizeBytes - offset;
      if (tornBytes === 0) return { endBytes: offset, nextSequence: sequence, records, tornBytes: 0 };
      const reason = decoded.kind === 'invalid' ? decoded.reason : 'record cut short';
      if (tornBytes > tornTailMaxBytes) {
        throw new ReplicaError('corrupt', `${options.what}: ${reason} at byte ${offset} with ${tornBytes} bytes after it`);
      }
      // A torn append is the last thing in the file: a valid later record after the bad one means
      // the damage is in the middle (bit rot, a bad sector), and flushed ranges would be lost.
      const tail = new Uint8Array(tornBytes);
      await file.read(tail, offset);
      const later = findLaterRecord(tail, { sequence: sequence + 1, volumeBlocks: options.volumeBlocks });
      if (later >= 0) {
        throw new ReplicaError('corrupt', `${options.what}: ${reason} at byte ${offset}, but a later record follows at byte ${offset + later}`);
      }
      await file.truncate(offset);
      await file.sync();
      return { endBytes: offset, nextSequence: sequence, records, tornBytes };
    }
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  /** Whether the pending list is full: the caller must flush before more writes pile up. */
  get mustFlush(): boolean {
    return this.pending.length >= journalPendingEntriesMax;
  }

  /** Note a range whose data write has completed (or a zero range). */
  push(range: LayerRange): void {
    const last = this.pending[this.pending.length - 1];
    // Sequential writes extend the last range instead of adding one.
    if (last?.kind === range.kind && last.startBlock + last.blockCount === range.startBlock && last.blockCount + range.blockCount <= 0xffff_ffff) {
      this.pending[this.pending.length - 1] = { ...last, blockCount: last.blockCount + range.blockCount };
      return;
    }
    this.pending.push(range);
  }

  takePending(): LayerRange[] {
    const taken = this.pending;
    this.pending = [];
    return taken;
  }

  /** Append `ranges` (already durable in the data file) and make them durable in the journal. */
  async append(ranges: readonly LayerRange[]): Promise<void> {
    if (ranges.length === 0) return;
    const records: Uint8Array[] = [];
    for (let i = 0; i < ranges.length; i += journalRecordEntriesMax) {
      records.push(encodeJournalRecord(ranges.slice(i, i + journalRecordEntriesMax), this.sequence + records.length));
    }
    assert(records.length === 1 || ranges.length > journalRecordEntriesMax, 'record split');
    const bytes = new Uint8Array(records.reduce((n, r) => n + r.length, 0));
    let at = 0;
    for (const record of records) {
      bytes.set(record, at);
      at += record.length;
    }
    await this.file.write(bytes, this.endBytes);
    await this.file.sync();
    this.endBytes += bytes.length;
    this.sequence += records.length;
    this.records += records.length;
  }

  get sizeBytes(): number {
    return this.endBytes;
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
