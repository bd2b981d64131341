import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChainInfo, SnapshotInfo } from '../format/replica-chain.ts';
import { planStartReconcile } from './start-reconcile.ts';

const mib = 1024 * 1024;

function snap(name: string, parent: string | null, extra: Partial<SnapshotInfo> = {}): SnapshotInfo {
  return { name, parent, createdMs: 1000, kind: 'user', labels: {}, removed: false, sizeBytes: 0, checksumState: 'none', ...extra };
}

function chain(snapshots: SnapshotInfo[], headParent: string | null, sizeBytes = 16 * mib): ChainInfo {
  return {
    volumeName: 'v',
    sizeBytes,
    blockSizeBytes: 4096,
    snapshots,
    headSizeBytes: 0,
    headParent,
    membership: { epoch: 1, generation: 1, members: ['a', 'b'] },
  };
}

test('chains that agree need nothing', () => {
  const c = chain([snap('s1', null)], 's1');
  assert.deepEqual(planStartReconcile([{ address: 'a', chain: c }, { address: 'b', chain: c }], 16 * mib), { sizeBytes: 16 * mib, repairs: [], dropped: [] });
});

test('an expand that reached one replica is finished on the others, whichever size was asked', () => {
  const small = chain([], null, 16 * mib);
  const big = chain([], null, 24 * mib);
  for (const requested of [16 * mib, 24 * mib]) {
    const plan = planStartReconcile([{ address: 'a', chain: small }, { address: 'b', chain: big }], requested);
    assert.equal(plan.sizeBytes, 24 * mib);
    assert.deepEqual(plan.repairs, [{ kind: 'expand', address: 'a', sizeBytes: 24 * mib }]);
    assert.deepEqual(plan.dropped, []);
  }
  // A larger size asked for than any replica has: every replica grows (never shrinks).
  assert.deepEqual(planStartReconcile([{ address: 'a', chain: small }], 32 * mib).repairs, [{ kind: 'expand', address: 'a', sizeBytes: 32 * mib }]);
});

test('a snapshot that reached one replica is taken on the other with the same name, kind, labels and time, whichever is the read source', () => {
  const before = chain([snap('s1', null)], 's1');
  const top = snap('rebuild-x', 's1', { kind: 'system', labels: { why: 'join' }, createdMs: 42 });
  const after = chain([snap('s1', null), top], 'rebuild-x');
  for (const order of [['a', 'b'], ['b', 'a']] as const) {
    const reports = order.map((address) => ({ address, chain: address === 'a' ? before : after }));
    const plan = planStartReconcile(reports, 16 * mib);
    assert.deepEqual(plan.dropped, []);
    assert.deepEqual(plan.repairs, [{ kind: 'snapshot', address: 'a', snapshot: { name: 'rebuild-x', kind: 'system', labels: { why: 'join' }, createdMs: 42 } }]);
  }
});

test('a delete and a purge that reached one replica are finished on the other', () => {
  const marked = chain([snap('s1', null, { removed: true }), snap('s2', 's1')], 's2');
  const unmarked = chain([snap('s1', null), snap('s2', 's1')], 's2');
  const purged = chain([snap('s2', null)], 's2');
  assert.deepEqual(planStartReconcile([{ address: 'a', chain: unmarked }, { address: 'b', chain: marked }], 16 * mib).repairs, [
    { kind: 'mark-removed', address: 'a', name: 's1' },
  ]);
  const plan = planStartReconcile([{ address: 'a', chain: marked }, { address: 'b', chain: purged }], 16 * mib);
  assert.deepEqual(plan.dropped, []);
  assert.deepEqual(plan.repairs, [{ kind: 'purge', address: 'a' }]);
});

test('a revert that reached one replica cannot be told from a normal state: the replica unlike the read source leaves', () => {
  const reverted = chain([snap('s1', null), snap('s2', 's1')], 's1');
  const notReverted = chain([snap('s1', null), snap('s2', 's1')], 's2');
  const plan = planStartReconcile([{ address: 'a', chain: notReverted }, { address: 'b', chain: reverted }], 16 * mib);
  assert.deepEqual(plan.repairs, []);
  assert.deepEqual(plan.dropped.map((d) => d.address), ['b']);
  // The majority wins over the read source.
  const three = planStartReconcile([{ address: 'a', chain: notReverted }, { address: 'b', chain: reverted }, { address: 'c', chain: reverted }], 16 * mib);
  assert.deepEqual(three.dropped.map((d) => d.address), ['a']);
});

test('a snapshot name a replica holds on another branch is not "taken again": that replica leaves', () => {
  // b reverted to s1 after s2 was taken: s2 is a branch there, not a missing snapshot.
  const a = chain([snap('s1', null), snap('s2', 's1')], 's2');
  const b = chain([snap('s1', null), snap('s2', 's1')], 's1');
  const plan = planStartReconcile([{ address: 'a', chain: a }, { address: 'b', chain: b }], 16 * mib);
  assert.ok(!plan.repairs.some((r) => r.kind === 'snapshot'));
  assert.equal(plan.dropped.length, 1);
});
