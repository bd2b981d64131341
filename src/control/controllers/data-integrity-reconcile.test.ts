// The data-integrity decision: mode resolution, due slots, a restart that must not repeat a slot,
// wall-clock steps, requests, markErr by rw replica count, and what a scrub report becomes in the
// Volume status. Pure: no store, no engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Engine } from '../resources/engine.ts';
import { resourceExamples } from '../resources/testing/resource-examples.ts';
import type { SnapshotDataIntegrityMode, Volume, VolumeDataIntegrityStatus } from '../resources/volume.ts';
import { validateResource } from '../resources/validate-resource.ts';
import { decideIntegrity, effectiveMode, recordCheck, snapshotCheckAnnotation, type CheckPlan, type IntegrityDecision, type IntegrityInput } from './data-integrity-reconcile.ts';
import { parseScrubReport, scrubListMax, type EngineScrubReport } from './engine-control-client.ts';

const created = '2026-11-01T10:00:00.000Z';
const hourMs = 3600_000;
const dayMs = 24 * hourMs;
/** Every day at 00:00 UTC. */
const daily = '0 0 * * *';
const at = (text: string): number => Date.parse(text);

const replicaNames = ['v-r-1', 'v-r-2', 'v-r-3'];
const addressOf = (name: string): string => `127.0.0.1:${10000 + replicaNames.indexOf(name)}`;

function volume(options: { mode?: SnapshotDataIntegrityMode; integrity?: VolumeDataIntegrityStatus; owner?: string; state?: 'attached' | 'detached'; request?: string } = {}): Volume {
  const base = resourceExamples.Volume;
  return {
    ...base,
    metadata: {
      ...base.metadata, name: 'v', creationTimestamp: created,
      ...(options.request === undefined ? {} : { annotations: { [snapshotCheckAnnotation]: options.request } }),
    },
    spec: { ...base.spec, snapshotDataIntegrity: options.mode ?? 'ignored' },
    status: {
      ownerID: options.owner ?? 'mgr-1', state: options.state ?? 'attached', robustness: 'healthy',
      ...(options.integrity === undefined ? {} : { dataIntegrity: options.integrity }),
    },
  };
}

/** The volume's engine with `rw` replicas in RW mode and `others` (WO, ERR) after them. */
function engine(rw = 3, others: readonly ('WO' | 'ERR')[] = []): Engine {
  const base = resourceExamples.Engine;
  return {
    ...base,
    metadata: { ...base.metadata, name: 'v-e-0' },
    spec: { ...base.spec, volumeName: 'v', replicaAddressMap: Object.fromEntries(replicaNames.map((n) => [n, addressOf(n)])) },
    status: {
      currentState: 'running', ip: '127.0.0.1', port: 9000,
      replicaModeMap: Object.fromEntries(replicaNames.slice(0, rw + others.length).map((n, i) => [n, i < rw ? 'RW' : others[i - rw]!])),
    },
  };
}

function decide(overrides: Partial<IntegrityInput> & { nowMs: number }): IntegrityDecision {
  return decideIntegrity({ volume: volume(), engine: engine(), managerId: 'mgr-1', settingMode: 'fast-check', cron: daily, ...overrides });
}

function planOf(decision: IntegrityDecision): CheckPlan {
  assert.equal(decision.kind, 'check', JSON.stringify(decision));
  return (decision as { plan: CheckPlan }).plan;
}

test('mode: the volume override wins unless ignored; the setting otherwise; an unknown setting is fast-check', () => {
  assert.equal(effectiveMode('ignored', 'enabled'), 'enabled');
  assert.equal(effectiveMode('disabled', 'enabled'), 'disabled');
  assert.equal(effectiveMode('enabled', 'disabled'), 'enabled');
  assert.equal(effectiveMode('ignored', 'disabled'), 'disabled');
  assert.equal(effectiveMode('ignored', undefined), 'fast-check');
  assert.equal(effectiveMode(undefined, 'bogus'), 'fast-check');
});

test('the first slot after creation is due; before it, wait for it (and record it as next)', () => {
  const before = decide({ nowMs: at('2026-11-01T23:59:00Z') });
  assert.equal(before.kind, 'wait');
  assert.equal((before as { atMs: number }).atMs, at('2026-11-02T00:00:00Z'));
  assert.equal((before as { status?: VolumeDataIntegrityStatus }).status?.nextCheckAt, '2026-11-02T00:00:00.000Z');
  const plan = planOf(decide({ nowMs: at('2026-11-02T00:00:05Z') }));
  assert.equal(plan.trigger, 'schedule');
  assert.equal(plan.slotMs, at('2026-11-02T00:00:00Z'));
  assert.equal(plan.address, '127.0.0.1:9000');
  assert.equal(plan.nextMs, at('2026-11-03T00:00:00Z'));
});

