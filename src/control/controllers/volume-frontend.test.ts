// Maintenance mode from the ticket to the Engine spec: the pure helpers, then the volume
// controller's steps (attach with the frontend off, the engine started without it, the switch
// when the chosen ticket changes mode: detach first, attach again in the new mode).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Action } from '../runtime/controller.ts';
import type { Engine } from '../resources/engine.ts';
import type { Node } from '../resources/node.ts';
import type { Replica } from '../resources/replica.ts';
import { resourceExamples } from '../resources/testing/resource-examples.ts';
import type { AttachmentTicket, VolumeAttachment } from '../resources/volume-attachment.ts';
import type { Volume } from '../resources/volume.ts';
import { Settings } from '../settings/settings.ts';
import { attachSpec, detachSpec, engineFrontendSpec, frontendModeMismatch, ticketDisablesFrontend } from './volume-frontend.ts';
import { engineNameOf, reconcileVolume, volumeFinalizer, type VolumeObserved } from './volume-reconcile.ts';

const gib = 1024 ** 3;
const nowMs = Date.parse('2026-01-01T00:00:00Z');
const restoreTicket: AttachmentTicket = { id: 'volume-restore-controller-vol-a', type: 'volume-restore-controller', nodeID: 'n1', parameters: { disableFrontend: true } };
const apiTicket: AttachmentTicket = { id: 'shorthorn-ui', type: 'shorthorn-api', nodeID: 'n1', parameters: { disableFrontend: false } };

test('helpers: a ticket disables the frontend only when it says so; the volume and engine specs carry it only when on', () => {
  assert.equal(ticketDisablesFrontend(restoreTicket), true);
  assert.equal(ticketDisablesFrontend(apiTicket), false);
  assert.equal(ticketDisablesFrontend({ id: 'csi-1', type: 'csi-attacher', nodeID: 'n1' }), false);
  assert.equal(ticketDisablesFrontend(undefined), false);
  const spec = resourceExamples.Volume.spec;
  const maintenance = attachSpec(spec, restoreTicket);
  assert.deepEqual([maintenance.nodeID, maintenance.disableFrontend], ['n1', true]);
  const normal = attachSpec(maintenance, apiTicket);
  assert.ok(!('disableFrontend' in normal), 'absent when the frontend is on');
  const detached = detachSpec(maintenance);
  assert.ok(!('nodeID' in detached) && !('disableFrontend' in detached));
  assert.equal(frontendModeMismatch(maintenance, restoreTicket), false);
  assert.equal(frontendModeMismatch(maintenance, apiTicket), true);
  assert.equal(frontendModeMismatch(normal, restoreTicket), true);
  assert.equal(frontendModeMismatch(normal, { ...restoreTicket, nodeID: 'n2' }), false, 'another node is a move, not a mode change');
  assert.equal(frontendModeMismatch(detached, restoreTicket), false);
  const engineSpec = resourceExamples.Engine.spec;
  assert.equal(engineFrontendSpec(engineSpec, maintenance).disableFrontend, true);
  assert.ok(!('disableFrontend' in engineFrontendSpec({ ...engineSpec, disableFrontend: true }, normal)));
});

function node(name: string): Node {
  return {
    apiVersion: 'shorthorn.io/v1', kind: 'Node', metadata: { name },
    spec: { disks: { d: { diskType: 'filesystem', path: `/disks/${name}`, allowScheduling: true, evictionRequested: false, storageReserved: 0, tags: [] } }, allowScheduling: true, evictionRequested: false, tags: [] },
    status: {
      conditions: [{ type: 'Ready', status: 'True' }, { type: 'Schedulable', status: 'True' }],
      diskStatus: { d: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'Schedulable', status: 'True' }], storageAvailable: 100 * gib, storageMaximum: 100 * gib, storageScheduled: 0, diskUUID: `uuid-${name}` } },
    },
  };
}

function replica(name: string): Replica {
  return {
    apiVersion: 'shorthorn.io/v1', kind: 'Replica', metadata: { name },
    spec: {
      volumeName: 'vol-a', volumeSize: gib, nodeID: 'n1', engineName: engineNameOf('vol-a'), desireState: 'running',
      diskID: 'uuid-n1', diskPath: '/disks/n1', dataDirectoryName: name, active: true, rebuildRetryCount: 0, evictionRequested: false,
      healthyAt: '2025-12-31T00:00:00Z', lastHealthyAt: '2025-12-31T00:00:00Z',
    },
    status: { currentState: 'running', ip: '127.0.0.1', port: 10000 },
  };
}

function engine(extra: Partial<Engine['spec']> = {}, status?: Engine['status']): Engine {
  return {
    apiVersion: 'shorthorn.io/v1', kind: 'Engine', metadata: { name: engineNameOf('vol-a') },
    spec: { volumeName: 'vol-a', volumeSize: gib, desireState: 'stopped', frontend: 'blockdev', epoch: 0, minimumWriteReplicas: 1, replicaAddressMap: {}, active: true, ...extra },
    ...(status === undefined ? {} : { status }),
  };
}

const volume = (spec: Partial<Volume['spec']>, status: NonNullable<Volume['status']>): Volume => ({
  ...resourceExamples.Volume,
  metadata: { name: 'vol-a', finalizers: [volumeFinalizer] },
  spec: { ...resourceExamples.Volume.spec, size: gib, numberOfReplicas: 1, diskSelector: [], ...spec },
  status,
});

