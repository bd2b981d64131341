// Contract tests of every route and action over a real embedded store: valid calls, hostile
// bodies, unknown resources, conflicting actions and missing tokens, each with its status and code.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApiFixture, type ApiFixture } from './testing/api-fixture.ts';

const gib = 1024 ** 3;
let api: ApiFixture;

before(async () => {
  api = await startApiFixture();
  await api.seedNode('node-1');
  await api.seedNode('node-2');
});
after(async () => {
  await api.close();
});

function expectError(reply: { status: number; body: Record<string, unknown> }, status: number, code: string): void {
  assert.equal(reply.status, status, JSON.stringify(reply.body));
  assert.equal(reply.body['type'], 'error');
  assert.equal(reply.body['code'], code);
  assert.equal(reply.body['status'], status);
  assert.equal(typeof reply.body['message'], 'string');
}

async function createVolume(name: string, extra: Record<string, unknown> = {}) {
  const reply = await api.call('POST', '/v1/volumes', { body: { name, size: 1 * gib, numberOfReplicas: 2, ...extra } });
  assert.equal(reply.status, 201, JSON.stringify(reply.body));
  return reply;
}

const action = (volume: string, name: string, body: unknown = {}) => api.call('POST', `/v1/volumes/${volume}?action=${name}`, { body });

describe('authentication', () => {
  test('every call but /healthz needs the token', async () => {
    assert.equal((await api.call('GET', '/healthz', { token: null })).status, 200);
    const missing = await api.call('GET', '/v1/volumes', { token: null });
    expectError(missing, 401, 'unauthorized');
    assert.equal(missing.headers['www-authenticate'], 'Bearer');
    expectError(await api.call('GET', '/v1/volumes', { token: 'f'.repeat(64) }), 401, 'unauthorized');
    expectError(await api.call('GET', '/metrics', { token: 'x'.repeat(10_000) }), 401, 'unauthorized');
    expectError(await api.call('POST', '/v1/volumes', { token: null, body: { name: 'x', size: 4096 } }), 401, 'unauthorized');
    expectError(await api.call('GET', '/v1/openapi.json', { token: '' }), 401, 'unauthorized');
  });
});