test('fast-check compares stored sums only, enabled reads the data too, disabled does nothing', () => {
  const nowMs = at('2026-11-02T00:00:05Z');
  const fast = planOf(decide({ nowMs }));
  assert.deepEqual([fast.mode, fast.verifyData], ['fast-check', false]);
  const full = planOf(decide({ nowMs, settingMode: 'enabled' }));
  assert.deepEqual([full.mode, full.verifyData], ['enabled', true]);
  const overridden = planOf(decide({ nowMs, settingMode: 'disabled', volume: volume({ mode: 'enabled' }) }));
  assert.equal(overridden.verifyData, true);
  assert.deepEqual(decide({ nowMs, settingMode: 'enabled', volume: volume({ mode: 'disabled' }) }), { kind: 'idle' });
  // Disabling clears the announced next check.
  const cleared = decide({ nowMs, settingMode: 'disabled', volume: volume({ integrity: { nextCheckAt: '2026-11-03T00:00:00.000Z', lastCheckResult: 'clean' } }) });
  assert.deepEqual(cleared, { kind: 'idle', status: { lastCheckResult: 'clean' } });
});

test('a slot recorded in the status is not checked again (a manager restart), the next one is', () => {
  const integrity = { lastScheduledAt: '2026-11-02T00:00:00.000Z' };
  for (const nowText of ['2026-11-02T00:00:05Z', '2026-11-02T13:00:00Z', '2026-11-02T23:59:59Z']) {
    const decision = decide({ nowMs: at(nowText), volume: volume({ integrity }) });
    assert.equal(decision.kind, 'wait', nowText);
    assert.equal((decision as { atMs: number }).atMs, at('2026-11-03T00:00:00Z'));
  }
  assert.equal(planOf(decide({ nowMs: at('2026-11-03T00:00:00Z'), volume: volume({ integrity }) })).slotMs, at('2026-11-03T00:00:00Z'));
});

test('slots missed while the manager was down or the volume detached fold into one check', () => {
  const integrity = { lastScheduledAt: '2026-11-02T00:00:00.000Z' };
  const detached = decide({ nowMs: at('2026-11-06T08:00:00Z'), volume: volume({ integrity, state: 'detached' }) });
  assert.equal(detached.kind, 'idle');
  assert.match((detached as { note?: string }).note ?? '', /runs when the volume is attached/);
  const plan = planOf(decide({ nowMs: at('2026-11-06T08:00:00Z'), volume: volume({ integrity }) }));
  assert.equal(plan.slotMs, at('2026-11-06T00:00:00Z'));
  assert.equal(plan.collapsedSlots, 4);
});

test('clock steps: back within a period waits for the wall clock; back far with real time known runs once a period has passed; forward folds', () => {
  const integrity = { lastScheduledAt: '2026-11-03T00:00:00.000Z' };
  const v = volume({ integrity });
  // Stepped back 5 hours after the 2026-11-03 check: that slot is not checked again.
  const back = decide({ nowMs: at('2026-11-02T20:00:00Z'), volume: v, realSinceLastCheckMs: hourMs });
  assert.equal(back.kind, 'wait');
  assert.equal((back as { atMs: number }).atMs, at('2026-11-04T00:00:00Z'));
  // Stepped back 3 days: with this process's monotonic reading, one check once a day of real time has passed.
  assert.equal(decide({ nowMs: at('2026-10-31T12:00:00Z'), volume: v, realSinceLastCheckMs: 2 * hourMs }).kind, 'wait');
  const real = planOf(decide({ nowMs: at('2026-10-31T12:00:00Z'), volume: v, realSinceLastCheckMs: dayMs + 1 }));
  assert.equal(real.slotMs, at('2026-10-31T00:00:00Z'));
  // After a restart (no monotonic reading) a step back of more than a day restarts the schedule from now.
  const reset = decide({ nowMs: at('2026-10-31T12:00:00Z'), volume: v });
  assert.equal(reset.kind, 'wait');
  assert.equal((reset as { status?: VolumeDataIntegrityStatus }).status?.lastScheduledAt, '2026-10-31T12:00:00.000Z');
  assert.equal((reset as { atMs: number }).atMs, at('2026-11-01T00:00:00Z'));
  // Forward two days: one check for the latest slot.
  const forward = planOf(decide({ nowMs: at('2026-11-05T06:00:00Z'), volume: v }));
  assert.deepEqual([forward.slotMs, forward.collapsedSlots], [at('2026-11-05T00:00:00Z'), 2]);
});

