// The snapshot limits against chains at and around them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChainInfo, SnapshotInfo } from '../format/replica-chain.ts';
import { checkSnapshotLimits, parseSnapshotLimits, snapshotLimitRefusal } from './snapshot-limits.ts';

function chain(snapshots: readonly Partial<SnapshotInfo>[], headSizeBytes = 0): ChainInfo {
  return {
    volumeName: 'v', sizeBytes: 1 << 30, blockSizeBytes: 4096, headSizeBytes, headParent: null,
    membership: { epoch: 1, generation: 1, members: [] },
    snapshots: snapshots.map((s, i) => ({ name: `s${i}`, parent: null, createdMs: 0, kind: 'user', labels: {}, removed: false, sizeBytes: 0, checksumState: 'none', ...s })),
  };
}

test('snapshotMaxCount counts snapshots not marked removed, the new one included', () => {
  const limits = { maxCount: 3, maxSizeBytes: 0 };
  assert.equal(snapshotLimitRefusal(chain([{}, {}]), limits), null);
  assert.match(snapshotLimitRefusal(chain([{}, {}, {}]), limits) ?? '', /holds 3 snapshots and snapshotMaxCount is 3/);
  assert.equal(snapshotLimitRefusal(chain([{}, {}, { removed: true }]), limits), null, 'a removed snapshot only waits for a purge');
  assert.equal(snapshotLimitRefusal(chain(Array.from({ length: 1000 }, () => ({}))), { maxCount: 0, maxSizeBytes: 0 }), null, '0: no limit');
});

test('snapshotMaxSize counts every snapshot\'s own data and the head that the new snapshot seals', () => {
  const limits = { maxCount: 0, maxSizeBytes: 100 };
  assert.equal(snapshotLimitRefusal(chain([{ sizeBytes: 40 }, { sizeBytes: 40, removed: true }], 20), limits), null, 'exactly at the limit');
  assert.match(snapshotLimitRefusal(chain([{ sizeBytes: 40 }, { sizeBytes: 40, removed: true }], 21), limits) ?? '', /would hold 101 bytes \(21 of them written since the last snapshot\) and snapshotMaxSize is 100/);
  assert.throws(() => checkSnapshotLimits(chain([{ sizeBytes: 200 }]), limits, 'nightly'), { code: 'conflict', message: /^Cannot take snapshot nightly: / });
});

test('a live limits change takes both limits, in the flags\' ranges, and nothing else', () => {
  assert.deepEqual(parseSnapshotLimits({ maxCount: 3, maxSizeBytes: 0 }), { maxCount: 3, maxSizeBytes: 0 });
  assert.deepEqual(parseSnapshotLimits({ maxCount: 0, maxSizeBytes: Number.MAX_SAFE_INTEGER }), { maxCount: 0, maxSizeBytes: Number.MAX_SAFE_INTEGER });
  assert.deepEqual(parseSnapshotLimits({ maxCount: 1024, maxSizeBytes: 1 }), { maxCount: 1024, maxSizeBytes: 1 });
  const problems: Record<string, unknown>[] = [
    {}, { maxCount: 3 }, { maxSizeBytes: 3 }, { maxCount: 1025, maxSizeBytes: 0 }, { maxCount: -1, maxSizeBytes: 0 },
    { maxCount: 1.5, maxSizeBytes: 0 }, { maxCount: 3, maxSizeBytes: '1Gi' }, { maxCount: 3, maxSizeBytes: 0, extra: 1 },
  ];
  for (const body of problems) assert.ok('problem' in parseSnapshotLimits(body), JSON.stringify(body));
});
