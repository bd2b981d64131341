import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Engine } from '../control/resources/engine.ts';
import { resourceExamples } from '../control/resources/testing/resource-examples.ts';
import { ownedInstanceKind } from './stray-processes.ts';
import { allocatePort, daemonArgs, desiredEngine, observedState, planInstances, restartDelayMs, type DesiredInstance, type KnownProcess } from './instance-plan.ts';

const replica = (name: string, extra: Partial<DesiredInstance> = {}): DesiredInstance => ({
  kind: 'replica', name, run: true, deleting: false,
  launch: { kind: 'replica', dir: `/d/replicas/${name}`, sizeBytes: 4096, volumeName: 'v' },
  ...extra,
});
const proc = (name: string, extra: Partial<KnownProcess> = {}): KnownProcess => ({
  name, kind: 'replica', port: 100, pid: 42, ready: true, stoppingSinceMs: undefined, failures: 0, restartAtMs: 0, lastError: undefined, ...extra,
});
const base = { nowMs: 1000, portRange: { first: 100, last: 102 }, stopTimeoutMs: 500 };

test('a wanted replica without a process starts on the lowest free port, with its port in the args', () => {
  const plan = planInstances({ ...base, desired: [replica('a'), replica('b')], known: [proc('a')] });
  assert.deepEqual(plan.actions, [{ type: 'start', name: 'b', kind: 'replica', port: 101, args: daemonArgs(replica('b').launch, 101) }]);
  assert.ok(daemonArgs(replica('b').launch, 101).includes('127.0.0.1:101'));
});

test('a crashed replica keeps its port and waits for its back-off', () => {
  const crashed = proc('a', { pid: undefined, port: 102, restartAtMs: 2000, failures: 1, lastError: 'killed' });
  assert.deepEqual(planInstances({ ...base, desired: [replica('a')], known: [crashed] }).actions, []);
  const later = planInstances({ ...base, nowMs: 2000, desired: [replica('a')], known: [crashed] });
  assert.equal(later.actions[0]?.type === 'start' ? later.actions[0].port : -1, 102);
  assert.deepEqual(observedState(replica('a'), crashed), { state: 'error', errorMessage: 'killed' });
});

test('stop with SIGTERM, then SIGKILL after the timeout; forget once ended; cleanup a deleted replica', () => {
  const want = replica('a', { run: false });
  assert.deepEqual(planInstances({ ...base, desired: [want], known: [proc('a')] }).actions, [{ type: 'stop', name: 'a', pid: 42, signal: 'SIGTERM' }]);
  const stopping = proc('a', { stoppingSinceMs: 400 });
  assert.equal(observedState(want, stopping).state, 'stopping');
  assert.deepEqual(planInstances({ ...base, desired: [want], known: [stopping] }).actions, [{ type: 'stop', name: 'a', pid: 42, signal: 'SIGKILL' }]);
  const ended = proc('a', { pid: undefined });
  assert.deepEqual(planInstances({ ...base, desired: [want], known: [ended] }).actions, [{ type: 'forget', name: 'a' }]);
  assert.deepEqual(planInstances({ ...base, desired: [replica('a', { deleting: true })], known: [] }).actions, [{ type: 'cleanup', name: 'a' }]);
});

test('a process no resource mentions is stopped; ports run out visibly', () => {
  assert.deepEqual(planInstances({ ...base, desired: [], known: [proc('gone')] }).actions, [{ type: 'stop', name: 'gone', pid: 42, signal: 'SIGTERM' }]);
  const full = planInstances({ ...base, portsTaken: new Set([100, 101, 102]), desired: [replica('a')], known: [] });
  assert.deepEqual(full.noPort, ['a']);
  assert.equal(allocatePort({ first: 5, last: 6 }, new Set([5])), 6);
});

test('restart back-off doubles and is capped', () => {
  assert.deepEqual([0, 1, 2, 3, 10].map((n) => restartDelayMs(n, { baseMs: 100, maxMs: 500 })), [0, 100, 200, 400, 500]);
});

test('a crashed process whose port was taken by someone else restarts on another port', () => {
  const crashed = proc('a', { pid: undefined, port: 100, failures: 1, lastError: 'exited with code 1' });
  const plan = planInstances({ ...base, portsTaken: new Set([100]), desired: [replica('a')], known: [crashed] });
  assert.equal(plan.actions[0]?.type === 'start' ? plan.actions[0].port : -1, 101);
});