test('markErr only with 3 or more rw replicas', () => {
  const nowMs = at('2026-11-02T00:00:05Z');
  assert.equal(planOf(decide({ nowMs, engine: engine(3) })).markErr, true);
  assert.equal(planOf(decide({ nowMs, engine: engine(2) })).markErr, false);
  assert.equal(planOf(decide({ nowMs, engine: engine(1) })).markErr, false);
});

test('a due scheduled check waits while a replica is not RW or the volume is degraded; a request does not', () => {
  const nowMs = at('2026-11-02T00:00:05Z');
  const rebuilding = decide({ nowMs, engine: engine(2, ['WO']) });
  assert.equal(rebuilding.kind, 'idle');
  assert.match((rebuilding as { note?: string }).note ?? '', /waits while v-r-3 is WO/);
  assert.match((decide({ nowMs, engine: engine(2, ['ERR']) }) as { note?: string }).note ?? '', /waits while v-r-3 is ERR/);
  const degraded = volume();
  const notHealthy = { ...degraded, status: { ...degraded.status, robustness: 'degraded' as const } };
  assert.match((decide({ nowMs, volume: notHealthy }) as { note?: string }).note ?? '', /waits while the volume is degraded/);
  const request = '2026-11-02T00:00:01.000Z';
  const asked = volume({ request });
  const plan = planOf(decide({ nowMs, engine: engine(2, ['WO']), volume: { ...asked, status: { ...asked.status, robustness: 'degraded' } } }));
  assert.deepEqual([plan.trigger, plan.markErr, plan.rwReplicas], ['request', false, 2]);
});

test('only the owning manager acts, and only with a running engine', () => {
  const nowMs = at('2026-11-02T00:00:05Z');
  assert.deepEqual(decide({ nowMs, volume: volume({ owner: 'mgr-2' }) }), { kind: 'idle' });
  const stopped = engine();
  const notRunning = { ...stopped, status: { ...stopped.status, currentState: 'stopped' as const } };
  assert.equal(decide({ nowMs, engine: notRunning }).kind, 'idle');
  assert.equal(decide({ nowMs, engine: undefined }).kind, 'idle');
});

test('a snapshotCheck request is a full check once, whatever the mode and the schedule', () => {
  const nowMs = at('2026-11-01T12:00:00Z');
  const request = '2026-11-01T11:59:00.000Z';
  const plan = planOf(decide({ nowMs, settingMode: 'disabled', volume: volume({ request }) }));
  assert.deepEqual([plan.trigger, plan.request, plan.verifyData, plan.markErr, plan.slotMs], ['request', request, true, true, undefined]);
  // Acted on: recorded in lastRequest, so it is not run again.
  assert.deepEqual(decide({ nowMs, settingMode: 'disabled', volume: volume({ request, integrity: { lastRequest: request } }) }), { kind: 'idle' });
  // Detached: it waits.
  assert.equal(decide({ nowMs, volume: volume({ request, state: 'detached' }) }).kind, 'idle');
});

const cleanReport: EngineScrubReport = {
  replicas: replicaNames.map(addressOf), layersChecked: 2, chunksChecked: 8, mismatchCount: 0, mismatches: [], disagreeing: [], markedErr: [],
  comparable: true, corruptCount: 0, corrupt: [], bytesVerified: 3 * 8 * 1024 * 1024, storedChecksumErrors: [],
};
const context = { volumeName: 'v', engine: engine(), nowMs: at('2026-11-02T00:01:00Z') };
const schedulePlan = planOf(decide({ nowMs: at('2026-11-02T00:00:05Z'), settingMode: 'enabled' }));

function validStatus(status: VolumeDataIntegrityStatus): void {
  const checked = validateResource('Volume', { ...volume(), status: { ...volume().status, dataIntegrity: status } });
  assert.ok(checked.ok, JSON.stringify(checked));
}

