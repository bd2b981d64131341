import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChainInfo } from '../format/replica-chain.ts';
import { newestGroup } from './generation-fork.ts';
import { chooseSalvageReplicas } from './salvage-choice.ts';
import { chooseStartReplicas } from './start-choice.ts';
import { memberChain } from './testing/member-chain.ts';

const chain = (generation: number, members: string[], epoch = 3, sizeBytes = 4096): ChainInfo =>
  memberChain(generation, members, { epoch, sizeBytes });

test('salvage changes nothing when the normal rule can choose', () => {
  const choice = chooseSalvageReplicas(
    [
      { address: 'a', chain: chain(5, ['a', 'b']) },
      { address: 'b', chain: chain(5, ['a', 'b']) },
    ],
    4096,
  );
  assert.equal(choice.kind, 'chosen');
  if (choice.kind !== 'chosen') return;
  assert.equal(choice.salvaged, false);
  assert.deepEqual(choice.chosen, ['a', 'b']);
  assert.deepEqual(choice.possiblyLost, []);
});

test('salvage starts from the reachable members and names the missing one (S03: one replica never came back)', () => {
  const reports = [
    { address: 'a', chain: chain(5, ['a', 'b', 'c']) },
    { address: 'b', chain: chain(5, ['a', 'b', 'c']) },
    { address: 'c', chain: null, error: 'connection refused' },
  ];
  assert.equal(chooseStartReplicas(reports, 4096).kind, 'none', 'the normal rule refuses');
  const choice = chooseSalvageReplicas(reports, 4096);
  assert.equal(choice.kind, 'chosen');
  if (choice.kind !== 'chosen') return;
  assert.equal(choice.salvaged, true);
  assert.deepEqual(choice.chosen, ['a', 'b']);
  assert.deepEqual(choice.possiblyLost, ['c']);
  assert.deepEqual(choice.unreachable, ['c']);
  assert.equal(choice.generation, 5);
  assert.match(choice.reason, /member c of generation 5 not used: writes acknowledged after it went on without the others may be lost/);
});

test('staggered deaths (S04): the last writer wins by generation; without it, the newest reachable member', () => {
  // r1 died first (generation 5), then r2 (the engine recorded 6 {r2, r3}, then 7 {r3}).
  const r1 = { address: 'r1', chain: chain(5, ['r1', 'r2', 'r3']) };
  const r2 = { address: 'r2', chain: chain(6, ['r2', 'r3']) };
  const r3 = { address: 'r3', chain: chain(7, ['r3']) };
  const all = chooseSalvageReplicas([r1, r2, r3], 4096);
  assert.deepEqual(all.kind === 'chosen' ? [all.chosen, all.stale, all.salvaged] : [], [['r3'], ['r1', 'r2'], false]);
  // Whatever order the reports come in.
  const shuffled = chooseSalvageReplicas([r3, r1, r2], 4096);
  assert.deepEqual(shuffled.kind === 'chosen' ? shuffled.chosen : [], ['r3']);
  // r3's disk is gone: generation 7 is unreadable, r2 (generation 6) is the newest member left.
  const without = chooseSalvageReplicas([r1, r2, { address: 'r3', chain: null }], 4096);
  assert.equal(without.kind, 'chosen');
  if (without.kind !== 'chosen') return;
  assert.deepEqual(without.chosen, ['r2']);
  assert.deepEqual(without.stale, ['r1']);
  assert.deepEqual(without.possiblyLost, ['r3']);
  assert.equal(without.generation, 6);
});

test('a replica not listed in its own generation (a joiner, a dropped one) is never the salvage source', () => {
  // a joined as WO at generation 6 (empty list) and never finished; b and c are the members.
  const choice = chooseSalvageReplicas(
    [
      { address: 'a', chain: chain(6, []) },
      { address: 'b', chain: chain(6, ['b', 'c']) },
      { address: 'c', chain: null },
    ],
    4096,
  );
  assert.deepEqual(choice.kind === 'chosen' ? [choice.chosen, choice.stale, choice.possiblyLost] : choice.reason, [['b'], ['a'], ['c']]);
  // Only the joiner reachable: fall back to the next older generation with a member.
  const older = chooseSalvageReplicas(
    [
      { address: 'a', chain: chain(6, []) },
      { address: 'd', chain: chain(4, ['d', 'b', 'c']) },
      { address: 'b', chain: null },
      { address: 'c', chain: null },
    ],
    4096,
  );
  assert.equal(older.kind, 'chosen');
  if (older.kind !== 'chosen') return;
  assert.deepEqual(older.chosen, ['d']);
  assert.equal(older.generation, 6, 'the new generation is recorded above every generation read');
  assert.match(older.reason, /generation 6 has no usable member \(a\)/);
  // Nothing usable at all.
  const none = chooseSalvageReplicas([{ address: 'a', chain: chain(6, []) }, { address: 'b', chain: null }], 4096);
  assert.equal(none.kind, 'none');
});

test('salvage never uses a replica of the wrong size, and refuses with nothing reachable', () => {
  const choice = chooseSalvageReplicas([{ address: 'a', chain: chain(5, ['a', 'b'], 3, 8192) }, { address: 'b', chain: null }], 4096);
  assert.equal(choice.kind, 'none');
  assert.equal(chooseSalvageReplicas([{ address: 'a', chain: null }], 4096).kind, 'none');
});

test('a forked generation (two engines recorded the same number) goes to the later engine, by epoch', () => {
  // A salvage at epoch 9 went on with a alone (generation 6 {a}); an older engine at epoch 8 had
  // recorded generation 6 {b} on b. Both are reachable now.
  const a = { address: 'a', chain: chain(6, ['a'], 9) };
  const b = { address: 'b', chain: chain(6, ['b'], 8) };
  const joiner = { address: 'j', chain: chain(6, [], 9) };
  assert.deepEqual(newestGroup([b, a, joiner]).map((r) => r.address), ['a', 'j']);
  assert.deepEqual(newestGroup([a, { address: 'c', chain: chain(6, ['a'], 7) }]).map((r) => r.address), ['a', 'c'], 'same list: one write set, whatever the epochs');
  const choice = chooseSalvageReplicas([a, b, { address: 'x', chain: null }], 4096);
  assert.deepEqual(choice.kind === 'chosen' ? [choice.chosen, choice.stale] : choice.reason, [['a'], ['b']]);
});