describe('volumes', () => {
  test('create fills defaults and default-replica-count; get, list, delete', async () => {
    const created = await api.call('POST', '/v1/volumes', { body: { name: 'vol-a', size: '2Gi' } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const spec = created.body['spec'] as Record<string, unknown>;
    assert.equal(spec['size'], 2 * gib);
    assert.equal(spec['numberOfReplicas'], 3);
    assert.equal(spec['frontend'], 'blockdev');
    assert.equal(created.body['id'], 'vol-a');
    assert.deepEqual(created.body['links'], { self: '/v1/volumes/vol-a' });
    assert.ok('attach' in (created.body['actions'] as object));
    const got = await api.call('GET', '/v1/volumes/vol-a');
    assert.equal(got.status, 200);
    const list = await api.call('GET', '/v1/volumes');
    assert.equal(list.body['type'], 'collection');
    assert.ok((list.body['data'] as { id: string }[]).some((v) => v.id === 'vol-a'));
    assert.equal((await api.call('DELETE', '/v1/volumes/vol-a')).status, 200);
    expectError(await api.call('GET', '/v1/volumes/vol-a'), 404, 'not_found');
    expectError(await api.call('DELETE', '/v1/volumes/vol-a'), 404, 'not_found');
  });

  test('the setting default-replica-count is used when numberOfReplicas is left out', async () => {
    assert.equal((await api.call('PUT', '/v1/settings/default-replica-count', { body: { value: '2' } })).status, 200);
    const created = await api.call('POST', '/v1/volumes', { body: { name: 'vol-dflt', size: 4096 } });
    assert.equal((created.body['spec'] as Record<string, unknown>)['numberOfReplicas'], 2);
    assert.equal((await api.call('PUT', '/v1/settings/default-replica-count', { body: { value: '3' } })).status, 200);
  });

  test('invalid create bodies are 4xx with the field named', async () => {
    const cases: [unknown, number, string, string?][] = [
      [{ name: 'v', size: 'abc' }, 422, 'invalid', 'size'],
      [{ name: 'v', size: 4096, numberOfReplicas: '3' }, 422, 'invalid', 'numberOfReplicas'],
      [{ name: 'v', size: 4096, bogus: true }, 422, 'invalid', 'bogus'],
      [{ name: 'v', size: 1e30 }, 422, 'invalid', 'size'],
      [{ name: 'v', size: 4096, numberOfReplicas: 1e308 }, 422, 'invalid', 'numberOfReplicas'],
      [{ name: 'v', size: 4097 }, 422, 'invalid', 'size'],
      [{ name: 'v', size: 4096, nodeID: 'node-1' }, 422, 'invalid', 'nodeID'],
      [{ name: 'v' }, 422, 'invalid', 'size'],
      [{ size: 4096 }, 422, 'invalid', 'name'],
      [{ name: '../x', size: 4096 }, 400, 'invalid_name'],
      [{ name: 'a/b', size: 4096 }, 400, 'invalid_name'],
      [{ name: 'x'.repeat(300), size: 4096 }, 400, 'invalid_name'],
      [{ name: 'x'.repeat(50), size: 4096 }, 422, 'invalid', 'name'],
      [{ name: 'v', size: 4096, frontend: 'floppy' }, 422, 'invalid', 'frontend'],
      [{ name: 'v', size: 4096, numberOfReplicas: 1, minimumWriteReplicas: 2 }, 422, 'invalid', 'minimumWriteReplicas'],
      [[1, 2], 400, 'bad_request'],
      ['text', 400, 'bad_request'],
      [null, 422, 'invalid', 'name'],
    ];
    for (const [body, status, code, field] of cases) {
      const reply = await api.call('POST', '/v1/volumes', { body });
      expectError(reply, status, code);
      if (field !== undefined) {
        const problems = reply.body['problems'] as { path: string }[];
        assert.ok(problems.some((p) => p.path === field), `${JSON.stringify(body)}: ${JSON.stringify(problems)}`);
      }
    }
    expectError(await api.call('POST', '/v1/volumes', { rawBody: '{"name": "v", "size": 4096' }), 400, 'bad_request');
    expectError(await api.call('POST', '/v1/volumes', { rawBody: '{"__proto__": {"x": 1}, "name": "v"}' }), 400, 'bad_request');
    expectError(await api.call('POST', '/v1/volumes', { rawBody: 'name=v', contentType: 'text/plain' }), 415, 'unsupported_media_type');
    expectError(await api.call('POST', '/v1/volumes', { rawBody: `{"name":"${'v'.repeat(2 * 1024 * 1024)}"}` }), 413, 'too_large');
    const { items } = await api.store.list('Volume');
    assert.ok(!items.some((v) => v.metadata.name === 'v'));
  });

  test('a second volume with the same name is 409', async () => {
    await createVolume('vol-dup');
    expectError(await api.call('POST', '/v1/volumes', { body: { name: 'vol-dup', size: 4096 } }), 409, 'already_exists');
  });

  test('names in the URL are checked; unknown routes and actions are 4xx', async () => {
    expectError(await api.call('GET', '/v1/volumes/..%2Fx'), 400, 'invalid_name');
    expectError(await api.call('GET', `/v1/volumes/${'a'.repeat(400)}`), 400, 'invalid_name');
    expectError(await api.call('GET', '/v1/volumes/%E0%A4%A'), 400, 'bad_request');
    expectError(await api.call('GET', '/v1/nothing'), 404, 'not_found');
    expectError(await api.call('POST', '/v1/volumes/nope?action=attach', { body: { hostId: 'node-1' } }), 404, 'not_found');
    await createVolume('vol-act');
    expectError(await api.call('POST', '/v1/volumes/vol-act', { body: {} }), 400, 'bad_request');
    expectError(await action('vol-act', 'explode'), 400, 'bad_request');
    expectError(await api.call('POST', '/v1/volumes/vol-act?action=attach&action=detach', { body: {} }), 400, 'bad_request');
  });
});

describe('attach and detach', () => {
  test('tickets on the VolumeAttachment; attaching elsewhere is 409', async () => {
    await createVolume('vol-att');
    expectError(await action('vol-att', 'attach', { hostId: 'node-9' }), 422, 'invalid');
    expectError(await action('vol-att', 'attach', { hostId: 'node-1', bogus: 1 }), 422, 'invalid');
    expectError(await action('vol-att', 'attach', { hostId: 7 }), 422, 'invalid');
    expectError(await action('vol-att', 'attach', {}), 422, 'invalid');
    assert.equal((await action('vol-att', 'attach', { hostId: 'node-1' })).status, 200);
    const attachment = await api.store.get('VolumeAttachment', 'vol-att');
    const tickets = (attachment.spec as { attachmentTickets: Record<string, { nodeID: string; type: string }> }).attachmentTickets;
    assert.equal(tickets['shorthorn-ui']?.nodeID, 'node-1');
    assert.equal(tickets['shorthorn-ui']?.type, 'shorthorn-api');
    const version = attachment.metadata.resourceVersion;
    assert.equal((await action('vol-att', 'attach', { hostId: 'node-1' })).status, 200);
    assert.equal((await api.store.get('VolumeAttachment', 'vol-att')).metadata.resourceVersion, version, 'attaching again changes nothing');
    expectError(await action('vol-att', 'attach', { hostId: 'node-2' }), 409, 'conflict');
    expectError(await action('vol-att', 'attach', { hostId: 'node-2', attachmentID: 'csi-x' }), 409, 'conflict');
    expectError(await action('vol-att', 'detach', { hostId: 'node-2' }), 409, 'conflict');
    assert.equal((await action('vol-att', 'detach')).status, 200);
    assert.equal((await action('vol-att', 'detach')).status, 200, 'detaching a detached volume is fine');
    assert.equal((await action('vol-att', 'attach', { hostId: 'node-2', disableFrontend: true })).status, 200);
    assert.equal((await action('vol-att', 'detach', { forceDetach: true })).status, 200);
    const after = await api.store.get('VolumeAttachment', 'vol-att');
    assert.deepEqual((after.spec as { attachmentTickets: object }).attachmentTickets, {});
  });
});

describe('snapshots', () => {
  test('offered only while attached; create, list, delete, revert, purge', async () => {
    await createVolume('vol-snap');
    const detached = await api.call('GET', '/v1/volumes/vol-snap');
    assert.ok(!('snapshotCreate' in (detached.body['actions'] as object)));
    expectError(await action('vol-snap', 'snapshotCreate', {}), 409, 'conflict');
    await api.setVolumeStatus('vol-snap', { state: 'attached', robustness: 'healthy', currentNodeID: 'node-1' });
    const attached = await api.call('GET', '/v1/volumes/vol-snap');
    assert.ok('snapshotCreate' in (attached.body['actions'] as object));
    const created = await action('vol-snap', 'snapshotCreate', { name: 'snap-1', labels: { app: 'db' } });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.equal(created.body['id'], 'snap-1');
    const unnamed = await action('vol-snap', 'snapshotCreate');
    assert.equal(unnamed.status, 200);
    expectError(await action('vol-snap', 'snapshotCreate', { name: 'snap-1' }), 409, 'already_exists');
    expectError(await action('vol-snap', 'snapshotCreate', { name: '../x' }), 422, 'invalid');
    expectError(await action('vol-snap', 'snapshotCreate', { labels: 'x' }), 422, 'invalid');
    const list = await action('vol-snap', 'snapshotList');
    assert.deepEqual((list.body['data'] as { id: string }[]).map((s) => s.id).sort(), [String(unnamed.body['id']), 'snap-1'].sort());
    expectError(await action('vol-snap', 'snapshotDelete', { name: 'nope' }), 404, 'not_found');
    expectError(await action('vol-snap', 'snapshotDelete', {}), 422, 'invalid');
    const reverted = await action('vol-snap', 'snapshotRevert', { name: 'snap-1' });
    assert.equal(reverted.status, 200, JSON.stringify(reverted.body));
    const annotations = (await api.store.get('Volume', 'vol-snap')).metadata.annotations ?? {};
    assert.equal(annotations['shorthorn.io/snapshot-revert-requested'], 'snap-1');
    assert.equal((await action('vol-snap', 'snapshotPurge')).status, 200);
    assert.ok('shorthorn.io/snapshot-purge-requested-at' in ((await api.store.get('Volume', 'vol-snap')).metadata.annotations ?? {}));
    assert.equal((await action('vol-snap', 'snapshotDelete', { name: 'snap-1' })).status, 200);
    expectError(await api.call('GET', '/v1/snapshots/snap-1'), 404, 'not_found');
    // Another volume's snapshot is not this volume's.
    await createVolume('vol-other');
    await api.setVolumeStatus('vol-other', { state: 'attached' });
    expectError(await action('vol-other', 'snapshotDelete', { name: String(unnamed.body['id']) }), 404, 'not_found');
  });
});

describe('expand, replica count, salvage', () => {
  test('expand grows only, by whole blocks', async () => {
    await createVolume('vol-exp');
    expectError(await action('vol-exp', 'expand', { size: 4096 }), 422, 'invalid');
    expectError(await action('vol-exp', 'expand', { size: gib + 1 }), 422, 'invalid');
    expectError(await action('vol-exp', 'expand', { size: 'lots' }), 422, 'invalid');
    expectError(await action('vol-exp', 'expand', { size: 2 ** 60 }), 422, 'invalid');
    expectError(await action('vol-exp', 'expand', { size: 1e300 }), 422, 'invalid');
    const grown = await action('vol-exp', 'expand', { size: '2Gi' });
    assert.equal(grown.status, 200);
    assert.equal((grown.body['spec'] as { size: number }).size, 2 * gib);
  });

  test('updateReplicaCount checks the range and minimumWriteReplicas', async () => {
    await createVolume('vol-rc', { minimumWriteReplicas: 2 });
    expectError(await action('vol-rc', 'updateReplicaCount', { replicaCount: 0 }), 422, 'invalid');
    expectError(await action('vol-rc', 'updateReplicaCount', { replicaCount: 11 }), 422, 'invalid');
    expectError(await action('vol-rc', 'updateReplicaCount', { replicaCount: 1 }), 422, 'invalid');
    const updated = await action('vol-rc', 'updateReplicaCount', { replicaCount: 4 });
    assert.equal((updated.body['spec'] as { numberOfReplicas: number }).numberOfReplicas, 4);
  });

  test('updateSnapshotMaxCount and updateSnapshotMaxSize: ranges, 0 goes back to the setting / no limit', async () => {
    await createVolume('vol-sl');
    for (const bad of [1, -1, 1025, 2.5, '3']) expectError(await action('vol-sl', 'updateSnapshotMaxCount', { snapshotMaxCount: bad }), 422, 'invalid');
    expectError(await action('vol-sl', 'updateSnapshotMaxCount', {}), 422, 'invalid');
    const spec = (reply: { body: Record<string, unknown> }): { snapshotMaxCount?: number; snapshotMaxSize?: number } => reply.body['spec'] as never;
    assert.equal(spec(await action('vol-sl', 'updateSnapshotMaxCount', { snapshotMaxCount: 3 })).snapshotMaxCount, 3);
    assert.equal(spec(await action('vol-sl', 'updateSnapshotMaxCount', { snapshotMaxCount: 0 })).snapshotMaxCount, undefined);
    for (const bad of [-1, 'lots', '1e999', 1.5]) expectError(await action('vol-sl', 'updateSnapshotMaxSize', { snapshotMaxSize: bad }), 422, 'invalid');
    assert.equal(spec(await action('vol-sl', 'updateSnapshotMaxSize', { snapshotMaxSize: '10Gi' })).snapshotMaxSize, 10 * gib);
    assert.equal(spec(await action('vol-sl', 'updateSnapshotMaxSize', { snapshotMaxSize: 0 })).snapshotMaxSize, undefined);
    const stored = (await api.store.get('Volume', 'vol-sl')).spec as Record<string, unknown>;
    assert.ok(!('snapshotMaxCount' in stored) && !('snapshotMaxSize' in stored));
  });

  test('salvage only for a faulted volume, only its replicas', async () => {
    await createVolume('vol-salv');
    expectError(await action('vol-salv', 'salvage', { names: ['vol-salv-r-1'] }), 409, 'conflict');
    await api.setVolumeStatus('vol-salv', { state: 'detached', robustness: 'faulted' });
    const faulted = await api.call('GET', '/v1/volumes/vol-salv');
    assert.deepEqual(Object.keys(faulted.body['actions'] as object).sort(), ['attach', 'detach', 'salvage']);
    const { resourceExamples } = await import('../control/resources/testing/resource-examples.ts');
    const replica = structuredClone(resourceExamples.Replica);
    await api.store.create({ ...replica, metadata: { name: 'vol-salv-r-1' }, spec: { ...replica.spec, volumeName: 'vol-salv' } });
    await api.store.create({ ...replica, metadata: { name: 'vol-x-r-1' }, spec: { ...replica.spec, volumeName: 'vol-x' } });
    expectError(await action('vol-salv', 'salvage', { names: ['vol-x-r-1'] }), 422, 'invalid');
    expectError(await action('vol-salv', 'salvage', { names: [] }), 422, 'invalid');
    expectError(await action('vol-salv', 'salvage', { names: ['nope'] }), 404, 'not_found');
    assert.equal((await action('vol-salv', 'salvage', { names: ['vol-salv-r-1'] })).status, 200);
    assert.equal(((await api.store.get('Replica', 'vol-salv-r-1')).spec as { salvageRequested?: boolean }).salvageRequested, true);
    const replicas = await api.call('GET', '/v1/replicas?volume=vol-salv');
    assert.deepEqual((replicas.body['data'] as { id: string }[]).map((r) => r.id), ['vol-salv-r-1']);
    assert.equal((await api.call('GET', '/v1/replicas/vol-salv-r-1')).status, 200);
    assert.equal((await api.call('GET', '/v1/engines')).status, 200);
    expectError(await api.call('GET', '/v1/engines/nope'), 404, 'not_found');
  });
});

describe('nodes', () => {
  test('list, get, update switches and tags, diskUpdate', async () => {
    const list = await api.call('GET', '/v1/nodes');
    assert.deepEqual((list.body['data'] as { id: string }[]).map((n) => n.id), ['node-1', 'node-2']);
    const updated = await api.call('PUT', '/v1/nodes/node-2', { body: { allowScheduling: false, evictionRequested: true, tags: ['fast', 'zone-b'] } });
    assert.equal(updated.status, 200, JSON.stringify(updated.body));
    assert.deepEqual((updated.body['spec'] as { tags: string[] }).tags, ['fast', 'zone-b']);
    expectError(await api.call('PUT', '/v1/nodes/node-2', { body: { tags: ['bad tag!'] } }), 422, 'invalid');
    expectError(await api.call('PUT', '/v1/nodes/node-2', { body: { allowScheduling: 'no' } }), 422, 'invalid');
    expectError(await api.call('PUT', '/v1/nodes/node-2', { body: { disks: {} } }), 422, 'invalid');
    expectError(await api.call('PUT', '/v1/nodes/node-9', { body: {} }), 404, 'not_found');
    const disks = await api.call('POST', '/v1/nodes/node-2?action=diskUpdate', { body: { disks: { 'disk-b': { path: '/mnt/b', tags: ['ssd'] } } } });
    assert.equal(disks.status, 200, JSON.stringify(disks.body));
    const disk = (disks.body['spec'] as { disks: Record<string, { allowScheduling: boolean; storageReserved: number }> }).disks['disk-b'];
    assert.equal(disk?.allowScheduling, true);
    assert.equal(disk?.storageReserved, 0);
    expectError(await api.call('POST', '/v1/nodes/node-2?action=diskUpdate', { body: { disks: { d: { path: 'relative' } } } }), 422, 'invalid');
    expectError(await api.call('POST', '/v1/nodes/node-2?action=diskUpdate', { body: { disks: { d: { path: '/a/../b' } } } }), 422, 'invalid');
    expectError(await api.call('POST', '/v1/nodes/node-2?action=diskUpdate', { body: { disks: { '../x': { path: '/x' } } } }), 422, 'invalid');
    expectError(await api.call('POST', '/v1/nodes/node-2?action=shrink', { body: {} }), 400, 'bad_request');
    assert.deepEqual((await api.call('GET', '/v1/nodetags')).body, ['fast', 'zone-b'] as unknown as Record<string, unknown>);
    assert.deepEqual((await api.call('GET', '/v1/disktags')).body, ['ssd'] as unknown as Record<string, unknown>);
  });
});

describe('settings', () => {
  test('list with definitions, get, set with validation', async () => {
    const list = await api.call('GET', '/v1/settings');
    const data = list.body['data'] as { id: string; value: string; definition: { default: string } }[];
    assert.ok(data.length > 20);
    const backupTarget = data.find((s) => s.id === 'backup-target');
    assert.equal(backupTarget?.value, backupTarget?.definition.default);
    const set = await api.call('PUT', '/v1/settings/storage-over-provisioning-percentage', { body: { value: '250' } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.equal((await api.call('GET', '/v1/settings/storage-over-provisioning-percentage')).body['value'], '250');
    expectError(await api.call('PUT', '/v1/settings/storage-over-provisioning-percentage', { body: { value: 'many' } }), 422, 'invalid');
    expectError(await api.call('PUT', '/v1/settings/storage-over-provisioning-percentage', { body: { value: 250 } }), 422, 'invalid');
    expectError(await api.call('PUT', '/v1/settings/default-replica-count', { body: { value: '99' } }), 422, 'invalid');
    expectError(await api.call('PUT', '/v1/settings/default-replica-count', { body: { value: '2', extra: 1 } }), 422, 'invalid');
    expectError(await api.call('PUT', '/v1/settings/current-shorthorn-version', { body: { value: '9' } }), 422, 'read_only');
    expectError(await api.call('PUT', '/v1/settings/no-such-setting', { body: { value: '1' } }), 404, 'not_found');
    expectError(await api.call('GET', '/v1/settings/no-such-setting'), 404, 'not_found');
  });
});

describe('documents, metrics and events', () => {
  test('openapi document names every route and kind', async () => {
    const doc = await api.call('GET', '/v1/openapi.json');
    assert.equal(doc.body['openapi'], '3.1.0');
    const paths = Object.keys(doc.body['paths'] as object);
    for (const path of ['/v1/volumes', '/v1/volumes/{name}', '/v1/nodes/{name}', '/v1/settings/{name}', '/v1/events/stream']) assert.ok(paths.includes(path), path);
    const schemas = (doc.body['components'] as { schemas: Record<string, unknown> }).schemas;
    for (const name of ['Volume', 'Node', 'Setting', 'attachInput', 'VolumeCreateInput', 'Error']) assert.ok(name in schemas, name);
  });

  test('metrics report volumes from the resources', async () => {
    await createVolume('vol-met');
    await api.setVolumeStatus('vol-met', { state: 'attached', robustness: 'degraded', actualSize: 12288, currentNodeID: 'node-1' });
    const metrics = await api.call('GET', '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /shorthorn_volume_capacity_bytes\{volume="vol-met",node="node-1"\} 1073741824/);
    assert.match(metrics.text, /shorthorn_volume_actual_size_bytes\{volume="vol-met",node="node-1"\} 12288/);
    assert.match(metrics.text, /shorthorn_volume_state\{volume="vol-met",node="node-1"\} 2/);
    assert.match(metrics.text, /shorthorn_volume_robustness\{volume="vol-met",node="node-1"\} 2/);
    assert.match(metrics.text, /shorthorn_node_count_total 2/);
    assert.match(metrics.text, /shorthorn_disk_capacity_bytes\{node="node-1",disk="default-disk"\} 107374182400/);
  });

  test('/v1/events shows store changes', async () => {
    await createVolume('vol-evt');
    const deadline = Date.now() + 10_000;
    for (;;) {
      const events = await api.call('GET', '/v1/events');
      const data = events.body['data'] as { type: string; kind: string; name: string }[];
      if (data.some((e) => e.type === 'ADDED' && e.kind === 'Volume' && e.name === 'vol-evt')) break;
      assert.ok(Date.now() < deadline, 'the volume never showed up in /v1/events');
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(api.logged, []);
  });
});
