import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../lib/random.ts';
import { diskCapacityVerdict } from './disk-capacity.ts';
import { scheduleReplica, type ScheduleOptions, type SchedulingInput, type UnschedulableReason } from './replica-scheduler.ts';
import { gib, input, isoAgo, node, replica, volume } from './testing/scheduler-fixtures.ts';

type Expected = { node: string; disk?: string } | { reason: UnschedulableReason; message?: RegExp };

interface Case {
  rule: string;
  input: SchedulingInput;
  options?: ScheduleOptions;
  expect: Expected;
}

const cases: Case[] = [
  // --- choice among candidates ---
  {
    rule: 'the disk with the most available-minus-reserved space wins',
    input: input({ nodes: [node('n1', { disks: { d1: { availableGiB: 60 }, d2: { availableGiB: 90, reservedGiB: 40 }, d3: { availableGiB: 80 } } })] }),
    expect: { node: 'n1', disk: 'd3' },
  },
  {
    rule: 'ties are broken by node name, then disk name',
    input: input({ nodes: [node('n3'), node('n2', { disks: { d2: {}, d1: {} } })] }),
    expect: { node: 'n2', disk: 'd1' },
  },
  // --- node anti-affinity ---
  {
    rule: 'a replica goes to a node that holds none of the volume, even one with less space',
    input: input({ nodes: [node('n1', { disks: { d1: { availableGiB: 100 }, d2: { availableGiB: 100 } } }), node('n2', { disks: { d1: { availableGiB: 50 } } })], replicas: [replica('r1', 'n1')] }),
    expect: { node: 'n2' },
  },
  {
    rule: 'hard node anti-affinity (default): no second replica on a node',
    input: input({ nodes: [node('n1', { disks: { d1: {}, d2: {} } })], replicas: [replica('r1', 'n1')] }),
    expect: { reason: 'anti-affinity', message: /hard node anti-affinity/ },
  },
  {
    rule: 'soft node anti-affinity: a second replica may share a node, on another disk',
    input: input({ nodes: [node('n1', { disks: { d1: { availableGiB: 100 }, d2: { availableGiB: 50 } } })], replicas: [replica('r1', 'n1')] }, { 'replica-soft-anti-affinity': 'true' }),
    expect: { node: 'n1', disk: 'd2' },
  },
  {
    rule: 'the volume override replicaSoftAntiAffinity=enabled beats the hard global setting',
    input: input({ volume: volume({ replicaSoftAntiAffinity: 'enabled' }), nodes: [node('n1', { disks: { d1: {}, d2: {} } })], replicas: [replica('r1', 'n1')] }),
    expect: { node: 'n1', disk: 'd2' },
  },
  {
    rule: 'the volume override replicaSoftAntiAffinity=disabled beats a soft global setting',
    input: input(
      { volume: volume({ replicaSoftAntiAffinity: 'disabled' }), nodes: [node('n1', { disks: { d1: {}, d2: {} } })], replicas: [replica('r1', 'n1')] },
      { 'replica-soft-anti-affinity': 'true' },
    ),
    expect: { reason: 'anti-affinity' },
  },
  // --- zone anti-affinity ---
  {
    rule: 'an unused zone is preferred over an unused node in a used zone',
    input: input({
      nodes: [node('n1', { zone: 'a' }), node('n2', { zone: 'a', disks: { d1: { availableGiB: 100 } } }), node('n3', { zone: 'b', disks: { d1: { availableGiB: 40 } } })],
      replicas: [replica('r1', 'n1')],
    }),
    expect: { node: 'n3' },
  },
  {
    rule: 'soft zone anti-affinity (default): an unused node in a used zone is taken when no zone is free',
    input: input({ nodes: [node('n1', { zone: 'a' }), node('n2', { zone: 'a' })], replicas: [replica('r1', 'n1')] }),
    expect: { node: 'n2' },
  },
  {
    rule: 'hard zone anti-affinity: no replica in a zone that holds one',
    input: input({ nodes: [node('n1', { zone: 'a' }), node('n2', { zone: 'a' })], replicas: [replica('r1', 'n1')] }, { 'replica-zone-soft-anti-affinity': 'false' }),
    expect: { reason: 'anti-affinity', message: /hard zone, node/ },
  },
  {
    rule: 'hard zone anti-affinity holds even with soft node anti-affinity',
    input: input(
      { nodes: [node('n1', { zone: 'a', disks: { d1: {}, d2: {} } })], replicas: [replica('r1', 'n1')] },
      { 'replica-zone-soft-anti-affinity': 'false', 'replica-soft-anti-affinity': 'true' },
    ),
    expect: { reason: 'anti-affinity' },
  },
  {
    rule: 'nodes without a zone form one zone together',
    input: input({ nodes: [node('n1'), node('n2')], replicas: [replica('r1', 'n1')] }, { 'replica-zone-soft-anti-affinity': 'false' }),
    expect: { reason: 'anti-affinity' },
  },
  {
    rule: 'the volume override replicaZoneSoftAntiAffinity=disabled makes zones hard',
    input: input({ volume: volume({ replicaZoneSoftAntiAffinity: 'disabled' }), nodes: [node('n1', { zone: 'a' }), node('n2', { zone: 'a' })], replicas: [replica('r1', 'n1')] }),
    expect: { reason: 'anti-affinity' },
  },
  // --- disk anti-affinity ---
  {
    rule: 'a disk that holds no replica of the volume is preferred, even with less space',
    input: input(
      { nodes: [node('n1', { disks: { d1: { availableGiB: 100 }, d2: { availableGiB: 30 } } })], replicas: [replica('r1', 'n1', 'd1')] },
      { 'replica-soft-anti-affinity': 'true' },
    ),
    expect: { node: 'n1', disk: 'd2' },
  },
  {
    rule: 'soft disk anti-affinity (default): a disk may hold two replicas when no other disk fits',
    input: input({ nodes: [node('n1')], replicas: [replica('r1', 'n1', 'd1')] }, { 'replica-soft-anti-affinity': 'true' }),
    expect: { node: 'n1', disk: 'd1' },
  },
  {
    rule: 'hard disk anti-affinity: never two replicas on one disk',
    input: input({ nodes: [node('n1')], replicas: [replica('r1', 'n1', 'd1')] }, { 'replica-soft-anti-affinity': 'true', 'replica-disk-soft-anti-affinity': 'false' }),
    expect: { reason: 'anti-affinity', message: /hard disk anti-affinity/ },
  },
  // --- tags ---
  {
    rule: 'nodeSelector: every tag must be on the node',
    input: input({ volume: volume({ nodeSelector: ['fast', 'east'] }), nodes: [node('n1', { tags: ['fast'] }), node('n2', { tags: ['east', 'fast'], disks: { d1: { availableGiB: 45 } } })] }),
    expect: { node: 'n2' },
  },
  {
    rule: 'nodeSelector no node satisfies: tags not fulfilled',
    input: input({ volume: volume({ nodeSelector: ['gpu'] }), nodes: [node('n1', { tags: ['fast'] })] }),
    expect: { reason: 'tags-not-fulfilled', message: /node n1 lacks tags gpu/ },
  },
  {
    rule: 'diskSelector: every tag must be on the disk',
    input: input({ volume: volume({ diskSelector: ['ssd'] }), nodes: [node('n1', { disks: { d1: { availableGiB: 100 }, d2: { tags: ['ssd'], availableGiB: 50 } } })] }),
    expect: { node: 'n1', disk: 'd2' },
  },
  {
    rule: 'allow-empty-node-selector-volume=false keeps volumes without a selector off tagged nodes',
    input: input({ nodes: [node('n1', { tags: ['special'] }), node('n2', { disks: { d1: { availableGiB: 40 } } })] }, { 'allow-empty-node-selector-volume': 'false' }),
    expect: { node: 'n2' },
  },
  {
    rule: 'allow-empty-disk-selector-volume=false keeps volumes without a selector off tagged disks',
    input: input({ nodes: [node('n1', { disks: { d1: { tags: ['nvme'] } } })] }, { 'allow-empty-disk-selector-volume': 'false' }),
    expect: { reason: 'tags-not-fulfilled', message: /has tags and the volume has no disk selector/ },
  },
  {
    rule: 'a backing image\'s node and disk selectors apply to the volume\'s replicas',
    input: {
      ...input({ nodes: [node('n1'), node('n2', { tags: ['images'], disks: { d1: { tags: ['big'], availableGiB: 50 } } })] }),
      backingImage: {
        apiVersion: 'shorthorn.io/v1',
        kind: 'BackingImage',
        metadata: { name: 'img' },
        spec: { sourceType: 'download', sourceParameters: {}, diskFileSpecMap: {}, minNumberOfCopies: 1, nodeSelector: ['images'], diskSelector: ['big'] },
      },
    },
    expect: { node: 'n2' },
  },
  // --- capacity ---
  {
    rule: 'over-provisioning: nominal sizes on a disk stay within (maximum - reserved) x percentage',
    input: input({ nodes: [node('n1', { disks: { d1: { maxGiB: 100, reservedGiB: 30, scheduledGiB: 65 } } })] }),
    expect: { reason: 'insufficient-storage', message: /over 100% of/ },
  },
  {
    rule: 'over-provisioning 200% lets a disk take more nominal size than it has',
    input: input({ nodes: [node('n1', { disks: { d1: { maxGiB: 100, reservedGiB: 30, scheduledGiB: 65 } } })] }, { 'storage-over-provisioning-percentage': '200' }),
    expect: { node: 'n1' },
  },
  {
    rule: 'minimal available: the free space left after the actual data must stay above the percentage',
    input: input({ volume: volume({ actualSizeGiB: 6 }), nodes: [node('n1', { disks: { d1: { maxGiB: 100, availableGiB: 30 } } })] }),
    expect: { reason: 'insufficient-storage', message: /not more than 25% of/ },
  },
  {
    rule: 'minimal available is checked against the actual size, not the nominal size',
    input: input({ volume: volume({ size: 50 * gib, actualSizeGiB: 4 }), nodes: [node('n1', { disks: { d1: { maxGiB: 100, availableGiB: 30 } } })] }),
    expect: { node: 'n1' },
  },
  {
    rule: 'this volume\'s replicas the node agent has not counted yet count against the disk',
    input: input(
      { volume: volume({ size: 40 * gib }), nodes: [node('n1', { disks: { d1: { scheduledGiB: 0 } } })], replicas: [replica('r1', 'n1', 'd1', { sizeGiB: 40 }), replica('r2', 'n1', 'd1', { sizeGiB: 40 })] },
      { 'replica-soft-anti-affinity': 'true' },
    ),
    expect: { reason: 'insufficient-storage' },
  },
  {
    rule: 'replicas already in scheduledReplica are not counted twice',
    input: input(
      {
        volume: volume({ size: 40 * gib }),
        nodes: [node('n1', { disks: { d1: { scheduledGiB: 40, scheduledReplica: { r1: 40 * gib } } } })],
        replicas: [replica('r1', 'n1', 'd1', { sizeGiB: 40 })],
      },
      { 'replica-soft-anti-affinity': 'true' },
    ),
    expect: { node: 'n1', disk: 'd1' },
  },
  {
    rule: 'a disk under DiskPressure reports insufficient storage',
    input: input({ nodes: [node('n1', { disks: { d1: { schedulable: { status: 'False', reason: 'DiskPressure' } } } })] }),
    expect: { reason: 'insufficient-storage', message: /DiskPressure/ },
  },
  {
    rule: 'a disk reporting no capacity takes no replica',
    input: input({ nodes: [node('n1', { disks: { d1: { maxGiB: 0, availableGiB: 0 } } })] }),
    expect: { reason: 'insufficient-storage', message: /reports no capacity/ },
  },
  // --- unavailable nodes and disks ---
  {
    rule: 'a node that is not ready takes no replica',
    input: input({ nodes: [node('n1', { ready: false })] }),
    expect: { reason: 'nodes-unavailable', message: /node n1 is not ready/ },
  },
  {
    rule: 'a cordoned node takes no replica while disable-scheduling-on-cordoned-node is on',
    input: input({ nodes: [node('n1', { schedulable: { status: 'False', reason: 'KubernetesNodeCordoned' } })] }),
    expect: { reason: 'nodes-unavailable', message: /not schedulable \(KubernetesNodeCordoned\)/ },
  },
  {
    rule: 'a cordoned node takes replicas when disable-scheduling-on-cordoned-node is off',
    input: input({ nodes: [node('n1', { schedulable: { status: 'False', reason: 'KubernetesNodeCordoned' } })] }, { 'disable-scheduling-on-cordoned-node': 'false' }),
    expect: { node: 'n1' },
  },
  {
    rule: 'a node with scheduling disabled takes no replica',
    input: input({ nodes: [node('n1', { allowScheduling: false }), node('n2', { disks: { d1: { availableGiB: 40 } } })] }),
    expect: { node: 'n2' },
  },
  {
    rule: 'a node being evicted takes no replica',
    input: input({ nodes: [node('n1', { evictionRequested: true })] }),
    expect: { reason: 'nodes-unavailable', message: /being evicted/ },
  },
  {
    rule: 'disks that are not ready, disabled or evicting take no replica',
    input: input({ nodes: [node('n1', { disks: { d1: { ready: false }, d2: { allowScheduling: false }, d3: { evictionRequested: true } } })] }),
    expect: { reason: 'disks-unavailable' },
  },
  {
    rule: 'the reason names the furthest stage any candidate reached',
    input: input({ nodes: [node('n1', { ready: false }), node('n2', { disks: { d1: { maxGiB: 100, scheduledGiB: 95 } } })] }),
    expect: { reason: 'insufficient-storage', message: /disk d1 on node n2/ },
  },
  {
    rule: 'no nodes at all',
    input: input({ nodes: [] }),
    expect: { reason: 'nodes-unavailable', message: /there are no nodes/ },
  },
  // --- eviction and failed replicas ---
  {
    rule: 'a node holding only an evicting replica counts as free, so the replacement can use another disk there',
    input: input({
      nodes: [node('n1', { disks: { d1: { evictionRequested: true }, d2: {} } }), node('n2')],
      replicas: [replica('r1', 'n1', 'd1', { evictionRequested: true }), replica('r2', 'n2')],
    }),
    expect: { node: 'n1', disk: 'd2' },
  },
  {
    rule: 'a failed replica that may come back keeps its node used during the replenishment wait',
    input: input({
      volume: volume({ lastDegradedAt: isoAgo(60) }),
      nodes: [node('n1', { disks: { d1: { availableGiB: 100 } } }), node('n2', { disks: { d1: { availableGiB: 50 } } })],
      replicas: [replica('r1', 'n1', 'd1', { failedAt: isoAgo(60) })],
    }),
    expect: { node: 'n2' },
  },
  {
    rule: 'after replica-replenishment-wait-interval the failed replica\'s node is free again',
    input: input({
      volume: volume({ lastDegradedAt: isoAgo(601) }),
      nodes: [node('n1', { disks: { d1: { availableGiB: 100 } } }), node('n2', { disks: { d1: { availableGiB: 50 } } })],
      replicas: [replica('r1', 'n1', 'd1', { failedAt: isoAgo(601) })],
    }),
    expect: { node: 'n1' },
  },
  {
    rule: 'a failed replica past its rebuild retries does not hold its node',
    input: input({
      volume: volume({ lastDegradedAt: isoAgo(60) }),
      nodes: [node('n1', { disks: { d1: { availableGiB: 100 } } }), node('n2', { disks: { d1: { availableGiB: 50 } } })],
      replicas: [replica('r1', 'n1', 'd1', { failedAt: isoAgo(60), rebuildRetryCount: 5 })],
    }),
    expect: { node: 'n1' },
  },
  {
    rule: 'the replica being placed does not count against itself',
    input: input({ nodes: [node('n1')], replicas: [replica('r1', 'n1')] }),
    options: { replicaName: 'r1' },
    expect: { node: 'n1' },
  },
  // --- data locality and hard node affinity ---
  {
    rule: 'hardNodeAffinity pins the replica to one node',
    input: input({ nodes: [node('n1', { disks: { d1: { availableGiB: 100 } } }), node('n2', { disks: { d1: { availableGiB: 40 } } })] }),
    options: { hardNodeAffinity: 'n2' },
    expect: { node: 'n2' },
  },
  {
    rule: 'hardNodeAffinity to an unusable node fails as hard affinity',
    input: input({ nodes: [node('n1'), node('n2', { ready: false })] }),
    options: { hardNodeAffinity: 'n2' },
    expect: { reason: 'hard-affinity-unsatisfied', message: /cannot place on node n2: node n2 is not ready/ },
  },
  {
    rule: 'strict-local waits for the volume to attach',
    input: input({ volume: volume({ dataLocality: 'strict-local', numberOfReplicas: 1 }), nodes: [node('n1')] }),
    expect: { reason: 'waiting-for-attachment' },
  },
  {
    rule: 'strict-local places the replica on the attached node',
    input: input({ volume: volume({ dataLocality: 'strict-local', numberOfReplicas: 1, nodeID: 'n2' }), nodes: [node('n1', { disks: { d1: { availableGiB: 100 } } }), node('n2', { disks: { d1: { availableGiB: 40 } } })] }),
    expect: { node: 'n2' },
  },
  {
    rule: 'strict-local never falls back to another node',
    input: input({ volume: volume({ dataLocality: 'strict-local', numberOfReplicas: 1, nodeID: 'n2' }), nodes: [node('n1'), node('n2', { disks: { d1: { maxGiB: 100, scheduledGiB: 95 } } })] }),
    expect: { reason: 'hard-affinity-unsatisfied', message: /cannot place on node n2/ },
  },
  {
    rule: 'best-effort locality prefers the attached node when it holds no replica',
    input: input({ volume: volume({ dataLocality: 'best-effort', nodeID: 'n2' }), nodes: [node('n1', { disks: { d1: { availableGiB: 100 } } }), node('n2', { disks: { d1: { availableGiB: 40 } } })] }),
    expect: { node: 'n2' },
  },
  {
    rule: 'best-effort locality falls back to any node when the attached node cannot take it',
    input: input({ volume: volume({ dataLocality: 'best-effort', nodeID: 'n2' }), nodes: [node('n1'), node('n2', { ready: false })] }),
    expect: { node: 'n1' },
  },
  {
    rule: 'best-effort locality does nothing when the attached node already holds a replica',
    input: input({
      volume: volume({ dataLocality: 'best-effort', nodeID: 'n2' }),
      nodes: [node('n1', { disks: { d1: { availableGiB: 100 } } }), node('n2', { disks: { d1: { availableGiB: 100 } } }), node('n3', { disks: { d1: { availableGiB: 40 } } })],
      replicas: [replica('r2', 'n2')],
    }),
    expect: { node: 'n1' },
  },
  {
    rule: 'locality disabled ignores the attached node',
    input: input({ volume: volume({ nodeID: 'n2' }), nodes: [node('n1', { disks: { d1: { availableGiB: 100 } } }), node('n2', { disks: { d1: { availableGiB: 40 } } })] }),
    expect: { node: 'n1' },
  },
];

