// The recurring-job driver against a real embedded store with a hand-moved wall clock. The test
// plays the snapshot controller's part (marks Snapshot resources ready), because that one needs
// running engines; test/e2e/recurring-jobs.test.ts runs the whole thing with real processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../lib/clock.ts';
import type { RecurringJob, RecurringJobSpec } from '../resources/recurring-job.ts';
import type { Snapshot } from '../resources/snapshot.ts';
import type { Volume } from '../resources/volume.ts';
import { artifactJobLabel, artifactLabels, artifactName } from '../recurring/job-artifacts.ts';
import { joinLabel } from '../recurring/job-targets.ts';
import { waitUntil } from '../runtime/testing/wait-until.ts';
import { realTimers } from '../runtime/timers.ts';
import { SqliteStore } from '../store/sqlite-store.ts';
import { RecurringJobController, runNowAnnotation } from './recurring-job-controller.ts';

const startMs = Date.parse('2026-11-28T00:00:30Z');

interface Fixture {
  readonly store: SqliteStore;
  readonly clock: ManualClock;
  readonly logs: string[];
  controller(headSizeBytes?: (volume: Volume) => Promise<number | undefined>): RecurringJobController;
  close(): Promise<void>;
}

function fixture(): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'shorthorn-recurring-'));
  const clock = new ManualClock(startMs);
  const store = new SqliteStore({ dataDir: dir, clock, pollIntervalMs: 10 });
  const logs: string[] = [];
  // Plays the snapshot controller: every snapshot asked for becomes ready.
  const stop = new AbortController();
  const snapshotter = (async () => {
    while (!stop.signal.aborted) {
      for (const item of (await store.list('Snapshot')).items as Snapshot[]) {
        if (item.status?.readyToUse !== true && item.metadata.deletionTimestamp === undefined) {
          await store.updateStatus({ ...item, status: { readyToUse: true, userCreated: true, creationTime: new Date(clock.nowMs()).toISOString() } }).catch(() => undefined);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  const controllers: RecurringJobController[] = [];
  return {
    store,
    clock,
    logs,
    controller: (headSizeBytes?: (volume: Volume) => Promise<number | undefined>) => {
      const controller = new RecurringJobController({
        store, managerId: 'mgr-1', clock, timers: realTimers, recheckMs: 20, pollMs: 5,
        log: (message) => logs.push(message),
        ...(headSizeBytes === undefined ? {} : { headSizeBytes }),
      });
      controllers.push(controller);
      return controller;
    },
    close: async () => {
      for (const controller of controllers) await controller.stop();
      stop.abort();
      await snapshotter;
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function attachedVolume(store: SqliteStore, name: string, labels: Record<string, string>): Promise<void> {
  const created = await store.create({
    apiVersion: 'shorthorn.io/v1', kind: 'Volume', metadata: { name, labels },
    spec: { size: 1 << 30, numberOfReplicas: 1 },
  });
  await store.updateStatus({ ...created, status: { state: 'attached', robustness: 'healthy' } });
}

async function createJob(store: SqliteStore, name: string, spec: Partial<RecurringJobSpec>): Promise<void> {
  await store.create({
    apiVersion: 'shorthorn.io/v1', kind: 'RecurringJob', metadata: { name },
    spec: { task: 'snapshot', cron: '* * * * *', retain: 3, concurrency: 2, groups: [], labels: {}, parameters: {}, ...spec },
  });
}

async function job(store: SqliteStore, name: string): Promise<RecurringJob> {
  return (await store.get('RecurringJob', name)) as RecurringJob;
}

async function ownSnapshots(store: SqliteStore, jobName: string, volume: string): Promise<string[]> {
  const { items } = await store.list('Snapshot', { labelSelector: `${artifactJobLabel}=${jobName}` });
  return (items as Snapshot[]).filter((s) => s.spec.volume === volume && s.metadata.deletionTimestamp === undefined).map((s) => s.metadata.name).sort();
}

async function runFinished(f: Fixture, name: string, count: number): Promise<void> {
  await waitUntil(`job ${name} run ${count} finished`, async () => {
    const status = (await job(f.store, name)).status;
    return status?.executionCount === count && status.currentRun === undefined && status.lastRunFinishedAt !== undefined;
  });
}

test('snapshot job, retain 3: one run per minute, the newest three of its own kept, a user\'s and another job\'s untouched', async () => {
  const f = fixture();
  try {
    await attachedVolume(f.store, 'vol-a', { [joinLabel('job', 'snap')]: 'enabled', [joinLabel('job', 'other')]: 'enabled' });
    await attachedVolume(f.store, 'vol-b', {}); // default group only: not this job's
    await f.store.create({
      apiVersion: 'shorthorn.io/v1', kind: 'Snapshot', metadata: { name: 'users-own', labels: { shorthornvolume: 'vol-a' } },
      spec: { volume: 'vol-a', createSnapshot: true, labels: { [artifactJobLabel]: 'snap' } },
    });
    const otherSlot = startMs - 3600_000;
    await f.store.create({
      apiVersion: 'shorthorn.io/v1', kind: 'Snapshot',
      metadata: { name: artifactName('other', otherSlot, 'vol-a'), labels: artifactLabels('other', otherSlot, 'vol-a') },
      spec: { volume: 'vol-a', createSnapshot: true, labels: {} },
    });
    await createJob(f.store, 'snap', {});
    await f.controller().start();
    await waitUntil('next run shown', async () => (await job(f.store, 'snap')).status?.nextRunAt === '2026-11-28T00:01:00.000Z');
    assert.equal((await job(f.store, 'snap')).status?.executionCount, undefined, 'nothing runs before the first slot');
    const made: string[] = [];
    for (let minute = 1; minute <= 5; minute++) {
      f.clock.advance(60_000);
      await runFinished(f, 'snap', minute);
      made.push(artifactName('snap', Date.parse(`2026-11-28T00:0${minute}:00Z`), 'vol-a'));
    }
    const status = (await job(f.store, 'snap')).status!;
    assert.equal(status.lastRunResult, 'Succeeded', status.lastError);
    assert.equal(status.lastScheduledAt, '2026-11-28T00:05:00.000Z');
    assert.equal(status.nextRunAt, '2026-11-28T00:06:00.000Z');
    assert.match(status.volumes?.['vol-a'] ?? '', /^snapshot snap-.*deleted/);
    assert.equal(status.volumes?.['vol-b'], undefined);
    assert.deepEqual(await ownSnapshots(f.store, 'snap', 'vol-a'), made.slice(2).sort());
    await f.store.get('Snapshot', 'users-own');
    await f.store.get('Snapshot', artifactName('other', otherSlot, 'vol-a'));
  } finally {
    await f.close();
  }
});

test('a manager down for ten slots runs once when it returns; a run left unfinished by a crash is resumed, not repeated', async () => {
  const f = fixture();
  try {
    await attachedVolume(f.store, 'vol-a', { [joinLabel('group', 'gold')]: 'enabled' });
    await createJob(f.store, 'snap', { groups: ['gold'], retain: 2 });
    const first = f.controller();
    await first.start();
    f.clock.advance(60_000);
    await runFinished(f, 'snap', 1);
    await first.stop();
    f.clock.advance(10 * 60_000);
    const second = f.controller();
    await second.start();
    await runFinished(f, 'snap', 2);
    const status = (await job(f.store, 'snap')).status!;
    assert.match(status.message ?? '', /10 slots since the last run folded/);
    assert.equal(status.lastScheduledAt, '2026-11-28T00:11:00.000Z');
    await second.stop();
    assert.equal((await job(f.store, 'snap')).status?.executionCount, 2, 'still one catch-up run');

    // A crash after run 3 was recorded and its snapshot made, before retention and the outcome.
    const slot = '2026-11-28T00:12:00.000Z';
    const slotMs = Date.parse(slot);
    f.clock.advance(60_000);
    await f.store.create({
      apiVersion: 'shorthorn.io/v1', kind: 'Snapshot',
      metadata: { name: artifactName('snap', slotMs, 'vol-a'), labels: artifactLabels('snap', slotMs, 'vol-a') },
      spec: { volume: 'vol-a', createSnapshot: true, labels: {} },
    });
    const crashed = await job(f.store, 'snap');
    await f.store.updateStatus({
      ...crashed,
      status: { ...crashed.status, executionCount: 3, lastScheduledAt: slot, currentRun: { number: 3, slot, trigger: 'schedule', startedAt: slot } },
    });
    const third = f.controller();
    await third.start();
    await runFinished(f, 'snap', 3);
    assert.ok(f.logs.some((line) => /resuming run 3/.test(line)));
    assert.deepEqual(
      await ownSnapshots(f.store, 'snap', 'vol-a'),
      [artifactName('snap', Date.parse('2026-11-28T00:11:00Z'), 'vol-a'), artifactName('snap', slotMs, 'vol-a')].sort(),
      'retention applied by the resumed run; no second snapshot for slot 00:12',
    );
    assert.equal((await job(f.store, 'snap')).status?.executionCount, 3);
  } finally {
    await f.close();
  }
});

test('run now runs once off schedule; concurrency bounds the volumes in flight; a detached volume is skipped with a reason', async () => {
  const f = fixture();
  try {
    for (const name of ['v1', 'v2', 'v3', 'v4', 'v5']) await attachedVolume(f.store, name, { [joinLabel('job', 'snap')]: 'enabled' });
    const detached = await f.store.create({
      apiVersion: 'shorthorn.io/v1', kind: 'Volume', metadata: { name: 'v6', labels: { [joinLabel('job', 'snap')]: 'enabled' } },
      spec: { size: 1 << 30, numberOfReplicas: 1 },
    });
    await f.store.updateStatus({ ...detached, status: { state: 'detached' } });
    await createJob(f.store, 'snap', { cron: '0 0 1 1 *', concurrency: 2 });
    // Count snapshots not yet ready at any moment: at most `concurrency` volumes wait at once.
    let highest = 0;
    const watching = setInterval(() => {
      void f.store.list('Snapshot').then(({ items }) => {
        const waiting = (items as Snapshot[]).filter((s) => s.status?.readyToUse !== true).length;
        highest = Math.max(highest, waiting);
      });
    }, 1);
    const controller = f.controller();
    await controller.start();
    const current = await job(f.store, 'snap');
    await f.store.update({ ...current, metadata: { ...current.metadata, annotations: { [runNowAnnotation]: '2026-11-28T00:00:31Z' } } });
    await runFinished(f, 'snap', 1);
    clearInterval(watching);
    const status = (await job(f.store, 'snap')).status!;
    assert.equal(status.lastRunNowRequest, '2026-11-28T00:00:31Z');
    assert.equal(status.lastScheduledAt, undefined, 'run now is not a slot');
    assert.match(status.volumes?.['v6'] ?? '', /skipped: the volume is detached/);
    assert.equal((await f.store.list('Snapshot')).items.length, 5);
    assert.ok(highest <= 2, `at most 2 volumes at once, saw ${highest}`);
    // The same request again is not a new request.
    f.clock.advance(1000);
    const looks = controller.stats.looks;
    await waitUntil('three more looks', () => controller.stats.looks >= looks + 3);
    assert.equal((await job(f.store, 'snap')).status?.executionCount, 1);
  } finally {
    await f.close();
  }
});

test('snapshot skips a volume with nothing written since its last snapshot; snapshot-force-create does not', async () => {
  const f = fixture();
  try {
    await attachedVolume(f.store, 'idle', { [joinLabel('group', 'g')]: 'enabled' });
    await attachedVolume(f.store, 'busy', { [joinLabel('group', 'g')]: 'enabled' });
    await createJob(f.store, 'snap', { groups: ['g'] });
    await createJob(f.store, 'force', { groups: ['g'], task: 'snapshot-force-create' });
    await f.controller((volume) => Promise.resolve(volume.metadata.name === 'idle' ? 0 : 4096)).start();
    f.clock.advance(60_000);
    await runFinished(f, 'snap', 1);
    await runFinished(f, 'force', 1);
    const snap = (await job(f.store, 'snap')).status!;
    assert.match(snap.volumes?.['idle'] ?? '', /^skipped: nothing written since the last snapshot/);
    assert.match(snap.volumes?.['busy'] ?? '', /^snapshot snap-/);
    assert.equal(snap.lastRunResult, 'Succeeded');
    assert.deepEqual(await ownSnapshots(f.store, 'snap', 'idle'), []);
    assert.equal((await ownSnapshots(f.store, 'force', 'idle')).length, 1);
  } finally {
    await f.close();
  }
});

test('S27: a wall clock stepped back an hour: a per-minute job runs again one minute of real time after its last run, not an hour later', async () => {
  const f = fixture();
  try {
    await attachedVolume(f.store, 'vol-a', { [joinLabel('job', 'snap')]: 'enabled' });
    await createJob(f.store, 'snap', {});
    await f.controller().start();
    f.clock.advance(60_000);
    await runFinished(f, 'snap', 1);
    f.clock.jumpWall(-3600_000); // now 2026-11-27T23:01:30Z
    f.clock.advance(30_000);
    await waitUntil('the step back noticed', async () => /behind the last run's slot/.test((await job(f.store, 'snap')).status?.message ?? ''));
    assert.equal((await job(f.store, 'snap')).status?.executionCount, 1, 'half a period of real time: not yet');
    f.clock.advance(30_000);
    await runFinished(f, 'snap', 2);
    const status = (await job(f.store, 'snap')).status!;
    assert.equal(status.lastScheduledAt, '2026-11-27T23:02:00.000Z', 'the slot the wall clock is in now');
    f.clock.advance(60_000);
    await runFinished(f, 'snap', 3);
    assert.equal((await job(f.store, 'snap')).status?.lastScheduledAt, '2026-11-27T23:03:00.000Z', 'then the schedule in the new wall time');
  } finally {
    await f.close();
  }
});
