// The read lease's pure rule and its bookkeeping (read-lease.ts), on a clock moved by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { ReadLease, readLeaseRefusal, readLeaseWaitMs, type LeaseLink } from './read-lease.ts';

const rule = (nowMs: number, sentMs: readonly (number | undefined)[], minimumReplicas = 2): string | null =>
  readLeaseRefusal({ minimumReplicas, leaseMs: 1000, nowMs, sentMs });

test('w = 2: two fresh answers allow a read; one stale or missing refuses it', () => {
  assert.equal(rule(5000, [4500, 4100]), null);
  assert.equal(rule(5000, [4000, 4000]), null, 'exactly the lease old still counts');
  assert.match(rule(5000, [4500, 3999]) ?? '', /^1 of 2 rw replicas answered within the read lease of 1000 ms, fewer than the minimum 2$/);
  assert.match(rule(5000, [4500, undefined]) ?? '', /1 of 2 rw replicas/);
  assert.equal(rule(5000, [3000, 4500, 4900]), null, 'any w of the rw replicas will do');
  assert.match(rule(5000, [3000, 2000, 4900]) ?? '', /1 of 3 rw replicas/);
});

test('fewer rw replicas than w refuses whatever their answers; w = 1 never refuses', () => {
  assert.equal(rule(5000, [4999]), '1 rw replicas, fewer than the minimum 2');
  assert.equal(rule(5000, []), '0 rw replicas, fewer than the minimum 2');
  assert.equal(rule(1e9, [0], 1), null);
  assert.equal(rule(1e9, [undefined], 1), null);
});

test('a stall past the lease refuses even though the answers were fine before it', () => {
  const clock = new ManualClock();
  const lease = new ReadLease({ minimumReplicas: 2, leaseMs: 1000, clock });
  const [a, b]: LeaseLink[] = [{ ping: () => Promise.resolve() }, { ping: () => Promise.resolve() }];
  clock.advance(100);
  lease.answered(a!, 100);
  lease.answered(b!, 90);
  assert.equal(lease.refusal([a!, b!]), null);
  clock.advance(990); // now 1090: b's answer was sent 1000 ms ago
  assert.equal(lease.refusal([a!, b!]), null);
  clock.advance(1); // the process stalled past the lease: judged when the read is served
  assert.match(lease.refusal([a!, b!]) ?? '', /1 of 2 rw replicas/);
  clock.advance(5000);
  assert.match(lease.refusal([a!, b!]) ?? '', /0 of 2 rw replicas/);
  // An older answer arriving late does not move the time back.
  lease.answered(a!, 6000);
  lease.answered(a!, 50);
  lease.answered(b!, 6050);
  assert.equal(lease.refusal([a!, b!]), null);
});

test('renew pings every replica once for concurrent callers and notes the send time, not the answer time', async () => {
  const clock = new ManualClock();
  const lease = new ReadLease({ minimumReplicas: 2, leaseMs: 1000, clock });
  let pings = 0;
  const slow: LeaseLink = {
    ping: async () => {
      pings++;
      await Promise.resolve();
      clock.advance(600); // the answer takes 600 ms
    },
  };
  const failing: LeaseLink = { ping: () => Promise.reject(new Error('timed out')) };
  const fast: LeaseLink = { ping: () => Promise.resolve() };
  clock.advance(10_000);
  const [first, second] = await Promise.all([lease.renew([slow, failing, fast]), lease.renew([slow, failing, fast])]);
  assert.equal(pings, 1, 'one round for both callers');
  assert.equal(first.length, 1, 'the failed ping is reported');
  assert.equal(second, first);
  assert.match(lease.refusal([failing, fast]) ?? '', /1 of 2 rw replicas/, 'a failed ping notes nothing');
  // Both pings were sent at 10000; slow's answer came at 10600. Fresh until 11000, by the send time.
  assert.equal(lease.refusal([slow, fast]), null);
  clock.advance(400);
  assert.equal(lease.refusal([slow, fast]), null);
  clock.advance(1);
  assert.match(lease.refusal([slow, fast]) ?? '', /0 of 2 rw replicas/, 'slow counts from when its ping was sent');
  await lease.renew([slow, slow]);
  assert.equal(pings, 3, 'a later call starts a new round');
});

test('refusals are logged at most once every 10 s; the start waits the lease and a margin', () => {
  const clock = new ManualClock();
  const lease = new ReadLease({ minimumReplicas: 2, leaseMs: 1000, clock });
  assert.equal(lease.shouldLogRefusal(), true);
  clock.advance(9999);
  assert.equal(lease.shouldLogRefusal(), false);
  clock.advance(1);
  assert.equal(lease.shouldLogRefusal(), true);
  assert.equal(readLeaseWaitMs(3500), 3500 + 35 + 100);
  assert.throws(() => new ReadLease({ minimumReplicas: 2, leaseMs: 0, clock }), /read lease 0 ms/);
});
