import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ResourceView } from '../api/resource-view.ts';
import { healthLines, isExpanded, isHealed, progressBar, replicaRows, volumeHealth, type VolumeParts } from './volume-health.ts';

function view(id: string, spec: unknown, status?: unknown): ResourceView {
  return {
    id, type: 'x', links: {}, actions: {}, apiVersion: 'shorthorn.io/v1', kind: 'X', metadata: { name: id }, spec,
    ...(status === undefined ? {} : { status }),
  };
}

function parts(options: { modes: Record<string, 'RW' | 'WO' | 'ERR'>; rebuilding?: Record<string, number>; engineSize?: number; robustness?: string; failed?: string }): VolumeParts {
  const size = 1024 ** 3;
  return {
    volume: view('demo', { size, numberOfReplicas: 3 }, { state: 'attached', robustness: options.robustness ?? 'healthy' }),
    engines: [
      view('demo-e-0', { nodeID: 'node-1' }, {
        currentState: 'running',
        currentSize: options.engineSize ?? size,
        replicaModeMap: options.modes,
        rebuildStatus: Object.fromEntries(Object.entries(options.rebuilding ?? {}).map(([name, progress]) => [name, { isRebuilding: true, progress }])),
      }),
    ],
    replicas: ['r1', 'r2', 'r3'].map((name, i) =>
      view(name, { volumeName: 'demo', nodeID: `node-${i + 1}`, ...(options.failed === name ? { failedAt: '2026-01-01T00:00:00Z' } : {}) }, { currentState: 'running', pid: 100 + i }),
    ),
  };
}

test('a volume with every replica RW and none rebuilding is healed', () => {
  const health = volumeHealth(parts({ modes: { r1: 'RW', r2: 'RW', r3: 'RW' } }));
  assert.equal(isHealed(health), true);
  assert.deepEqual(healthLines(health), [
    'volume demo: attached, healthy, 3/3 replicas RW',
    '  r1  node-1  RW',
    '  r2  node-2  RW',
    '  r3  node-3  RW',
  ]);
  assert.deepEqual(replicaRows(health)[1], ['r2', 'node-2', 'running', 'RW', '101', '']);
});

test('a rebuilding, failed or degraded replica set is not healed, and shows the progress', () => {
  const rebuilding = volumeHealth(parts({ modes: { r1: 'RW', r2: 'WO', r3: 'RW' }, rebuilding: { r2: 45 }, robustness: 'degraded' }));
  assert.equal(isHealed(rebuilding), false);
  assert.equal(healthLines(rebuilding)[2], '  r2  node-2  rebuilding [#########-----------]  45%');
  // A status that still says healthy while a replica is rebuilding is not healed either.
  assert.equal(isHealed(volumeHealth(parts({ modes: { r1: 'RW', r2: 'WO', r3: 'RW' }, rebuilding: { r2: 99 } }))), false);
  assert.equal(isHealed(volumeHealth(parts({ modes: { r1: 'RW', r2: 'RW', r3: 'RW' }, failed: 'r3' }))), false);
  assert.equal(isHealed(volumeHealth(parts({ modes: { r1: 'RW', r2: 'ERR', r3: 'RW' } }))), false);
});

test('expansion shows until the engine serves the new size', () => {
  const growing = volumeHealth(parts({ modes: { r1: 'RW', r2: 'RW', r3: 'RW' }, engineSize: 512 * 1024 ** 2 }));
  assert.equal(isExpanded(growing), false);
  assert.equal(healthLines(growing)[1], '  expanding: 512 MiB -> 1 GiB');
  assert.equal(isExpanded(volumeHealth(parts({ modes: { r1: 'RW', r2: 'RW', r3: 'RW' } }))), true);
});

test('progress bars clamp to 0..100', () => {
  assert.equal(progressBar(-5), '[--------------------]   0%');
  assert.equal(progressBar(100), '[####################] 100%');
  assert.equal(progressBar(1000), '[####################] 100%');
  assert.equal(progressBar(Number.NaN), '[--------------------]   0%');
});
