import { test } from 'node:test';
import assert from 'node:assert/strict';
import { idleReleaseStep, idleCpuShareMax, type IdleReleaseAction, type IdleReleaseState } from './idle-memory-release.ts';
import { nativeFileIo } from '../replica/node/native-file-io.ts';

const intervalMs = 2000;
const busy = { cpuMicros: intervalMs * 1000 * idleCpuShareMax + 1, intervalMs };
const idle = { cpuMicros: intervalMs * 1000 * idleCpuShareMax, intervalMs };

function run(steps: readonly (typeof busy)[]): IdleReleaseAction[] {
  let state: IdleReleaseState = 'busy';
  return steps.map((interval) => {
    const next = idleReleaseStep(state, interval);
    state = next.state;
    return next.action;
  });
}

test('idle release: GC on the first idle interval after load, trim on the second, then nothing until load again', () => {
  assert.deepEqual(run([busy, idle, idle, idle, idle]), ['none', 'gc', 'trim', 'none', 'none']);
  assert.deepEqual(run([idle, idle, busy, busy, idle, idle, idle]), ['gc', 'trim', 'none', 'none', 'gc', 'trim', 'none']);
});

test('idle release: load between the GC and the trim starts over', () => {
  assert.deepEqual(run([busy, idle, busy, idle, idle]), ['none', 'gc', 'none', 'gc', 'trim']);
});

test('the addon offers malloc_trim on Linux', { skip: process.platform !== 'linux' }, () => {
  const load = nativeFileIo();
  assert.equal(load.kind, 'loaded', load.kind === 'absent' ? load.reason : '');
  if (load.kind !== 'loaded') return;
  assert.equal(typeof load.io.mallocTrim, 'function');
  assert.ok([0, 1].includes(load.io.mallocTrim!()));
});
