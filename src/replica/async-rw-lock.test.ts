import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncRwLock } from './async-rw-lock.ts';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test('AsyncRwLock runs shared work together and exclusive work alone, in arrival order', async () => {
  const lock = new AsyncRwLock();
  const events: string[] = [];
  const gateA = deferred();
  const gateB = deferred();
  const a = lock.shared(async () => {
    events.push('a+');
    await gateA.promise;
    events.push('a-');
  });
  const b = lock.shared(async () => {
    events.push('b+');
    await gateB.promise;
    events.push('b-');
  });
  const x = lock.exclusive(async () => {
    events.push('x');
    await Promise.resolve();
  });
  // Arrives after the exclusive waiter: must not overtake it.
  const c = lock.shared(async () => {
    events.push('c');
    await Promise.resolve();
  });
  await Promise.resolve();
  assert.deepEqual(events, ['a+', 'b+']);
  gateB.resolve();
  await b;
  assert.deepEqual(events, ['a+', 'b+', 'b-']);
  gateA.resolve();
  await Promise.all([a, x, c]);
  assert.deepEqual(events, ['a+', 'b+', 'b-', 'a-', 'x', 'c']);
});

test('AsyncRwLock releases on failure', async () => {
  const lock = new AsyncRwLock();
  await assert.rejects(lock.exclusive(() => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(await lock.shared(() => Promise.resolve(5)), 5);
});
