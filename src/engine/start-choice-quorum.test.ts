// The quorum start rule (start-choice.ts, scenario S09): with a minimum of w write replicas a
// start may go on while fewer than w members of the newest generation are missing, because the
// old engine could not have acknowledged a write after that generation without w of its members
// recording a newer one. The cases where it must still refuse are here too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChainInfo } from '../format/replica-chain.ts';
import { chooseStartReplicas, type ReplicaReport } from './start-choice.ts';
import { chooseSalvageReplicas } from './salvage-choice.ts';
import { memberChain } from './testing/member-chain.ts';

const chain = (generation: number, members: string[], epoch = 3, instanceId?: string): ChainInfo =>
  memberChain(generation, members, { epoch, ...(instanceId === undefined ? {} : { instanceId }) });

const cut = (address: string): ReplicaReport => ({ address, chain: null, error: 'timed out' });

test('S09: the engine\'s host is cut off with r1; r2 and r3 (generation 4 {r1, r2, r3}) start by quorum when w = 2', () => {
  const reports = [cut('r1'), { address: 'r2', chain: chain(4, ['r1', 'r2', 'r3']) }, { address: 'r3', chain: chain(4, ['r1', 'r2', 'r3']) }];
  const strict = chooseStartReplicas(reports, 4096);
  assert.equal(strict.kind, 'none', 'with w = 1 a missing member may have gone on alone');
  const choice = chooseStartReplicas(reports, 4096, { minimumWriteReplicas: 2 });
  assert.equal(choice.kind, 'chosen', choice.kind === 'none' ? choice.reason : '');
  if (choice.kind !== 'chosen') return;
  assert.deepEqual(choice.chosen, ['r2', 'r3']);
  assert.deepEqual(choice.missingByQuorum, ['r1']);
  assert.deepEqual(choice.unreachable, ['r1']);
  assert.equal(choice.generation, 4);
  assert.equal(choice.recordAbove, 10, 'above anything the old engine can still record on r1 (at most two records per dropped member: 4 + 2 * 3)');
  assert.match(choice.reason, /by quorum: 1 of 3 members missing \(r1\), fewer than the minimum write replicas 2/);
});

test('quorum: refuses when w members are missing (they could have recorded a newer generation and acknowledged in it)', () => {
  // 5 replicas, w = 2: r1 and r2 are enough to have gone on alone.
  const members = ['r1', 'r2', 'r3', 'r4', 'r5'];
  const reports = [cut('r1'), cut('r2'), ...['r3', 'r4', 'r5'].map((a) => ({ address: a, chain: chain(7, members) }))];
  const choice = chooseStartReplicas(reports, 4096, { minimumWriteReplicas: 2 });
  assert.equal(choice.kind, 'none');
  assert.match(choice.kind === 'none' ? choice.reason : '', /members r1, r2 of generation 7 unreachable.*2 missing of 5, not fewer than the minimum write replicas 2/);
  // With w = 3, two missing members cannot have acknowledged anything alone.
  const three = chooseStartReplicas(reports, 4096, { minimumWriteReplicas: 3 });
  assert.deepEqual(three.kind === 'chosen' ? three.chosen : three.reason, ['r3', 'r4', 'r5']);
});

test('quorum: the newest generation counts, not an older one the reachable replicas remember', () => {
  // The old engine dropped r3 and recorded generation 5 {r1, r2} (2 members, w = 2: it could
  // acknowledge in it). r1 is cut off. r2 answers with generation 5: one of its two members is
  // missing, fewer than w, and r2 holds every write acknowledged in it; r3 is stale.
  const reports = [cut('r1'), { address: 'r2', chain: chain(5, ['r1', 'r2']) }, { address: 'r3', chain: chain(4, ['r1', 'r2', 'r3']) }];
  const choice = chooseStartReplicas(reports, 4096, { minimumWriteReplicas: 2 });
  assert.equal(choice.kind, 'chosen');
  if (choice.kind !== 'chosen') return;
  assert.deepEqual(choice.chosen, ['r2'], 'r2 holds generation 5 and every write acknowledged in it');
  assert.deepEqual(choice.stale, ['r3']);
  const all = chooseStartReplicas([{ address: 'r1', chain: chain(5, ['r1', 'r2']) }, { address: 'r2', chain: chain(5, ['r1', 'r2']) }], 4096, { minimumWriteReplicas: 2 });
  assert.equal(all.kind === 'chosen' ? all.recordAbove : -1, 5, 'nothing missing: the next generation as always');
});

test('quorum: refuses when only replicas of an older generation answer (the missing pair may hold generation 5)', () => {
  // Generation 5 {r1, r2} lives on r1 and r2, both cut off; r3 holds generation 4 {r1, r2, r3}.
  // By generation 4's list two members are missing: not fewer than w = 2.
  const reports = [cut('r1'), cut('r2'), { address: 'r3', chain: chain(4, ['r1', 'r2', 'r3']) }];
  const choice = chooseStartReplicas(reports, 4096, { minimumWriteReplicas: 2 });
  assert.equal(choice.kind, 'none');
});

