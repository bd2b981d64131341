// Run an async function over items with at most `limit` in flight. The first failure stops new
// work; the call waits for what is in flight and then throws that first failure.
import { assert } from '../lib/assert.ts';

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
