// The compression of block objects, fixed per backup volume by its first backup.
import { BackupError, BackupErrorCode } from './backup-error.ts';

export const compressionMethods = ['none', 'gzip', 'lz4'] as const;
export type CompressionMethod = (typeof compressionMethods)[number];

/** Longhorn reads an empty method as gzip (configs from before the field existed). */
export function parseCompressionMethod(value: string, what: string): CompressionMethod {
  if (value === '') return 'gzip';
  const found = compressionMethods.find((m) => m === value);
  if (found === undefined) {
    throw new BackupError(BackupErrorCode.corrupt, `${what}: unknown compression method ${JSON.stringify(value.slice(0, 50))} (known: ${compressionMethods.join(', ')})`);
  }
  return found;
}
