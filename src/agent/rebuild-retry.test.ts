import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rebuildRetryDelayMs } from './rebuild-retry.ts';

test('a rebuild is asked for again after 3 s, then 6, 12, 24, and at most 30 s', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 50].map(rebuildRetryDelayMs), [3000, 3000, 6000, 12_000, 24_000, 30_000, 30_000]);
});
