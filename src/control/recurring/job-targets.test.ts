import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../resources/object-meta.ts';
import { jobAppliesTo, joinLabel, volumesOfJob } from './job-targets.ts';

const volume = (name: string, labels: Record<string, string> = {}): Resource => ({
  apiVersion: 'shorthorn.io/v1',
  kind: 'Volume',
  metadata: { name, labels },
  spec: {},
});

test('a volume joins a job by its job label or by one of the job\'s groups; only "enabled" counts', () => {
  const job = { name: 'snap', groups: ['gold'] };
  assert.ok(jobAppliesTo(job, { [joinLabel('job', 'snap')]: 'enabled' }));
  assert.ok(jobAppliesTo(job, { [joinLabel('group', 'gold')]: 'enabled' }));
  assert.ok(!jobAppliesTo(job, { [joinLabel('job', 'snap')]: 'disabled' }));
  assert.ok(!jobAppliesTo(job, { [joinLabel('group', 'silver')]: 'enabled' }));
  assert.ok(!jobAppliesTo(job, { [joinLabel('job', 'other')]: 'enabled' }));
});

test('the default group takes volumes with no job or group label, and only those', () => {
  const job = { name: 'nightly', groups: ['default'] };
  assert.ok(jobAppliesTo(job, undefined));
  assert.ok(jobAppliesTo(job, { app: 'db' }), 'other labels do not count');
  assert.ok(!jobAppliesTo(job, { [joinLabel('job', 'other')]: 'enabled' }), 'a volume with a job label left the default group');
  assert.ok(!jobAppliesTo(job, { [joinLabel('group', 'gold')]: 'enabled' }));
  assert.ok(jobAppliesTo(job, { [joinLabel('group', 'default')]: 'enabled' }), 'unless it names default itself');
  assert.ok(jobAppliesTo(job, { [joinLabel('job', 'other')]: 'disabled' }), 'a disabled label is no label');
});

test('volumesOfJob lists the volumes in name order', () => {
  const job = { name: 'snap', groups: [] };
  const volumes = [volume('c', { [joinLabel('job', 'snap')]: 'enabled' }), volume('a', { [joinLabel('job', 'snap')]: 'enabled' }), volume('b')];
  assert.deepEqual(volumesOfJob(job, volumes).map((v) => v.metadata.name), ['a', 'c']);
});
