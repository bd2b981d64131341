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
