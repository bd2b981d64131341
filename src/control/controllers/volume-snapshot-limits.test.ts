import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Engine, EngineSpec } from '../resources/engine.ts';
import { resourceExamples } from '../resources/testing/resource-examples.ts';
import type { Action } from '../runtime/controller.ts';
import { validateResource } from '../resources/validate-resource.ts';
import type { VolumeAttachment } from '../resources/volume-attachment.ts';
import type { Volume } from '../resources/volume.ts';
import { Settings } from '../settings/settings.ts';
import { reconcileVolume, volumeFinalizer, type VolumeObserved } from './volume-reconcile.ts';
import { engineSnapshotLimitsSpec } from './volume-snapshot-limits.ts';

const engineSpec = (extra: Partial<EngineSpec> = {}): EngineSpec => {
  const { snapshotMaxCount: _c, snapshotMaxSize: _s, ...plain } = structuredClone<Engine>(resourceExamples.Engine).spec;
  return { ...plain, ...extra };
};

test('the volume\'s count wins over the setting; unset takes the setting', () => {
  assert.equal(engineSnapshotLimitsSpec(engineSpec(), {}, 250).snapshotMaxCount, 250);
  assert.equal(engineSnapshotLimitsSpec(engineSpec(), { snapshotMaxCount: 3 }, 250).snapshotMaxCount, 3);
  assert.equal(engineSnapshotLimitsSpec(engineSpec({ snapshotMaxCount: 3 }), {}, 40).snapshotMaxCount, 40, 'the volume\'s own value removed: back to the setting');
});

test('an unset or 0 size is no limit: the Engine field is left out, never 0', () => {
  assert.equal('snapshotMaxSize' in engineSnapshotLimitsSpec(engineSpec(), {}, 250), false);
  assert.equal('snapshotMaxSize' in engineSnapshotLimitsSpec(engineSpec(), { snapshotMaxSize: 0 }, 250), false);
  assert.equal('snapshotMaxSize' in engineSnapshotLimitsSpec(engineSpec({ snapshotMaxCount: 250, snapshotMaxSize: 4096 }), { snapshotMaxSize: 0 }, 250), false);
  assert.equal(engineSnapshotLimitsSpec(engineSpec(), { snapshotMaxSize: 1 << 30 }, 250).snapshotMaxSize, 1 << 30);
  const stray = engineSpec({ snapshotMaxCount: 250, snapshotMaxSize: 0 });
  assert.notEqual(engineSnapshotLimitsSpec(stray, {}, 250), stray, 'a 0 written by hand is rewritten as absent');
});

test('the same object when the limits are in place already (no write), and nothing else changes', () => {
  const inPlace = engineSpec({ snapshotMaxCount: 3, snapshotMaxSize: 4096 });
  assert.equal(engineSnapshotLimitsSpec(inPlace, { snapshotMaxCount: 3, snapshotMaxSize: 4096 }, 250), inPlace);
  const plain = engineSpec({ snapshotMaxCount: 250 });
  assert.equal(engineSnapshotLimitsSpec(plain, {}, 250), plain);
  const changed = engineSnapshotLimitsSpec(inPlace, { snapshotMaxCount: 4 }, 250);
  assert.deepEqual({ ...changed, snapshotMaxCount: 3, snapshotMaxSize: 4096 }, inPlace);
});

test('reconcile: the engine carries the volume\'s limits from its creation; a change is one engine write touching nothing else, then none', () => {
  const volume: Volume = { ...resourceExamples.Volume, metadata: { name: 'vol-a', finalizers: [volumeFinalizer] }, spec: { ...resourceExamples.Volume.spec, snapshotMaxCount: 3 }, status: {} };
  const attachment: VolumeAttachment = { apiVersion: 'shorthorn.io/v1', kind: 'VolumeAttachment', metadata: { name: 'vol-a' }, spec: { volume: 'vol-a', attachmentTickets: {} } };
  const observed = (engines: Engine[], settings = Settings.defaults().values): VolumeObserved => ({
    attachment, engines, replicas: [], nodes: [], settings, nowMs: Date.parse('2026-01-01T00:00:00Z'), freshIds: ['00000001', '00000002', '00000003'],
  });
  const engineWrites = (actions: readonly Action[], type: 'create' | 'update'): Engine[] =>
    actions.flatMap((a) => (a.type === type && a.object.kind === 'Engine' ? [a.object as Engine] : []));

  const first = engineWrites(reconcileVolume(volume, observed([])).actions, 'create')[0];
  assert.equal(first?.spec.snapshotMaxCount, 3, 'created with the volume\'s count');
  assert.ok(first !== undefined && validateResource('Engine', first).ok);
  const engine: Engine = { ...first, metadata: { ...first.metadata, resourceVersion: '1' } };
  assert.deepEqual(engineWrites(reconcileVolume(volume, observed([engine])).actions, 'update'), [], 'in place: no write (no loop)');

  const raised = reconcileVolume({ ...volume, spec: { ...volume.spec, snapshotMaxCount: 5, snapshotMaxSize: 1 << 30 } }, observed([engine]));
  const [written] = engineWrites(raised.actions, 'update');
  assert.deepEqual(written, { ...engine, spec: { ...engine.spec, snapshotMaxCount: 5, snapshotMaxSize: 1 << 30 } }, 'only the limits change (no desireState, epoch or write-set change: no restart)');
  assert.ok(raised.notes.some((n) => /engine snapshot limits now at most 5 snapshots, at most 1073741824 bytes \(were at most 3 snapshots, no size limit\)/.test(n)), raised.notes.join('\n'));

  // The volume's own count unset: the setting's.
  const { snapshotMaxCount: _c, ...unset } = volume.spec;
  const fromSetting = reconcileVolume({ ...volume, spec: unset }, observed([engine], { ...Settings.defaults().values, 'snapshot-max-count': 40 }));
  assert.equal(engineWrites(fromSetting.actions, 'update')[0]?.spec.snapshotMaxCount, 40);
});
