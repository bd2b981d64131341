import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../resources/object-meta.ts';
import { chooseOwner, decideOwnership } from './ownership.ts';

const live = (...ids: string[]) => (id: string): boolean => ids.includes(id);

test('the preferred owner wins when alive, else the current owner, else self', () => {
  assert.equal(chooseOwner({ currentOwner: 'a', preferredOwner: 'b', self: 'c', isLive: live('a', 'b') }), 'b');
  assert.equal(chooseOwner({ currentOwner: 'a', preferredOwner: 'b', self: 'c', isLive: live('a') }), 'a');
  assert.equal(chooseOwner({ currentOwner: 'a', preferredOwner: 'b', self: 'c', isLive: live() }), 'c');
  assert.equal(chooseOwner({ currentOwner: undefined, preferredOwner: undefined, self: 'c', isLive: live() }), 'c');
  assert.equal(chooseOwner({ currentOwner: 'a', preferredOwner: 'c', self: 'c', isLive: live('a') }), 'c', 'self is alive');
});

test('decideOwnership claims through status.ownerID, keeping the rest of the status', () => {
  const object: Resource = { apiVersion: 'shorthorn.io/v1', kind: 'Volume', metadata: { name: 'v' }, spec: {}, status: { ownerID: 'dead', state: 'attached' } };
  const decision = decideOwnership(object, { self: 'm1', preferredOwner: undefined, isLive: live() });
  assert.equal(decision.kind, 'claim');
  assert.deepEqual(decision.kind === 'claim' ? decision.object.status : undefined, { ownerID: 'm1', state: 'attached' });
  assert.deepEqual(decideOwnership(object, { self: 'm1', preferredOwner: undefined, isLive: live('dead') }), { kind: 'skip', owner: 'dead' });
  const mine = { ...object, status: { ownerID: 'm1' } };
  assert.deepEqual(decideOwnership(mine, { self: 'm1', preferredOwner: undefined, isLive: live() }), { kind: 'reconcile' });
});