test('quorum: a member that missed the newest record is not a candidate and does not count as holding it', () => {
  // r2 failed to record generation 6 {r2, r3} (it still says 5): only r3 holds 6. r1 is missing.
  // r1 is not a member of 6, so nothing is missing from generation 6: r3 alone is chosen.
  const reports = [cut('r1'), { address: 'r2', chain: chain(5, ['r1', 'r2', 'r3']) }, { address: 'r3', chain: chain(6, ['r2', 'r3']) }];
  const choice = chooseStartReplicas(reports, 4096, { minimumWriteReplicas: 2 });
  assert.deepEqual(choice.kind === 'chosen' ? [choice.chosen, choice.stale] : choice.reason, [['r3'], ['r2']]);
});

test('quorum: refuses when no member holding the generation answers (only a joiner of it does)', () => {
  // Generation 3 {r1} with w = 2 (the engine fell below its minimum); r9 joined as wo and holds
  // {3, no members}. Nothing here holds generation 3's writes (and the joiner cannot even say who
  // the members are).
  const reports = [cut('r1'), { address: 'r9', chain: chain(3, []) }];
  assert.equal(chooseStartReplicas(reports, 4096, { minimumWriteReplicas: 2 }).kind, 'none');
  // r2 answers with an older generation and lists r1 and r2; r1 holds 3 {r1}: one member of 3 missing.
  const older = [cut('r1'), { address: 'r2', chain: chain(2, ['r1', 'r2']) }, { address: 'r9', chain: chain(3, ['r1']) }];
  const choice = chooseStartReplicas(older, 4096, { minimumWriteReplicas: 2 });
  assert.equal(choice.kind, 'none');
  assert.match(choice.kind === 'none' ? choice.reason : '', /member r1 of generation 3 unreachable.*no member holding it answered/);
});

test('quorum: a joiner is neither counted toward the members present nor chosen', () => {
  // Generation 4 {r1, r2, r3}, w = 2, r4 joining ({4, []}). r1 and r2 are cut off: two missing.
  const members = ['r1', 'r2', 'r3'];
  const reports = [cut('r1'), cut('r2'), { address: 'r3', chain: chain(4, members) }, { address: 'r4', chain: chain(4, []) }];
  assert.equal(chooseStartReplicas(reports, 4096, { minimumWriteReplicas: 2 }).kind, 'none');
  // With r2 back, one is missing: start on r2, r3; the joiner is stale (it must be rebuilt).
  const back = [cut('r1'), { address: 'r2', chain: chain(4, members) }, { address: 'r3', chain: chain(4, members) }, { address: 'r4', chain: chain(4, []) }];
  const choice = chooseStartReplicas(back, 4096, { minimumWriteReplicas: 2 });
  assert.deepEqual(choice.kind === 'chosen' ? [choice.chosen, choice.stale] : choice.reason, [['r2', 'r3'], ['r4']]);
});

test('quorum: a stranger on a missing member\'s port is still a missing member', () => {
  const ia = 'a'.repeat(32);
  const ib = 'b'.repeat(32);
  const ic = 'c'.repeat(32);
  const ix = 'f'.repeat(32);
  const members = [`A#${ia}`, `B#${ib}`, `C#${ic}`];
  // A is answered by another instance and B is cut off: two missing of three, w = 2.
  const reports = [{ address: 'A', chain: chain(2, [], 3, ix) }, cut('B'), { address: 'C', chain: chain(8, members, 3, ic) }];
  assert.equal(chooseStartReplicas(reports, 4096, { minimumWriteReplicas: 2 }).kind, 'none');
  assert.equal(chooseStartReplicas(reports, 4096, { minimumWriteReplicas: 3 }).kind, 'chosen');
});

test('quorum: with forked records of one generation the later engine\'s list counts', () => {
  // Two engines each recorded generation 5: the older (epoch 3) {r1}, the newer (epoch 4) {r2, r3}.
  const reports = [
    { address: 'r1', chain: chain(5, ['r1'], 3) },
    { address: 'r2', chain: chain(5, ['r2', 'r3'], 4) },
    cut('r3'),
  ];
  const choice = chooseStartReplicas(reports, 4096, { minimumWriteReplicas: 2 });
  assert.deepEqual(choice.kind === 'chosen' ? [choice.chosen, choice.stale] : choice.reason, [['r2'], ['r1']]);
});

test('quorum: a salvage with the quorum satisfied is a normal start', () => {
  const reports = [cut('r1'), { address: 'r2', chain: chain(4, ['r1', 'r2', 'r3']) }, { address: 'r3', chain: chain(4, ['r1', 'r2', 'r3']) }];
  const choice = chooseSalvageReplicas(reports, 4096, { minimumWriteReplicas: 2 });
  assert.equal(choice.kind, 'chosen');
  if (choice.kind !== 'chosen') return;
  assert.equal(choice.salvaged, false);
  assert.deepEqual(choice.possiblyLost, []);
  assert.deepEqual(choice.chosen, ['r2', 'r3']);
});

test('quorum: a bad minimum is refused', () => {
  assert.equal(chooseStartReplicas([{ address: 'a', chain: chain(1, ['a']) }], 4096, { minimumWriteReplicas: 0 }).kind, 'none');
});
