// The data-integrity driver against a real embedded store with a hand-moved wall clock. The
// engine's scrub is the test's function (the options' `scrub` port), because a real one needs
// running engine and replica processes: test/e2e/data-integrity.test.ts runs the whole thing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../lib/clock.ts';
import { resourceExamples } from '../resources/testing/resource-examples.ts';
import type { Volume } from '../resources/volume.ts';
import { waitUntil } from '../runtime/testing/wait-until.ts';
import { realTimers } from '../runtime/timers.ts';
import { SqliteStore } from '../store/sqlite-store.ts';
import { DataIntegrityController } from './data-integrity-controller.ts';
import { snapshotCheckAnnotation } from './data-integrity-reconcile.ts';
import { EngineControlError, type EngineScrubReport, type EngineScrubRequest } from './engine-control-client.ts';

const replicas = { 'v-r-1': '127.0.0.1:10001', 'v-r-2': '127.0.0.1:10002', 'v-r-3': '127.0.0.1:10003' };
const clean: EngineScrubReport = {
  replicas: Object.values(replicas), layersChecked: 1, chunksChecked: 4, mismatchCount: 0, mismatches: [], disagreeing: [], markedErr: [],
  comparable: true, corruptCount: 0, corrupt: [], bytesVerified: 0, storedChecksumErrors: [],
};

interface Call {
  readonly address: string;
  readonly request: EngineScrubRequest;
}

async function setUp(store: SqliteStore, clock: ManualClock): Promise<void> {
  const base = resourceExamples.Volume;
  const created = await store.create({
    ...base,
    metadata: { name: 'v', creationTimestamp: new Date(clock.nowMs()).toISOString() },
    spec: base.spec,
  });
  await store.updateStatus({ ...created, status: { ownerID: 'mgr-1', state: 'attached', robustness: 'healthy' } });
  const engine = resourceExamples.Engine;
  const stored = await store.create({ ...engine, metadata: { name: 'v-e-0' }, spec: { ...engine.spec, volumeName: 'v', replicaAddressMap: replicas } });
  await store.updateStatus({
    ...stored,
    status: { currentState: 'running', ip: '127.0.0.1', port: 9000, replicaModeMap: { 'v-r-1': 'RW', 'v-r-2': 'RW', 'v-r-3': 'RW' }, currentReplicaAddressMap: replicas },
  });
  await store.create({ ...resourceExamples.Setting, metadata: { name: 'snapshot-data-integrity-cronjob' }, spec: { value: '0 0 * * *' } });
}

test('scheduled checks once per slot, across a manager restart; a request; a busy engine is tried again, not recorded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shorthorn-integrity-'));
  const clock = new ManualClock(Date.parse('2026-11-01T23:59:50Z'));
  const store = new SqliteStore({ dataDir: dir, clock, pollIntervalMs: 10 });
  const calls: Call[] = [];
  let answer: () => EngineScrubReport = () => clean;
  const logs: string[] = [];
  const make = (): DataIntegrityController =>
    new DataIntegrityController({
      store, managerId: 'mgr-1', clock, timers: realTimers, recheckMs: 20, retryMs: 30_000, log: (m) => logs.push(m),
      scrub: (address, request) => {
        calls.push({ address, request });
        return Promise.resolve(answer());
      },
    });
  const volume = async (): Promise<Volume> => (await store.get('Volume', 'v')) as Volume;
  let controller = make();
  try {
    await setUp(store, clock);
    await controller.start();
    await waitUntil('the next check announced', async () => (await volume()).status?.dataIntegrity?.nextCheckAt === '2026-11-02T00:00:00.000Z');
    assert.equal(calls.length, 0);

    // The slot comes: one fast-check (the default mode) with markErr (3 rw replicas).
    clock.advance(15_000);
    await waitUntil('the slot checked', async () => (await volume()).status?.dataIntegrity?.lastCheckResult === 'clean');
    assert.deepEqual(calls, [{ address: '127.0.0.1:9000', request: { markErr: true, verifyData: false } }]);
    const recorded = (await volume()).status?.dataIntegrity;
    assert.equal(recorded?.lastScheduledAt, '2026-11-02T00:00:00.000Z');
    assert.equal(recorded?.nextCheckAt, '2026-11-03T00:00:00.000Z');
    assert.equal(recorded?.lastCheckTrigger, 'schedule');

    // A restart in the same slot does not check it again.
    await controller.stop();
    controller = make();
    await controller.start();
    const looks = controller.stats.looks;
    await waitUntil('several looks after the restart', () => controller.stats.looks >= looks + 5);
    assert.equal(calls.length, 1);

    // A request: a full check at once, off schedule; the mismatch is recorded by replica name.
    answer = () => ({ ...clean, disagreeing: [replicas['v-r-2']], markedErr: [replicas['v-r-2']], corruptCount: 1, corrupt: [{ layer: 's1', offsetBytes: 0, replica: replicas['v-r-2'], healthyElsewhere: true }] });
    const asked = await volume();
    await store.update({ ...asked, metadata: { ...asked.metadata, annotations: { [snapshotCheckAnnotation]: '2026-11-02T08:00:00.000Z' } } });
    await waitUntil('the request checked', async () => (await volume()).status?.dataIntegrity?.lastRequest === '2026-11-02T08:00:00.000Z');
    assert.deepEqual(calls[1], { address: '127.0.0.1:9000', request: { markErr: true, verifyData: true } });
    const mismatch = (await volume()).status?.dataIntegrity;
    assert.equal(mismatch?.lastCheckResult, 'mismatch');
    assert.deepEqual(mismatch?.markedFailed, ['v-r-2']);
    assert.equal(mismatch?.lastScheduledAt, '2026-11-02T00:00:00.000Z', 'a request does not move the schedule');
    assert.equal(calls.length, 2);

    // The next slot finds the engine busy: not recorded, tried again after retryMs, then recorded.
    let refusals = 0;
    answer = () => {
      refusals++;
      throw new EngineControlError('refused', 'Cannot scrub while purge runs', { status: 400, engineCode: 'invalid_argument' });
    };
    clock.advance(24 * 3600_000);
    await waitUntil('the busy engine refused', () => refusals === 1);
    await waitUntil('the refusal logged', () => logs.some((l) => /data check not done, tried again in 30 s: Cannot scrub while purge runs/.test(l)));
    assert.equal((await volume()).status?.dataIntegrity?.lastScheduledAt, '2026-11-02T00:00:00.000Z');
    answer = () => clean;
    clock.advance(10_000);
    const looksBefore = controller.stats.looks;
    await waitUntil('more looks', () => controller.stats.looks >= looksBefore + 3);
    assert.equal(calls.length, 3, 'not tried again before retryMs');
    clock.advance(30_000);
    await waitUntil('the slot checked after the retry', async () => (await volume()).status?.dataIntegrity?.lastScheduledAt === '2026-11-03T00:00:00.000Z');
    assert.equal(calls.length, 4);
    assert.equal((await volume()).status?.dataIntegrity?.lastCheckResult, 'clean');

    // Disabled on the volume: nothing more, and no next check announced.
    const disabled = await volume();
    await store.update({ ...disabled, spec: { ...disabled.spec, snapshotDataIntegrity: 'disabled' } });
    await waitUntil('next check cleared', async () => (await volume()).status?.dataIntegrity?.nextCheckAt === undefined);
    clock.advance(24 * 3600_000);
    const looksAfter = controller.stats.looks;
    await waitUntil('more looks', () => controller.stats.looks >= looksAfter + 3);
    assert.equal(calls.length, 4);
  } finally {
    await controller.stop();
    await controller.whenIdle();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
