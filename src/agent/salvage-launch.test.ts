// The node agent starts an engine in salvage mode exactly when its Engine resource asks for it
// (spec.salvageRequested, set by the manager's salvage and cleared once the engine runs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Engine } from '../control/resources/engine.ts';
import { resourceExamples } from '../control/resources/testing/resource-examples.ts';
import { daemonArgs, desiredEngine } from './instance-plan.ts';

test('an engine with spec.salvageRequested starts with --salvage; without it, never', () => {
  const engine = structuredClone<Engine>(resourceExamples.Engine);
  const { salvageRequested: _s, ...plain } = engine.spec;
  assert.ok(!daemonArgs(desiredEngine({ ...engine, spec: plain }, '/s').launch, 102).includes('--salvage'));
  assert.ok(!daemonArgs(desiredEngine({ ...engine, spec: { ...plain, salvageRequested: false } }, '/s').launch, 102).includes('--salvage'));
  const salvage = daemonArgs(desiredEngine({ ...engine, spec: { ...plain, salvageRequested: true } }, '/s').launch, 102);
  assert.ok(salvage.includes('--salvage'));
  assert.deepEqual(salvage.filter((a) => a !== '--salvage'), daemonArgs(desiredEngine({ ...engine, spec: plain }, '/s').launch, 102), 'only the flag differs');
});
