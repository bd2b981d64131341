import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffBlockMaps, mergeBlockMap, unmappedRanges } from './block-map.ts';

const c = (n: number): string => n.toString(16).padStart(64, '0');
const m = (offsetBytes: number, n: number): { offsetBytes: number; checksum: string } => ({ offsetBytes, checksum: c(n) });

test('merge: changes win, zero changes remove, the rest is kept', () => {
  const last = [m(0, 1), m(2, 2), m(4, 3), m(8, 4)];
  const merged = mergeBlockMap(last, [
    { offsetBytes: 2, checksum: c(9) },
    { offsetBytes: 4, checksum: undefined },
    { offsetBytes: 6, checksum: c(7) },
    { offsetBytes: 10, checksum: c(5) },
    { offsetBytes: 12, checksum: undefined },
  ]);
  assert.deepEqual(merged, [m(0, 1), m(2, 9), m(6, 7), m(8, 4), m(10, 5)]);
  assert.deepEqual(mergeBlockMap([], []), []);
});

test('diff for an incremental restore and unmapped ranges', () => {
  const delta = diffBlockMaps([m(0, 1), m(2, 2), m(4, 3)], [m(0, 1), m(2, 5), m(6, 6)]);
  assert.deepEqual(delta, { fetch: [m(2, 5), m(6, 6)], zero: [4] });
  assert.deepEqual(unmappedRanges([m(2, 1), m(4, 1)], 10, 2), [{ offsetBytes: 0, lengthBytes: 2 }, { offsetBytes: 6, lengthBytes: 4 }]);
  assert.deepEqual(unmappedRanges([], 4, 2), [{ offsetBytes: 0, lengthBytes: 4 }]);
});
