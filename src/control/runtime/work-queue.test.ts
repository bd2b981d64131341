import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../lib/clock.ts';
import { SeededRandom } from '../../lib/random.ts';
import { ManualTimers } from './timers.ts';
import { WorkQueue } from './work-queue.ts';

function setup(): { queue: WorkQueue; timers: ManualTimers } {
  const clock = new ManualClock();
  const timers = new ManualTimers(clock);
  return { queue: new WorkQueue({ clock, timers, backoffBaseMs: 5, backoffMaxMs: 1000 }), timers };
}

test('keys are de-duplicated while they wait', async () => {
  const { queue } = setup();
  queue.add('a');
  queue.add('b');
  queue.add('a');
  assert.equal(queue.length, 2);
  assert.equal(await queue.get(), 'a');
  assert.equal(await queue.get(), 'b');
});

test('a key being processed is not handed out again until done, then comes back once', async () => {
  const { queue } = setup();
  queue.add('a');
  assert.equal(await queue.get(), 'a');
  queue.add('a');
  queue.add('a');
  assert.equal(queue.length, 0, 'held back while a worker has it');
  queue.add('b');
  assert.equal(await queue.get(), 'b');
  queue.done('a');
  assert.equal(queue.length, 1);
  assert.equal(await queue.get(), 'a');
  queue.done('a');
  queue.done('b');
  assert.equal(queue.length, 0);
});

test('a waiting worker is woken by add; shutDown releases waiters', async () => {
  const { queue } = setup();
  const waiting = queue.get();
  queue.add('x');
  assert.equal(await waiting, 'x');
  const idle = queue.get();
  queue.shutDown();
  assert.equal(await idle, undefined);
  queue.add('y');
  assert.equal(await queue.get(), undefined);
});

test('failures back off exponentially up to the cap; forget resets', () => {
  const { queue, timers } = setup();
  const delays = Array.from({ length: 10 }, () => queue.addRateLimited('k'));
  assert.deepEqual(delays, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
  assert.equal(timers.size, 1, 'one pending timer per key: the earliest');
  timers.advance(4);
  assert.equal(queue.length, 0);
  timers.advance(1);
  assert.equal(queue.length, 1);
  queue.forget('k');
  assert.equal(queue.addRateLimited('k'), 5);
});

test('addAfter keeps the earliest deadline per key', () => {
  const { queue, timers } = setup();
  queue.addAfter('k', 100);
  queue.addAfter('k', 50);
  queue.addAfter('k', 80);
  assert.equal(timers.size, 1);
  timers.advance(50);
  assert.equal(queue.length, 1);
});

test('random interleavings never give one key to two workers (seeded)', async () => {
  const seed = Number(process.env['QUEUE_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
  try {
    const random = new SeededRandom(seed);
    const { queue } = setup();
    const held = new Set<string>();
    const pending: string[] = [];
    for (let step = 0; step < 5000; step++) {
      const choice = random.int(3);
      if (choice === 0) queue.add(`k${random.int(5)}`);
      else if (choice === 1 && queue.length > 0) {
        const key = await queue.get();
        assert.ok(key !== undefined && !held.has(key), `key ${key} handed out twice`);
        held.add(key);
        pending.push(key);
      } else if (pending.length > 0) {
        const key = pending.splice(random.int(pending.length), 1)[0]!;
        held.delete(key);
        queue.done(key);
      }
    }
  } catch (error) {
    throw new Error(`failed with QUEUE_SEED=${seed}`, { cause: error });
  }
});
