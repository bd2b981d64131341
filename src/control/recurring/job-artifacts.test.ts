import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Snapshot } from '../resources/snapshot.ts';
import {
  artifactLabels,
  artifactName,
  backupModeForRun,
  beyondRetain,
  ownArtifacts,
  snapshotTime,
  systemSnapshots,
  userSnapshots,
} from './job-artifacts.ts';
import { forEachLimited } from './for-each-limited.ts';

function snapshot(name: string, options: { labels?: Record<string, string>; volume?: string; userCreated?: boolean; creationTime?: string; removed?: boolean } = {}): Snapshot {
  return {
    apiVersion: 'shorthorn.io/v1',
    kind: 'Snapshot',
    metadata: { name, labels: options.labels ?? { shorthornvolume: options.volume ?? 'vol' } },
    spec: { volume: options.volume ?? 'vol', createSnapshot: true, labels: {} },
    status: {
      ...(options.userCreated === undefined ? {} : { userCreated: options.userCreated }),
      ...(options.creationTime === undefined ? {} : { creationTime: options.creationTime }),
      ...(options.removed === true ? { markRemoved: true } : {}),
    },
  };
}

const jobSnapshot = (job: string, slotMs: number, volume = 'vol'): Snapshot =>
  snapshot(artifactName(job, slotMs, volume), { labels: artifactLabels(job, slotMs, volume), volume });

test('artifact names are valid resource names, stable for (job, slot, volume), distinct across volumes and slots', () => {
  const name = artifactName('j'.repeat(40), Date.parse('2026-11-28T00:00:00Z'), 'vol-1');
  assert.ok(name.length <= 63, name);
  assert.match(name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  assert.equal(artifactName('job', 5000, 'a'), artifactName('job', 5000, 'a'));
  assert.notEqual(artifactName('job', 5000, 'a'), artifactName('job', 5000, 'b'));
  assert.notEqual(artifactName('job', 5000, 'a'), artifactName('job', 6000, 'a'));
});

test('retention keeps the newest `retain` of the job\'s own snapshots; never a user\'s or another job\'s', () => {
  const mine = [1, 2, 3, 4, 5].map((s) => jobSnapshot('snap', s * 60_000));
  const others = [
    snapshot('users-one', { userCreated: true }),
    snapshot('users-forged', { userCreated: true }), // a user's labels live in spec.labels, not here
    jobSnapshot('other-job', 10_000),
    jobSnapshot('snap', 10_000, 'other-volume'),
  ];
  const all = [...others, ...mine];
  const own = ownArtifacts(all, 'snap', 'vol');
  assert.deepEqual(own.map((s) => s.metadata.name).sort(), mine.map((s) => s.metadata.name).sort());
  assert.deepEqual(beyondRetain(own, 3).map((s) => s.metadata.name), [mine[1]!, mine[0]!].map((s) => s.metadata.name));
  assert.deepEqual(beyondRetain(own, 10), []);
  assert.equal(beyondRetain(own, 0).length, 5);
  const removed = { ...mine[4]!, status: { markRemoved: true } };
  assert.equal(ownArtifacts([removed], 'snap', 'vol').length, 0, 'deleted ones do not count toward retain');
});

test('snapshot-delete orders every non-system snapshot by creation time; snapshot-cleanup takes system ones', () => {
  const items = [
    snapshot('a', { creationTime: '2026-11-28T00:00:03Z', userCreated: true }),
    snapshot('b', { creationTime: '2026-11-28T00:00:01Z', userCreated: true }),
    snapshot('c', { creationTime: '2026-11-28T00:00:02Z', userCreated: false }),
    snapshot('d', { creationTime: '2026-11-28T00:00:04Z' }),
    snapshot('e', { creationTime: '2026-11-28T00:00:00Z', volume: 'other' }),
  ];
  const users = userSnapshots(items, 'vol');
  assert.deepEqual(users.map((s) => s.metadata.name), ['a', 'b', 'd']);
  assert.deepEqual(beyondRetain(users, 1, snapshotTime).map((s) => s.metadata.name), ['a', 'b']);
  assert.deepEqual(systemSnapshots(items, 'vol').map((s) => s.metadata.name), ['c']);
});

test('full backup every N-th run (Longhorn: run % N == 0); 0 or unset: always incremental', () => {
  assert.deepEqual([1, 2, 3, 4].map((run) => backupModeForRun(run, 2)), ['incremental', 'full', 'incremental', 'full']);
  assert.deepEqual([1, 2, 3].map((run) => backupModeForRun(run, 0)), ['incremental', 'incremental', 'incremental']);
  assert.equal(backupModeForRun(7, undefined), 'incremental');
  assert.equal(backupModeForRun(3, 1), 'full');
});

test('forEachLimited: never more than `limit` in flight, every item runs even when some fail', async () => {
  let inFlight = 0;
  let highest = 0;
  const seen: number[] = [];
  const items = Array.from({ length: 25 }, (_, i) => i);
  await forEachLimited(items, 4, async (i) => {
    inFlight++;
    highest = Math.max(highest, inFlight);
    await new Promise((resolve) => setImmediate(resolve));
    seen.push(i);
    inFlight--;
  });
  assert.equal(highest, 4);
  assert.deepEqual(seen.sort((a, b) => a - b), items);
  await assert.rejects(forEachLimited(items, 0, async () => {}), /concurrency/);
  const ran: number[] = [];
  await assert.rejects(
    forEachLimited(items, 3, async (i) => {
      ran.push(i);
      await new Promise((resolve) => setImmediate(resolve));
      if (i % 5 === 0) throw new Error(`item ${i} failed`);
    }),
    /item 0 failed/,
  );
  assert.equal(ran.length, items.length);
});
