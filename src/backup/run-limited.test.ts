import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backupConcurrencyMax } from '../lib/limits.ts';
import { BackupError } from '../format/backup/backup-error.ts';
import { checkedConcurrency, runLimited } from './run-limited.ts';

test('checkedConcurrency() defaults to 8 and refuses values outside 1..max', () => {
  assert.equal(checkedConcurrency(undefined), 8);
  assert.equal(checkedConcurrency(backupConcurrencyMax), backupConcurrencyMax);
  for (const bad of [0, -1, 1.5, backupConcurrencyMax + 1, Number.NaN]) {
    assert.throws(() => checkedConcurrency(bad), (e: unknown) => e instanceof BackupError && e.code === 'invalid_argument', String(bad));
  }
});

test('runLimited() keeps at most the limit in flight and runs every item', async () => {
  let inflight = 0;
  let peak = 0;
  const seen: number[] = [];
  await runLimited([1, 2, 3, 4, 5, 6, 7], 3, async (item) => {
    inflight++;
    peak = Math.max(peak, inflight);
    await new Promise((r) => setImmediate(r));
    seen.push(item);
    inflight--;
  });
  assert.equal(peak, 3);
  assert.deepEqual(seen.sort(), [1, 2, 3, 4, 5, 6, 7]);
});
