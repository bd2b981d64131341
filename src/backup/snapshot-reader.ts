// The ports between the backup code and a volume: a SnapshotReader gives read access to one
// snapshot and says which blocks may have changed since an earlier snapshot (from the replica's
// extent maps); a VolumeWriter takes restored data. Both are implemented by the replica side
// later; testing/ has an in-memory volume with snapshots.
import type { BlockDevice } from '../lib/block-device.ts';

export interface BlockRange {
  readonly offsetBytes: number;
  readonly lengthBytes: number;
}

export interface SnapshotReader {
  /** The snapshot being read (recorded as the backup's SnapshotName). */
  readonly snapshotName: string;
  /** When the snapshot was taken, if known (recorded as SnapshotCreatedAt). */
  readonly createdAtMs?: number;
  sizeBytes(): number;
  /** Whether `snapshotName` still exists in this volume's chain below the snapshot being read. */
  hasSnapshot(snapshotName: string): Promise<boolean>;
  /**
   * Ranges, aligned to `blockSizeBytes` and sorted, that may hold data different from snapshot
   * `since`; with `since` undefined, every range that may hold any data (holes left out). Saying
   * too much costs reads; saying too little loses data.
   */
  changedRanges(since: string | undefined, blockSizeBytes: number): Promise<BlockRange[]>;
  read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array>;
}

/** Where a restore writes: the parts of a BlockDevice it needs. */
export type VolumeWriter = Pick<BlockDevice, 'sizeBytes' | 'write' | 'writeZeroes' | 'flush'>;

/** What every long operation reports, block by block. */
export interface BackupProgress {
  readonly operation: 'backup' | 'restore' | 'verify';
  readonly blocksDone: number;
  readonly blocksTotal: number;
  /** Bytes of volume data read (backup, verify) or written (restore). */
  readonly dataBytes: number;
  /** Bytes sent to (backup) or fetched from (restore, verify) the target. */
  readonly transferBytes: number;
  readonly elapsedMs: number;
  /** dataBytes per second so far. */
  readonly bytesPerSecond: number;
}

export type ProgressCallback = (progress: BackupProgress) => void;

export function progressReporter(operation: BackupProgress['operation'], blocksTotal: number, onProgress: ProgressCallback | undefined) {
  const start = performance.now();
  const state = { blocksDone: 0, dataBytes: 0, transferBytes: 0 };
  return {
    state,
    elapsedMs: (): number => performance.now() - start,
    block(dataBytes: number, transferBytes: number): void {
      state.blocksDone++;
      state.dataBytes += dataBytes;
      state.transferBytes += transferBytes;
      if (onProgress === undefined) return;
      const elapsedMs = performance.now() - start;
      onProgress({ operation, blocksTotal, ...state, elapsedMs, bytesPerSecond: elapsedMs > 0 ? (state.dataBytes * 1000) / elapsedMs : 0 });
    },
  };
}
