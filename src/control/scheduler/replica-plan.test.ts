import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planReplica, type ReplicaPlan } from './replica-plan.ts';
import type { SchedulingInput } from './replica-scheduler.ts';
import { input, isoAgo, node, nowMs, replica, volume } from './testing/scheduler-fixtures.ts';

interface Case {
  rule: string;
  input: SchedulingInput;
  expect: (plan: ReplicaPlan) => void;
}

const reuses = (name: string) => (plan: ReplicaPlan) => {
  assert.equal(plan.kind, 'reuse', JSON.stringify(plan));
  if (plan.kind === 'reuse') assert.equal(plan.replica.metadata.name, name);
};
const creates = (nodeID: string) => (plan: ReplicaPlan) => {
  assert.equal(plan.kind, 'create', JSON.stringify(plan));
  if (plan.kind === 'create') assert.equal(plan.placement.nodeID, nodeID);
};
const waitsUntil = (ms: number, waitingFor: string[]) => (plan: ReplicaPlan) => {
  assert.deepEqual(plan, { kind: 'wait', untilMs: ms, waitingFor });
};

const healthy = [node('n1'), node('n2'), node('n3')];

const cases: Case[] = [
  {
    rule: 'a new volume with no failed replicas gets a new replica',
    input: input({ nodes: healthy }),
    expect: creates('n1'),
  },
  {
    rule: 'a failed replica whose node and disk are back is rebuilt in place',
    input: input({ volume: volume({ lastDegradedAt: isoAgo(30) }), nodes: healthy, replicas: [replica('r1', 'n1'), replica('r2', 'n2', 'd1', { failedAt: isoAgo(30) })] }),
    expect: reuses('r2'),
  },
  {
    rule: 'reuse does not wait for the replenishment interval and ignores it once passed',
    input: input({ volume: volume({ lastDegradedAt: isoAgo(7200) }), nodes: healthy, replicas: [replica('r2', 'n2', 'd1', { failedAt: isoAgo(7200) })] }),
    expect: reuses('r2'),
  },
  {
    rule: 'among reusable failed replicas the most recently failed wins',
    input: input({
      nodes: healthy,
      replicas: [replica('r1', 'n1', 'd1', { failedAt: isoAgo(300) }), replica('r2', 'n2', 'd1', { failedAt: isoAgo(100) }), replica('r3', 'n3', 'd1', { failedAt: isoAgo(200) })],
    }),
    expect: reuses('r2'),
  },
  {
    rule: 'a failed replica whose node is down is waited for until lastDegradedAt + replica-replenishment-wait-interval',
    input: input({ volume: volume({ lastDegradedAt: isoAgo(100) }), nodes: [node('n1'), node('n2', { ready: false }), node('n3')], replicas: [replica('r1', 'n1'), replica('r2', 'n2', 'd1', { failedAt: isoAgo(100) })] }),
    expect: waitsUntil(nowMs - 100_000 + 600_000, ['r2']),
  },
  {
    rule: 'after the wait a new replica is placed elsewhere, away from the failed replica\'s node',
    input: input({ volume: volume({ lastDegradedAt: isoAgo(700) }), nodes: [node('n1'), node('n2', { ready: false }), node('n3')], replicas: [replica('r1', 'n1'), replica('r2', 'n2', 'd1', { failedAt: isoAgo(700) })] }),
    expect: creates('n3'),
  },
  {
    rule: 'the wait interval comes from the setting',
    input: input(
      { volume: volume({ lastDegradedAt: isoAgo(100) }), nodes: [node('n1'), node('n2', { ready: false }), node('n3')], replicas: [replica('r2', 'n2', 'd1', { failedAt: isoAgo(100) })] },
      { 'replica-replenishment-wait-interval': '60' },
    ),
    expect: creates('n1'),
  },
  {
    rule: 'a failed replica past 5 rebuild retries is neither reused nor waited for',
    input: input({ volume: volume({ lastDegradedAt: isoAgo(30) }), nodes: healthy, replicas: [replica('r1', 'n1'), replica('r2', 'n2', 'd1', { failedAt: isoAgo(30), rebuildRetryCount: 5 })] }),
    expect: creates('n2'),
  },
  {
    rule: 'a failed replica asked to be evicted is not reused',
    input: input({ nodes: healthy, replicas: [replica('r1', 'n1'), replica('r2', 'n2', 'd1', { failedAt: isoAgo(30), evictionRequested: true })] }),
    expect: creates('n2'),
  },
  {
    rule: 'a failed replica whose disk is gone is waited for, not reused',
    input: input({ volume: volume({ lastDegradedAt: isoAgo(30) }), nodes: healthy, replicas: [replica('r2', 'n2', 'd9', { failedAt: isoAgo(30) })] }),
    expect: waitsUntil(nowMs - 30_000 + 600_000, ['r2']),
  },
  {
    rule: 'a failed replica on a disk under pressure but not full is reused (its space is already counted)',
    input: input({ nodes: [node('n1', { disks: { d1: { availableGiB: 5, schedulable: { status: 'False', reason: 'DiskPressure' } } } })], replicas: [replica('r1', 'n1', 'd1', { failedAt: isoAgo(30) })] }),
    expect: reuses('r1'),
  },
  {
    rule: 'a failed replica on a disk that was disabled for scheduling is not reused',
    input: input({ volume: volume({ lastDegradedAt: isoAgo(30) }), nodes: [node('n1', { disks: { d1: { allowScheduling: false } } }), node('n2')], replicas: [replica('r1', 'n1', 'd1', { failedAt: isoAgo(30) })] }),
    expect: (plan) => assert.equal(plan.kind, 'wait'),
  },
  {
    rule: 'a failed replica on a node that lost a selector tag is not reused',
    input: input({ volume: volume({ nodeSelector: ['fast'], lastDegradedAt: isoAgo(30) }), nodes: [node('n1'), node('n2', { tags: ['fast'] })], replicas: [replica('r1', 'n1', 'd1', { failedAt: isoAgo(30) })] }),
    expect: (plan) => assert.equal(plan.kind, 'wait'),
  },
  {
    rule: 'strict-local reuses only a replica on the attached node',
    input: input({
      volume: volume({ dataLocality: 'strict-local', numberOfReplicas: 1, nodeID: 'n2', lastDegradedAt: isoAgo(900) }),
      nodes: healthy,
      replicas: [replica('r1', 'n1', 'd1', { failedAt: isoAgo(900) })],
    }),
    expect: creates('n2'),
  },
  {
    rule: 'nothing fits: the plan says why',
    input: input({ nodes: [node('n1', { ready: false })] }),
    expect: (plan) => assert.deepEqual(plan, { kind: 'unschedulable', reason: 'nodes-unavailable', message: 'node n1 is not ready' }),
  },
];

for (const c of cases) {
  test(`replenishment rule: ${c.rule}`, () => c.expect(planReplica(c.input)));
}
