// Why a replica was created (the annotation the volume controller writes on it and logs): a new
// volume's placement, or the replacement of named failed replicas with the reason each failed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Replica } from '../resources/replica.ts';
import { placementReason, replicaFailureAnnotation } from './volume-reconcile.ts';

function replica(name: string, nodeID: string, failure?: string): Replica {
  return {
    apiVersion: 'shorthorn.io/v1', kind: 'Replica',
    metadata: { name, ...(failure === undefined ? {} : { annotations: { [replicaFailureAnnotation]: `2026-01-01T00:00:00.000Z: ${failure}` } }) },
    spec: {
      volumeName: 'vol', volumeSize: 4096, nodeID, desireState: 'running', active: true, rebuildRetryCount: 0, evictionRequested: false,
      ...(failure === undefined ? {} : { failedAt: '2026-01-01T00:00:00.000Z' }),
    },
  };
}

test('a new volume: the count of replicas it has', () => {
  assert.equal(placementReason('vol', [replica('r1', 'n1')], 3, true), 'volume vol has 1 of 3 replicas');
});

test('a replacement names the failed replica, its node and why it failed', () => {
  const reason = placementReason('vol', [replica('r1', 'n1'), replica('r2', 'n2'), replica('r3', 'n3', 'node n3 is not ready')], 3, false);
  assert.equal(reason, 'volume vol is degraded (2 of 3 replicas usable): replaces failed r3 on node n3 (node n3 is not ready); rebuilt from the RW replicas');
});

test('a failed replica without a recorded reason still says when it failed', () => {
  const old = replica('r3', 'n3');
  const failed: Replica = { ...old, spec: { ...old.spec, failedAt: '2026-01-02T00:00:00.000Z' } };
  assert.match(placementReason('vol', [replica('r1', 'n1'), failed], 2, false), /replaces failed r3 on node n3 \(failed at 2026-01-02T00:00:00.000Z\)/);
});
