import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Engine } from '../resources/engine.ts';
import type { Replica } from '../resources/replica.ts';
import { nextEngineEpoch } from './engine-epoch.ts';

const engine = (epoch: number): Engine => ({
  apiVersion: 'shorthorn.io/v1', kind: 'Engine', metadata: { name: 'v-e-0' },
  spec: { volumeName: 'v', volumeSize: 4096, desireState: 'stopped', frontend: 'blockdev', epoch, minimumWriteReplicas: 1, replicaAddressMap: {}, active: true },
});
const replica = (name: string, epoch?: number): Replica => ({
  apiVersion: 'shorthorn.io/v1', kind: 'Replica', metadata: { name },
  spec: { volumeName: 'v', volumeSize: 4096, desireState: 'running', active: true, rebuildRetryCount: 0, evictionRequested: false },
  ...(epoch === undefined ? {} : { status: { epoch } }),
});

test('each attach takes the next epoch after the resource\'s', () => {
  assert.equal(nextEngineEpoch(engine(0), []), 1);
  assert.equal(nextEngineEpoch(engine(4), [replica('a', 4), replica('b')]), 5);
});

test('a replica that recorded a higher epoch (an engine not started from the resource) is passed too', () => {
  assert.equal(nextEngineEpoch(engine(2), [replica('a', 2), replica('b', 7)]), 8);
});
