import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChainInfo } from '../format/replica-chain.ts';
import { chooseStartReplicas } from './start-choice.ts';
import { memberChain } from './testing/member-chain.ts';

const chain = (generation: number, members: string[], sizeBytes = 4096): ChainInfo => memberChain(generation, members, { sizeBytes });

test('chooseStartReplicas() uses only the highest generation', () => {
  const choice = chooseStartReplicas(
    [
      { address: 'a', chain: chain(5, ['a', 'c']) },
      { address: 'b', chain: chain(4, ['a', 'b', 'c']) },
      { address: 'c', chain: chain(5, ['a', 'c']) },
      { address: 'd', chain: null, error: 'refused' },
    ],
    4096,
  );
  assert.equal(choice.kind, 'chosen');
  if (choice.kind !== 'chosen') return;
  assert.deepEqual(choice.chosen, ['a', 'c']);
  assert.deepEqual(choice.stale, ['b']);
  assert.deepEqual(choice.unreachable, ['d']);
  assert.equal(choice.generation, 5);
  assert.match(choice.reason, /stale/);
});

test('chooseStartReplicas() takes every fresh replica at generation 0', () => {
  const choice = chooseStartReplicas(
    [
      { address: 'b', chain: chain(0, []) },
      { address: 'a', chain: chain(0, []) },
    ],
    4096,
  );
  assert.deepEqual(choice.kind === 'chosen' ? choice.chosen : [], ['a', 'b']);
});

test('chooseStartReplicas() refuses when nothing is reachable or sizes differ', () => {
  assert.equal(chooseStartReplicas([{ address: 'a', chain: null }], 4096).kind, 'none');
  const choice = chooseStartReplicas([{ address: 'a', chain: chain(1, ['a'], 8192) }], 4096);
  assert.equal(choice.kind, 'none');
});

test('chooseStartReplicas() refuses while a member of the newest generation it knows is unreachable', () => {
  // Simulator seed 8: the engine dropped a, recorded generation 2 {b} on b alone and acknowledged
  // writes on b; then b was cut off. Starting on a (generation 1 {a, b}) would serve old data and
  // record a second, forked generation 2.
  const choice = chooseStartReplicas(
    [
      { address: 'a', chain: chain(1, ['a', 'b']) },
      { address: 'b', chain: null, error: 'unreachable' },
    ],
    4096,
  );
  assert.equal(choice.kind, 'none');
  assert.match(choice.kind === 'none' ? choice.reason : '', /b of generation 1 unreachable/);
});
