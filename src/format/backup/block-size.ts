// The `backup-block-size` parameter of a backup: a Kubernetes quantity ("2Mi", "16Mi", "2097152").
import { backupBlockSizeDefaultBytes, backupBlockSizeMaxBytes, blockSizeBytes } from '../../lib/limits.ts';
import { BackupError, BackupErrorCode } from './backup-error.ts';

export const blockSizeParameter = 'backup-block-size';
export const backupModeParameter = 'backup-mode';

const suffixes: Readonly<Record<string, number>> = {
  '': 1, k: 1e3, M: 1e6, G: 1e9, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3,
};

/** Bytes of a quantity; empty or zero means the default, as in Longhorn. */
export function parseBlockSize(value: string | undefined, what: string): number {
  if (value === undefined || value === '') return backupBlockSizeDefaultBytes;
  const match = /^([0-9]{1,12})(|k|M|G|Ki|Mi|Gi)$/.exec(value);
  const bytes = match === null ? Number.NaN : Number(match[1]) * suffixes[match[2]!]!;
  if (bytes === 0) return backupBlockSizeDefaultBytes;
  if (!Number.isSafeInteger(bytes) || bytes % blockSizeBytes !== 0 || bytes > backupBlockSizeMaxBytes) {
    throw new BackupError(
      BackupErrorCode.corrupt,
      `${what}: block size ${JSON.stringify(value.slice(0, 50))} must be a quantity of whole ${blockSizeBytes}-byte blocks up to ${backupBlockSizeMaxBytes} bytes`,
    );
  }
  return bytes;
}

/** The quantity Longhorn writes for a block size ("2Mi"). */
export function formatBlockSize(bytes: number): string {
  return bytes % 1024 ** 2 === 0 ? `${bytes / 1024 ** 2}Mi` : bytes % 1024 === 0 ? `${bytes / 1024}Ki` : String(bytes);
}
