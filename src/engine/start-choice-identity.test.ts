// Start-up choice with replica instance ids (format/replica-identity.ts, scenario S28): another
// replica listening on a member's address is not that member.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChainInfo } from '../format/replica-chain.ts';
import { memberId, parseMemberId, isSameReplica } from '../format/replica-identity.ts';
import { chooseStartReplicas } from './start-choice.ts';
import { memberChain } from './testing/member-chain.ts';

const ia = 'a'.repeat(32);
const ib = 'b'.repeat(32);
const ic = 'c'.repeat(32);
const ic2 = 'c0'.repeat(16);

const chain = (generation: number, members: string[], instanceId?: string): ChainInfo =>
  memberChain(generation, members, instanceId === undefined ? {} : { instanceId });

test('memberId and parseMemberId round-trip; bare addresses and socket paths with # stay addresses', () => {
  assert.equal(memberId({ address: '127.0.0.1:5000', instanceId: ia }), `127.0.0.1:5000#${ia}`);
  assert.deepEqual(parseMemberId(`127.0.0.1:5000#${ia}`), { address: '127.0.0.1:5000', instanceId: ia });
  assert.deepEqual(parseMemberId('127.0.0.1:5000'), { address: '127.0.0.1:5000', instanceId: null });
  assert.deepEqual(parseMemberId('/run/r#1.sock'), { address: '/run/r#1.sock', instanceId: null });
  assert.deepEqual(parseMemberId(`/run/r#x#${ib}`), { address: '/run/r#x', instanceId: ib });
  assert.equal(memberId({ address: 'h:1', instanceId: null }), 'h:1');
  assert.ok(isSameReplica({ address: 'h:1', instanceId: null }, { address: 'h:1', instanceId: ia }));
  assert.ok(!isSameReplica({ address: 'h:1', instanceId: ia }, { address: 'h:1', instanceId: null }));
  assert.ok(!isSameReplica({ address: 'h:1', instanceId: ia }, { address: 'h:2', instanceId: ia }));
});

test('a stale replica of the same volume on a member\'s port does not stand in for that member', () => {
  // Generation 6 is {a, c}. c went on alone (it may hold generation 7 and writes a never saw);
  // b, dropped at generation 5, was restarted on c's old port. The address matches, the instance
  // does not: c is missing, so the engine must not start on a alone.
  const choice = chooseStartReplicas(
    [
      { address: 'A', chain: chain(6, [`A#${ia}`, `C#${ic}`], ia) },
      { address: 'C', chain: chain(5, [`A#${ia}`, `B#${ib}`, `C#${ic}`], ib) },
    ],
    4096,
  );
  assert.equal(choice.kind, 'none');
  assert.match(choice.reason, /member C \(answered by instance b{32}, not the member c{32}\) of generation 6 unreachable/);
});

test('the same instance that missed the newest record is stale, not missing', () => {
  // c crashed while generation 6 was being recorded: it still says generation 5. It is the
  // member (same instance), it never served generation 6: start on a, c is to be rebuilt.
  const choice = chooseStartReplicas(
    [
      { address: 'A', chain: chain(6, [`A#${ia}`, `C#${ic}`], ia) },
      { address: 'C', chain: chain(5, [`A#${ia}`, `C#${ic}`], ic) },
    ],
    4096,
  );
  assert.equal(choice.kind, 'chosen');
  if (choice.kind !== 'chosen') return;
  assert.deepEqual(choice.chosen, ['A']);
  assert.deepEqual(choice.stale, ['C']);
});

test('a replica of the newest generation with another instance id than the recorded member is refused', () => {
  // A copy of c's record (same generation) answering at c's address from another directory.
  const choice = chooseStartReplicas(
    [
      { address: 'A', chain: chain(6, [`A#${ia}`, `C#${ic}`], ia) },
      { address: 'C', chain: chain(6, [`A#${ia}`, `C#${ic}`], ic2) },
    ],
    4096,
  );
  assert.equal(choice.kind, 'none');
  assert.match(choice.reason, /member C \(answered by instance/);
});

test('records from before instance ids (bare addresses) match whichever instance answers', () => {
  const choice = chooseStartReplicas(
    [
      { address: 'A', chain: chain(6, ['A', 'C'], ia) },
      { address: 'C', chain: chain(6, ['A', 'C'], ic) },
    ],
    4096,
  );
  assert.equal(choice.kind, 'chosen');
  if (choice.kind !== 'chosen') return;
  assert.deepEqual(choice.chosen, ['A', 'C']);
});

test('a member recorded with an instance id is not proven by a replica that reports none', () => {
  const choice = chooseStartReplicas(
    [
      { address: 'A', chain: chain(6, [`A#${ia}`, `C#${ic}`], ia) },
      { address: 'C', chain: chain(6, [`A#${ia}`, `C#${ic}`]) },
    ],
    4096,
  );
  assert.equal(choice.kind, 'none');
});
