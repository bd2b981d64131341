import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExtentMap } from './extent-map.ts';
import { SeededRandom } from '../lib/random.ts';

function seedFromEnv(fallback: number): number {
  const seed = process.env['SEED'];
  return seed === undefined ? fallback : Number(seed);
}

/** Dense model: value per block, -1 for unmapped. */
function snapshotOf(map: ExtentMap, blocks: number): number[] {
  const out = new Array<number>(blocks).fill(-1);
  map.forEach((s, n, v) => {
    for (let b = s; b < s + n; b++) out[b] = v;
  });
  return out;
}

test('ExtentMap.set() matches a dense model under random operations', () => {
  const base = seedFromEnv(Date.now() % 1_000_000);
  for (let k = 0; k < 20; k++) {
    const seed = base + k;
    const random = new SeededRandom(seed);
    const blocks = 2000 + random.int(3000);
    const model = new Array<number>(blocks).fill(-1);
    const map = new ExtentMap();
    try {
      for (let step = 0; step < 3000; step++) {
        const s = random.int(blocks);
        const n = 1 + random.int(random.next() < 0.8 ? 4 : 300);
        const len = Math.min(n, blocks - s);
        const op = random.int(10);
        if (op === 0) {
          map.clear(s, len);
          for (let b = s; b < s + len; b++) model[b] = -1;
        } else if (op === 1 && step % 50 === 0) {
          map.replaceValue(1, 2);
          for (let b = 0; b < blocks; b++) if (model[b] === 1) model[b] = 2;
        } else {
          const v = random.int(4);
          map.set(s, len, v);
          for (let b = s; b < s + len; b++) model[b] = v;
        }
        if (step % 97 === 0) map.checkInvariants();
      }
      map.checkInvariants();
      assert.deepEqual(snapshotOf(map, blocks), model);
      const q0 = random.int(blocks);
      const q1 = q0 + random.int(blocks - q0);
      let covered = 0;
      map.forEachIn(q0, q1, (s, n, v) => {
        assert.ok(s >= q0 && s + n <= q1);
        for (let b = s; b < s + n; b++) assert.equal(model[b], v);
        covered += n;
      });
      assert.equal(covered, model.slice(q0, q1).filter((v) => v !== -1).length);
      for (let v = 0; v < 4; v++) assert.equal(map.blocksWithValue(v), model.filter((x) => x === v).length);
    } catch (error) {
      console.error(`ExtentMap model test failed with SEED=${seed}`);
      throw error;
    }
  }
});

test('ExtentMap keeps one range for sequential writes and ~16 bytes a range for random ones', () => {
  const seq = new ExtentMap();
  for (let b = 0; b < 1_000_000; b += 32) seq.set(b, 32, 7);
  assert.equal(seq.extentCount, 1);
  const random = new SeededRandom(1);
  const sparse = new ExtentMap();
  for (let i = 0; i < 50_000; i++) sparse.set(random.int(2 ** 28) * 2, 1, 3);
  assert.ok(sparse.memoryBytes() / sparse.extentCount < 30, `${sparse.memoryBytes() / sparse.extentCount} bytes a range`);
  sparse.checkInvariants();
});

test('ExtentMap splits ranges longer than a Uint32 count', () => {
  const map = new ExtentMap();
  const huge = 2 ** 34;
  map.set(0, huge, 1);
  map.checkInvariants();
  assert.equal(map.blocksWithValue(1), huge);
  map.set(5, 10, 2);
  map.clear(2 ** 33, 1);
  map.checkInvariants();
  assert.equal(map.blocksWithValue(1), huge - 11);
});
