import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from './random.ts';

test('SeededRandom replays the same sequence from the same seed', () => {
  const a = new SeededRandom(42);
  const b = new SeededRandom(42);
  for (let i = 0; i < 1000; i++) assert.equal(a.nextUint32(), b.nextUint32());
  assert.notEqual(new SeededRandom(43).nextUint32(), new SeededRandom(42).nextUint32());
});

test('SeededRandom.int() stays in range and covers it', () => {
  const random = new SeededRandom(7);
  const seen = new Set<number>();
  for (let i = 0; i < 10_000; i++) {
    const v = random.int(10);
    assert.ok(v >= 0 && v < 10 && Number.isInteger(v));
    seen.add(v);
  }
  assert.equal(seen.size, 10);
});

test('SeededRandom.fill() fills odd lengths', () => {
  const bytes = new SeededRandom(1).fill(new Uint8Array(7));
  assert.ok(bytes.some((b) => b !== 0));
  assert.deepEqual(new SeededRandom(1).fill(new Uint8Array(7)), bytes);
});
