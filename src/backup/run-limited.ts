// Run an async function over items with at most `limit` in flight. The first failure stops new
// work; the call waits for what is in flight and then throws that first failure.
import { assert } from '../lib/assert.ts';
import { backupConcurrencyMax } from '../lib/limits.ts';
import { BackupError, BackupErrorCode } from '../format/backup/backup-error.ts';

/** A caller's concurrency option (default 8), refused with a typed error outside 1..max. */
export function checkedConcurrency(value: number | undefined): number {
  const concurrency = value ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > backupConcurrencyMax) {
    throw new BackupError(BackupErrorCode.invalidArgument, `concurrency ${concurrency} must be 1..${backupConcurrencyMax}`);
  }
  return concurrency;
}

export async function runLimited<T>(items: Iterable<T>, limit: number, work: (item: T) => Promise<void>): Promise<void> {
  assert(Number.isInteger(limit) && limit >= 1, `concurrency limit ${limit} must be a positive integer`);
  const iterator = items[Symbol.iterator]();
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined) {
      const next = iterator.next();
      if (next.done === true) return;
      try {
        await work(next.value);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  if (failure !== undefined) throw failure.error;
}
