import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reportedSnapshotLimits, snapshotLimitsPush, wantedSnapshotLimits } from './engine-snapshot-limits.ts';

test('the resource\'s limits as the engine spells them: absent or 0 is no limit', () => {
  assert.deepEqual(wantedSnapshotLimits({}), { maxCount: 0, maxSizeBytes: 0 });
  assert.deepEqual(wantedSnapshotLimits({ snapshotMaxCount: 3, snapshotMaxSize: 0 }), { maxCount: 3, maxSizeBytes: 0 });
  assert.deepEqual(wantedSnapshotLimits({ snapshotMaxCount: 250, snapshotMaxSize: 4096 }), { maxCount: 250, maxSizeBytes: 4096 });
});

test('a push only when the running engine reports other limits than the resource asks for', () => {
  assert.equal(snapshotLimitsPush({ snapshotMaxCount: 3 }, { maxCount: 3, maxSizeBytes: 0 }), undefined, 'in force already');
  assert.deepEqual(snapshotLimitsPush({ snapshotMaxCount: 4 }, { maxCount: 3, maxSizeBytes: 0 }), { maxCount: 4, maxSizeBytes: 0 });
  assert.deepEqual(snapshotLimitsPush({ snapshotMaxCount: 4, snapshotMaxSize: 1 << 20 }, { maxCount: 4, maxSizeBytes: 0 }), { maxCount: 4, maxSizeBytes: 1 << 20 });
  assert.deepEqual(snapshotLimitsPush({}, { maxCount: 4, maxSizeBytes: 1 << 20 }), { maxCount: 0, maxSizeBytes: 0 }, 'limits removed from the resource');
  assert.equal(snapshotLimitsPush({ snapshotMaxCount: 4 }, undefined), undefined, 'an engine that reports none cannot change them live');
});

test('what a status answer says about limits is checked like any input', () => {
  assert.deepEqual(reportedSnapshotLimits({ maxCount: 3, maxSizeBytes: 0 }), { maxCount: 3, maxSizeBytes: 0 });
  for (const value of [undefined, null, 3, 'x', [], {}, { maxCount: 3 }, { maxCount: -1, maxSizeBytes: 0 }, { maxCount: 3, maxSizeBytes: '1' }, { maxCount: 1e9, maxSizeBytes: 0 }, { maxCount: 2, maxSizeBytes: 2 ** 60 }]) {
    assert.equal(reportedSnapshotLimits(value), undefined, JSON.stringify(value));
  }
});
