// Verify a backup without restoring it: fetch, decompress and re-hash every block of its map and
// report exactly which are missing or corrupt (Longhorn never re-reads a block once uploaded).
import { BackupError, BackupErrorCode } from '../format/backup/backup-error.ts';
import { isInProgress, type BlockMapping } from '../format/backup/backup-config.ts';
import { checkBackupStoreName } from '../format/backup/backup-names.ts';
import type { BackupStore } from './backup-store.ts';
import { checkBlockList, fetchVerifiedBlock } from './restore-backup.ts';
import { checkedConcurrency, runLimited } from './run-limited.ts';
import { progressReporter, type ProgressCallback } from './snapshot-reader.ts';

export interface BlockProblem extends BlockMapping {
  readonly reason: string;
}

export interface VerifyReport {
  readonly volumeName: string;
  readonly backupName: string;
  readonly ok: boolean;
  readonly blocksChecked: number;
  readonly missing: readonly BlockProblem[];
  readonly corrupt: readonly BlockProblem[];
  /** Whether the block list matches Shorthorn's checksum of it; undefined when there is none. */
  readonly blockListOk: boolean | undefined;
  readonly bytesFetched: number;
  readonly elapsedMs: number;
}

export async function verifyBackup(
  store: BackupStore,
  options: { volumeName: string; backupName: string; concurrency?: number; onProgress?: ProgressCallback },
): Promise<VerifyReport> {
  checkBackupStoreName(options.volumeName, 'volume name');
  checkBackupStoreName(options.backupName, 'backup name');
  const concurrency = checkedConcurrency(options.concurrency);
  const paths = await store.paths(options.volumeName);
  await store.loadVolumeConfig(paths);
  const backup = await store.loadBackup(paths, options.backupName);
  if (isInProgress(backup)) throw new BackupError(BackupErrorCode.conflict, `Backup ${backup.name} is not complete; there is nothing to verify`);
  const blockListOk = await checkBlockList(store, backup);
  const missing: BlockProblem[] = [];
  const corrupt: BlockProblem[] = [];
  // Blocks shared by several offsets are fetched once; every offset using a bad block is reported.
  const byChecksum = new Map<string, BlockMapping[]>();
  for (const block of backup.blocks) {
    const list = byChecksum.get(block.checksum);
    if (list === undefined) byChecksum.set(block.checksum, [block]);
    else list.push(block);
  }
  const progress = progressReporter('verify', byChecksum.size, options.onProgress);
  await runLimited(byChecksum.values(), concurrency, async (uses) => {
    const first = uses[0]!;
    try {
      const { data, objectBytes } = await fetchVerifiedBlock(store, paths, { backup, block: first });
      progress.block(data.length, objectBytes);
    } catch (error) {
      if (!(error instanceof BackupError)) throw error;
      const into = error.code === BackupErrorCode.notFound ? missing : error.code === BackupErrorCode.corrupt || error.code === BackupErrorCode.checksumMismatch ? corrupt : undefined;
      // Anything else (the target failing) means we could not verify: that is an error, not a finding.
      if (into === undefined) throw error;
      for (const use of uses) into.push({ ...use, reason: error.message });
      progress.block(0, 0);
    }
  });
  const byOffset = (a: BlockMapping, b: BlockMapping): number => a.offsetBytes - b.offsetBytes;
  missing.sort(byOffset);
  corrupt.sort(byOffset);
  return {
    volumeName: options.volumeName, backupName: options.backupName, ok: missing.length === 0 && corrupt.length === 0 && blockListOk !== false,
    blocksChecked: byChecksum.size, missing, corrupt, blockListOk, bytesFetched: progress.state.transferBytes, elapsedMs: progress.elapsedMs(),
  };
}
