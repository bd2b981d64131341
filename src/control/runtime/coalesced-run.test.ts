import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoalescedRun } from './coalesced-run.ts';

test('CoalescedRun: kicks during a pass bring one more pass, never two at once; none after stop', async () => {
  let stopped = false;
  let passes = 0;
  let inPass = 0;
  let release: (() => void) | undefined;
  const run = new CoalescedRun(async () => {
    inPass++;
    assert.equal(inPass, 1, 'two passes at once');
    passes++;
    await new Promise<void>((resolve) => (release = resolve));
    inPass--;
  }, () => stopped);
  run.kick();
  for (let i = 0; i < 5; i++) run.kick();
  release?.();
  await new Promise((resolve) => setImmediate(resolve));
  release?.();
  await run.idle();
  assert.equal(passes, 2);
  stopped = true;
  run.kick();
  await run.idle();
  assert.equal(passes, 2);
});