test('daemons listen on the node address; an engine gets the epoch of its Engine resource', () => {
  assert.ok(daemonArgs(replica('b').launch, 101, '10.9.8.2').includes('10.9.8.2:101'));
  const engine = {
    kind: 'engine' as const, volumeName: 'v', sizeBytes: 4096, replicaAddresses: ['10.9.8.2:101', '10.9.8.3:100'],
    socketPath: '/s/v-e-0.sock', minimumWriteReplicas: 1, epoch: 7,
  };
  const args = daemonArgs(engine, 102, '10.9.8.1');
  assert.equal(args[args.indexOf('--control-listen') + 1], '10.9.8.1:102');
  assert.equal(args[args.indexOf('--epoch') + 1], '7');
  assert.ok(!daemonArgs({ ...engine, epoch: 0 }, 102).includes('--epoch'), 'no epoch assigned: the engine picks one');
  const plan = planInstances({ ...base, listenHost: '10.9.8.2', desired: [replica('a')], known: [] });
  assert.deepEqual(plan.actions, [{ type: 'start', name: 'a', kind: 'replica', port: 100, args: daemonArgs(replica('a').launch, 100, '10.9.8.2') }]);
});

test('an engine in maintenance mode (Engine spec.disableFrontend) starts with --disable-frontend', () => {
  const engine: Engine = structuredClone(resourceExamples.Engine);
  const normal = daemonArgs(desiredEngine(engine, '/s').launch, 102);
  assert.equal(normal[normal.indexOf('--nbd-socket') + 1], `/s/${engine.metadata.name}.sock`);
  assert.ok(!normal.includes('--disable-frontend'));
  const maintenance = daemonArgs(desiredEngine({ ...engine, spec: { ...engine.spec, disableFrontend: true } }, '/s').launch, 102);
  assert.ok(maintenance.includes('--disable-frontend'));
  // Only the flag differs: the same socket slot (strays are found by it), replicas, control port and epoch.
  assert.deepEqual(maintenance.filter((a) => a !== '--disable-frontend'), normal);
  const launcher = ['node', '/x/shorthorn.js'];
  assert.equal(ownedInstanceKind([...launcher, ...maintenance], { launcher, diskPaths: [], socketDir: '/s' }), 'engine', 'a restarted agent finds it as a stray');
});

test('an engine starts with its Engine resource\'s snapshot limits, and a running one is not restarted when they change', () => {
  const engine: Engine = structuredClone(resourceExamples.Engine);
  const { snapshotMaxCount: _c, snapshotMaxSize: _s, ...plain } = engine.spec;
  const none = daemonArgs(desiredEngine({ ...engine, spec: plain }, '/s').launch, 102);
  assert.ok(!none.includes('--snapshot-max-count') && !none.includes('--snapshot-max-size'), 'no limits: no flags (the engine\'s default is none)');
  const limited = daemonArgs(desiredEngine({ ...engine, spec: { ...plain, snapshotMaxCount: 3, snapshotMaxSize: 1 << 30 } }, '/s').launch, 102);
  assert.equal(limited[limited.indexOf('--snapshot-max-count') + 1], '3');
  assert.equal(limited[limited.indexOf('--snapshot-max-size') + 1], String(1 << 30));
  const zeroSize = daemonArgs(desiredEngine({ ...engine, spec: { ...plain, snapshotMaxCount: 250, snapshotMaxSize: 0 } }, '/s').launch, 102);
  assert.ok(!zeroSize.includes('--snapshot-max-size'), 'size 0: no limit');
  assert.equal(zeroSize[zeroSize.indexOf('--snapshot-max-count') + 1], '250');

  // The same engine running, its resource's limits changed: nothing to do for the plan (the agent
  // changes them live with PUT /v1/snapshot-limits); only stopping it (detach) stops it.
  const running = proc(engine.metadata.name, { kind: 'engine', port: 102 });
  const changed = desiredEngine({ ...engine, spec: { ...plain, desireState: 'running', snapshotMaxCount: 5 } }, '/s');
  assert.equal(changed.run, true);
  assert.deepEqual(planInstances({ ...base, desired: [changed], known: [running] }).actions, []);
  const launcher = ['node', '/x/shorthorn.js'];
  assert.equal(ownedInstanceKind([...launcher, ...limited], { launcher, diskPaths: [], socketDir: '/s' }), 'engine', 'a restarted agent still finds it as a stray');
});