function observed(tickets: readonly AttachmentTicket[], engines: Engine[]): VolumeObserved {
  return {
    attachment: {
      apiVersion: 'shorthorn.io/v1', kind: 'VolumeAttachment', metadata: { name: 'vol-a' },
      spec: { volume: 'vol-a', attachmentTickets: Object.fromEntries(tickets.map((t) => [t.id, t])) },
    },
    engines, replicas: [replica('vol-a-r-00000001')], nodes: [node('n1')],
    settings: Settings.defaults().values, nowMs, freshIds: ['00000002'],
  };
}

const updatedOf = <T>(actions: readonly Action[], kind: string): T | undefined =>
  actions.flatMap((a) => (a.type === 'update' && a.object.kind === kind ? [a.object as T] : []))[0];
const statusOf = <T>(actions: readonly Action[], kind: string): T | undefined =>
  actions.flatMap((a) => (a.type === 'updateStatus' && a.object.kind === kind ? [a.object as T] : []))[0];

test('a maintenance ticket attaches the volume with the frontend off and starts the engine without it', () => {
  const step1 = reconcileVolume(volume({}, { state: 'detached' }), observed([restoreTicket], [engine()]));
  const attaching = updatedOf<Volume>(step1.actions, 'Volume');
  assert.deepEqual([attaching?.spec.nodeID, attaching?.spec.disableFrontend], ['n1', true]);
  assert.ok(step1.notes.some((n) => n.includes('with the frontend disabled (maintenance)')), step1.notes.join('\n'));

  const step2 = reconcileVolume(attaching, observed([restoreTicket], [engine()]));
  const started = updatedOf<Engine>(step2.actions, 'Engine');
  assert.deepEqual([started?.spec.desireState, started?.spec.disableFrontend], ['running', true]);

  const running = engine({ ...started?.spec }, { currentState: 'running', replicaModeMap: { 'vol-a-r-00000001': 'RW' } });
  const step3 = reconcileVolume(attaching, observed([restoreTicket], [running]));
  const status = statusOf<Volume>(step3.actions, 'Volume')?.status;
  assert.deepEqual([status?.state, status?.frontendDisabled], ['attached', true]);
  const va = statusOf<VolumeAttachment>(step3.actions, 'VolumeAttachment');
  assert.equal(va?.status?.attachmentTicketStatuses?.[restoreTicket.id]?.satisfied, true);

  // A normal ticket starts a normal engine: no disableFrontend anywhere.
  const normal = reconcileVolume(volume({ nodeID: 'n1' }, { state: 'detached' }), observed([apiTicket], [engine()]));
  assert.ok(!('disableFrontend' in (updatedOf<Engine>(normal.actions, 'Engine')?.spec ?? { disableFrontend: 'no engine' })));
});

test('the chosen ticket changes mode (standby ticket gone, a normal one left): detach, then attach again with the frontend', () => {
  const started = engine({ nodeID: 'n1', desireState: 'running', epoch: 1, replicaAddressMap: { 'vol-a-r-00000001': '127.0.0.1:10000' }, disableFrontend: true },
    { currentState: 'running', replicaModeMap: { 'vol-a-r-00000001': 'RW' } });
  const attached = volume({ nodeID: 'n1', disableFrontend: true }, { state: 'attached', robustness: 'healthy', currentNodeID: 'n1', frontendDisabled: true });
  // Both tickets: the restore ticket wins (priority 2000), nothing changes; the API ticket is not satisfied.
  const both = reconcileVolume(attached, observed([restoreTicket, apiTicket], [started]));
  assert.equal(updatedOf<Volume>(both.actions, 'Volume'), undefined);
  const va = statusOf<VolumeAttachment>(both.actions, 'VolumeAttachment');
  assert.deepEqual([va?.status?.attachmentTicketStatuses?.[restoreTicket.id]?.satisfied, va?.status?.attachmentTicketStatuses?.[apiTicket.id]?.satisfied], [true, false]);

  const step1 = reconcileVolume(attached, observed([apiTicket], [started]));
  const detaching = updatedOf<Volume>(step1.actions, 'Volume');
  assert.ok(detaching !== undefined && !('nodeID' in detaching.spec) && !('disableFrontend' in detaching.spec), 'detach first');
  assert.ok(step1.notes.some((n) => n.includes('wants it with the frontend enabled; the engine restarts')), step1.notes.join('\n'));

  const step2 = reconcileVolume({ ...detaching, status: { state: 'attached', robustness: 'healthy', currentNodeID: 'n1', frontendDisabled: true } }, observed([apiTicket], [started]));
  assert.equal(updatedOf<Engine>(step2.actions, 'Engine')?.spec.desireState, 'stopped');
  assert.equal(statusOf<Volume>(step2.actions, 'Volume')?.status?.frontendDisabled, undefined, 'not in effect once detaching');

  const stopped = engine({ ...started.spec, desireState: 'stopped' }, { currentState: 'stopped' });
  const step3 = reconcileVolume({ ...detaching, status: { state: 'detached' } }, observed([apiTicket], [stopped]));
  const reattaching = updatedOf<Volume>(step3.actions, 'Volume');
  assert.ok(reattaching !== undefined && reattaching.spec.nodeID === 'n1' && !('disableFrontend' in reattaching.spec));
  const step4 = reconcileVolume(reattaching, observed([apiTicket], [stopped]));
  const restarted = updatedOf<Engine>(step4.actions, 'Engine');
  assert.equal(restarted?.spec.desireState, 'running');
  assert.equal(restarted?.spec.epoch, 2, 'a fresh engine with a new epoch');
  assert.ok(restarted !== undefined && !('disableFrontend' in restarted.spec), 'started with the frontend');
});