for (const c of cases) {
  test(`scheduler rule: ${c.rule}`, () => {
    const result = scheduleReplica(c.input, c.options);
    if ('node' in c.expect) {
      assert.ok(result.ok, `expected a placement, got ${result.ok ? '' : `${result.reason}: ${result.message}`}`);
      assert.equal(result.placement.nodeID, c.expect.node);
      if (c.expect.disk !== undefined) assert.equal(result.placement.diskName, c.expect.disk);
      assert.equal(result.placement.diskID, `${result.placement.nodeID}-${result.placement.diskName}`);
      assert.equal(result.placement.diskPath, `/mnt/${result.placement.nodeID}/${result.placement.diskName}`);
    } else {
      assert.equal(result.ok, false, `expected ${c.expect.reason}, got ${result.ok ? JSON.stringify(result.placement) : ''}`);
      if (!result.ok) {
        assert.equal(result.reason, c.expect.reason, result.message);
        if (c.expect.message !== undefined) assert.match(result.message, c.expect.message);
      }
    }
  });
}

test('the placement does not depend on the order of nodes, disks or replicas (seeded shuffles)', () => {
  const seed = process.env['SEED'] === undefined ? Date.now() % 2 ** 32 : Number(process.env['SEED']);
  const random = new SeededRandom(seed);
  const shuffle = <T>(items: readonly T[]): T[] => {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = random.int(i + 1);
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy;
  };
  try {
    for (const c of cases) {
      const expected = scheduleReplica(c.input, c.options);
      for (let round = 0; round < 5; round++) {
        const nodes = shuffle(c.input.nodes).map((n) => {
          const disks = Object.fromEntries(shuffle(Object.entries(n.spec.disks)));
          return { ...n, spec: { ...n.spec, disks } };
        });
        assert.deepEqual(scheduleReplica({ ...c.input, nodes, replicas: shuffle(c.input.replicas) }, c.options), expected, c.rule);
      }
    }
  } catch (error) {
    console.error(`replay with SEED=${seed}`);
    throw error;
  }
});

test('the capacity test is strict at its bounds, as Longhorn\'s is', () => {
  const settings = { 'storage-over-provisioning-percentage': 100, 'storage-minimal-available-percentage': 25 };
  const space = { storageMaximumBytes: 100, storageAvailableBytes: 50, storageReservedBytes: 20, storageScheduledBytes: 30 };
  assert.deepEqual(diskCapacityVerdict(space, { sizeBytes: 50, requiredBytes: 0 }, settings), { fits: true }, 'scheduled may equal the ceiling');
  assert.equal(diskCapacityVerdict(space, { sizeBytes: 51, requiredBytes: 0 }, settings).fits, false);
  assert.equal(diskCapacityVerdict(space, { sizeBytes: 0, requiredBytes: 24 }, settings).fits, true);
  assert.equal(diskCapacityVerdict(space, { sizeBytes: 0, requiredBytes: 25 }, settings).fits, false, 'free space must stay above the floor');
  assert.equal(diskCapacityVerdict({ ...space, storageAvailableBytes: 0 }, { sizeBytes: 0, requiredBytes: 0 }, settings).fits, false);
});