test('a clean report records the slot, the next check and the counts', () => {
  const { status, note } = recordCheck({ nextCheckAt: '2026-11-02T00:00:00.000Z' }, schedulePlan, { ok: true, report: cleanReport }, context);
  assert.deepEqual(status, {
    lastScheduledAt: '2026-11-02T00:00:00.000Z', nextCheckAt: '2026-11-03T00:00:00.000Z', lastCheckAt: '2026-11-02T00:01:00.000Z',
    lastCheckTrigger: 'schedule', lastCheckMode: 'enabled', lastCheckResult: 'clean', mismatchedReplicas: [], markedFailed: [],
    bytesVerified: 3 * 8 * 1024 * 1024, chunksChecked: 8, message: 'clean: 2 layer(s), 8 chunk(s) on 3 rw replica(s), 25165824 bytes of data read',
  });
  assert.match(note, /^volume v: data check \(enabled, slot 2026-11-02T00:00:00.000Z\): clean/);
  validStatus(status);
});

test('a mismatch names the replicas by name, says which were failed, and why none when none', () => {
  const bad = addressOf('v-r-2');
  const report: EngineScrubReport = {
    ...cleanReport, disagreeing: [bad], markedErr: [bad], corruptCount: 1,
    corrupt: [{ layer: 's1', offsetBytes: 4 << 20, replica: bad, healthyElsewhere: true }],
  };
  const { status } = recordCheck({}, schedulePlan, { ok: true, report }, context);
  assert.equal(status.lastCheckResult, 'mismatch');
  assert.deepEqual(status.mismatchedReplicas, ['v-r-2']);
  assert.deepEqual(status.markedFailed, ['v-r-2']);
  assert.match(status.message ?? '', /1 chunk\(s\) whose data fails its replica's own checksum; replica\(s\) v-r-2 failed and will be rebuilt/);
  validStatus(status);
  const twoReplicaPlan = { ...schedulePlan, markErr: false, rwReplicas: 2 };
  const reported = recordCheck({}, twoReplicaPlan, { ok: true, report: { ...report, markedErr: [], disagreeing: [] } }, context).status;
  assert.deepEqual(reported.markedFailed, []);
  assert.deepEqual(reported.mismatchedReplicas, ['v-r-2']);
  assert.match(reported.message ?? '', /nothing marked: 2 rw replica\(s\); a replica is failed only with 3 or more/);
  const one = recordCheck({}, { ...schedulePlan, markErr: false, rwReplicas: 1 }, { ok: true, report: { ...report, comparable: false, markedErr: [], disagreeing: [] } }, context);
  assert.match(one.status.message ?? '', /one rw replica, nothing to compare with/);
  // An address the engine resource does not know is kept as the address.
  const stranger = recordCheck({}, schedulePlan, { ok: true, report: { ...cleanReport, mismatchCount: 1, mismatches: [{ layer: 's1', offsetBytes: 0, replicas: ['10.9.9.9:1'], majority: true }] } }, context);
  assert.deepEqual(stranger.status.mismatchedReplicas, ['10.9.9.9:1']);
  validStatus(stranger.status);
});

test('a failed check is recorded as failed with the slot (not retried before the next slot), the old counts dropped', () => {
  const before: VolumeDataIntegrityStatus = { lastCheckResult: 'mismatch', mismatchedReplicas: ['v-r-1'], markedFailed: [], bytesVerified: 5, chunksChecked: 1 };
  const { status } = recordCheck(before, schedulePlan, { ok: false, recorded: true, message: 'Volume v has no rw replica' }, context);
  assert.equal(status.lastCheckResult, 'failed');
  assert.equal(status.lastScheduledAt, '2026-11-02T00:00:00.000Z');
  assert.equal(status.mismatchedReplicas, undefined);
  assert.equal(status.message, 'the engine failed the check: Volume v has no rw replica');
  validStatus(status);
});

test('the scrub answer is checked before use, and its lists are cut', () => {
  const answer = {
    replicas: ['a:1', 'b:2'], layersChecked: 1, chunksChecked: 2, disagreeing: [], markedErr: [], comparable: true, bytesVerified: 0,
    mismatches: Array.from({ length: scrubListMax + 5 }, (_, i) => ({ layer: 's1', offsetBytes: i, replicas: ['a:1'], majority: false })),
    corrupt: [], storedChecksumErrors: [],
  };
  const parsed = parseScrubReport(answer);
  assert.equal(parsed.mismatchCount, scrubListMax + 5);
  assert.equal(parsed.mismatches.length, scrubListMax);
  assert.throws(() => parseScrubReport({ ...answer, comparable: 'yes' }), /comparable is not a boolean/);
  assert.throws(() => parseScrubReport({ ...answer, chunksChecked: -1 }), /chunksChecked is not a count/);
  assert.throws(() => parseScrubReport({ ...answer, corrupt: [{ layer: 's1' }] }), /corrupt\[0\]\.offsetBytes/);
  assert.throws(() => parseScrubReport([]), /not an object/);
});
