import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockingLock, compareLocks, decodeLockFile, encodeLockFile, lockDurationMs, type ServerLock } from './lock-file.ts';

test('lock file JSON is Longhorn shape', () => {
  const bytes = encodeLockFile({ name: 'lock-0011223344556677', type: 2, acquired: true });
  assert.equal(new TextDecoder().decode(bytes), '{"Name":"lock-0011223344556677","Type":2,"Acquired":true}');
  assert.deepEqual(decodeLockFile(bytes), { name: 'lock-0011223344556677', type: 2, acquired: true });
  assert.throws(() => decodeLockFile(new TextEncoder().encode('{"Name":"lock-1","Type":"1"}')), /field Type/);
});

test('lock ranking: acquired, then older server time, then name; same type never blocks', () => {
  const now = 1_000_000;
  const lock = (name: string, type: number, acquired: boolean, serverTimeMs: number): ServerLock => ({ name, type, acquired, serverTimeMs });
  const own = lock('lock-b', 2, false, now - 10);
  assert.equal(blockingLock(own, [lock('lock-a', 1, true, now)], now)?.name, 'lock-a', 'an acquired lock of another type blocks');
  assert.equal(blockingLock(own, [lock('lock-a', 2, true, now - 1000)], now), undefined, 'the same type never blocks');
  assert.equal(blockingLock(own, [lock('lock-a', 1, false, now - 5)], now), undefined, 'a younger unacquired lock does not block');
  assert.equal(blockingLock(own, [lock('lock-a', 1, false, now - 10)], now)?.name, 'lock-a', 'equal times: the name decides');
  assert.equal(blockingLock(own, [lock('lock-c', 1, false, now - 10)], now), undefined);
  assert.equal(blockingLock(own, [lock('lock-a', 1, true, now - lockDurationMs - 1)], now), undefined, 'an expired lock does not block');
  assert.ok(compareLocks(lock('x', 1, true, 5), lock('y', 1, false, 1)) < 0);
});
