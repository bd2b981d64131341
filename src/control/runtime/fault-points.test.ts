// The manager's fault points: parsing of SHORTHORN_MANAGER_CRASH_AT and the n-th pass that crashes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { armFaultPoints, noFaultPoints, parseCrashAt } from './fault-points.ts';

test('parseCrashAt: POINT or POINT:N, comma separated; anything else is refused', () => {
  assert.deepEqual(parseCrashAt(''), []);
  assert.deepEqual(parseCrashAt('volume:replica-created:2, salvage:faulted-recorded'), [
    { point: 'volume:replica-created', count: 2 },
    { point: 'salvage:faulted-recorded', count: 1 },
  ]);
  for (const bad of ['replica-created', 'volume:replica-created:0', 'Volume:x', 'volume:x:2:3', 'volume:']) {
    assert.equal(typeof parseCrashAt(bad), 'string', bad);
  }
  const tooMany = parseCrashAt(Array.from({ length: 17 }, (_, i) => `a:p${i}`).join(','));
  assert.ok(typeof tooMany === 'string' && /at most 16/.test(tooMany));
});

test('armFaultPoints: crashes on the armed pass only, after its marker line; unarmed and untraced is the no-op', () => {
  assert.equal(armFaultPoints([], { trace: false, log: () => undefined, crash: () => undefined }), noFaultPoints);
  const lines: string[] = [];
  let crashes = 0;
  const points = armFaultPoints([{ point: 'a:b', count: 2 }], { trace: true, log: (l) => lines.push(l), crash: () => crashes++ });
  points.pass('a:b');
  points.pass('c:d');
  assert.equal(crashes, 0);
  points.pass('a:b');
  assert.equal(crashes, 1);
  assert.deepEqual(lines, ['fault point a:b passed (1)', 'fault point c:d passed (1)', 'fault point a:b passed (2)', 'fault point a:b reached (pass 2): SIGKILL']);
  points.pass('a:b');
  assert.equal(crashes, 1, 'only the armed pass');
});
