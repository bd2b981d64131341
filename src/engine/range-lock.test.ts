import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RangeLock } from './range-lock.ts';

test('RangeLock orders overlapping holders and lets disjoint ones run', async () => {
  const lock = new RangeLock();
  const order: string[] = [];
  const releaseA = await lock.acquire(0, 4096);
  const b = lock.acquire(4000, 100).then((release) => {
    order.push('b');
    release();
  });
  const c = lock.acquire(8192, 4096).then((release) => {
    order.push('c');
    release();
  });
  await c;
  assert.deepEqual(order, ['c']);
  order.push('a');
  releaseA();
  await b;
  assert.deepEqual(order, ['c', 'a', 'b']);
  assert.equal(lock.size(), 0);
});

test('RangeLock.tryAcquire takes a free range at once and refuses an overlapping one, which then queues in order', async () => {
  const lock = new RangeLock();
  const releaseA = lock.tryAcquire(0, 8192);
  assert.ok(releaseA !== undefined);
  assert.equal(lock.tryAcquire(4096, 4096), undefined);
  const releaseD = lock.tryAcquire(8192, 4096);
  assert.ok(releaseD !== undefined);
  const order: string[] = [];
  const b = lock.acquire(4096, 4096).then((release) => {
    order.push('b');
    release();
  });
  // A later overlapping tryAcquire must not jump ahead of the waiting b.
  assert.equal(lock.tryAcquire(6000, 10), undefined);
  releaseD();
  order.push('a');
  releaseA();
  await b;
  assert.deepEqual(order, ['a', 'b']);
  assert.equal(lock.size(), 0);
  assert.throws(() => releaseA(), /released twice/);
});
