// Contract gaps found while building the CLI (issue 7): label keys and values the way Kubernetes
// takes them (a key like `../x` was stored as given), `?volume=` on the read-only lists checked
// as a name (an impossible name was an empty 200), and attaching an attached volume elsewhere
// through another attacher's ticket is still a 409.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labelProblems } from './label-check.ts';
import { startApiFixture, type ApiFixture } from './testing/api-fixture.ts';

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
  assert.equal(reply.body['code'], code);
}

describe('labels', () => {
  test('keys and values follow the Kubernetes rules', () => {
    assert.deepEqual(labelProblems({ app: 'db', 'shorthorn.io/tier': 'gold', 'a.b-c_d': '', 'x/y': 'v1.2_3' }, 'labels'), []);
    for (const key of ['../x', '/x', 'x/', 'a/b/c', '-x', 'x'.repeat(64), `${'p'.repeat(254)}/x`, 'UPPER.io/x', '', 'sp ace']) {
      assert.equal(labelProblems({ [key]: 'v' }, 'labels').length, 1, JSON.stringify(key));
    }
    for (const value of ['../x', 'v'.repeat(64), ' lead', 'trail-']) {
      assert.equal(labelProblems({ k: value }, 'labels').length, 1, JSON.stringify(value));
    }
    assert.deepEqual(labelProblems('not an object', 'labels'), [], 'left to the schema');
  });

  test('volume create and snapshotCreate refuse bad labels with 422 and store nothing', async () => {
    expectError(await api.call('POST', '/v1/volumes', { body: { name: 'vol-l', size: 4096, labels: { '../x': 'y' } } }), 422, 'invalid');
    expectError(await api.call('POST', '/v1/volumes', { body: { name: 'vol-l', size: 4096, labels: { app: 'x'.repeat(5000) } } }), 422, 'invalid');
    expectError(await api.call('GET', '/v1/volumes/vol-l'), 404, 'not_found');
    assert.equal((await api.call('POST', '/v1/volumes', { body: { name: 'vol-l', size: 4096, labels: { 'shorthorn.io/app': 'db' } } })).status, 201);
    await api.setVolumeStatus('vol-l', { state: 'attached', robustness: 'healthy', currentNodeID: 'node-1' });
    expectError(await api.call('POST', '/v1/volumes/vol-l?action=snapshotCreate', { body: { name: 's1', labels: { '../x': 'y' } } }), 422, 'invalid');
    expectError(await api.call('GET', '/v1/snapshots/s1'), 404, 'not_found');
  });
});

describe('read-only lists', () => {
  test('?volume= must be a name', async () => {
    expectError(await api.call('GET', '/v1/replicas?volume=../x'), 400, 'invalid_name');
    expectError(await api.call('GET', `/v1/engines?volume=${'a'.repeat(200)}`), 400, 'invalid_name');
    assert.equal((await api.call('GET', '/v1/snapshots?volume=no-such')).status, 200, 'a valid name with nothing is an empty list');
  });
});

describe('attach conflicts', () => {
  test('a ticket of another attacher on another node makes attach a 409; the same node is fine', async () => {
    assert.equal((await api.call('POST', '/v1/volumes', { body: { name: 'vol-c', size: 4096 } })).status, 201);
    const csi = await api.call('POST', '/v1/volumes/vol-c?action=attach', { body: { hostId: 'node-1', attachmentID: 'csi-abc', attacherType: 'csi-attacher' } });
    assert.equal(csi.status, 200, JSON.stringify(csi.body));
    expectError(await api.call('POST', '/v1/volumes/vol-c?action=attach', { body: { hostId: 'node-2' } }), 409, 'conflict');
    assert.equal((await api.call('POST', '/v1/volumes/vol-c?action=attach', { body: { hostId: 'node-1' } })).status, 200);
    // Detaching our ticket on the wrong node is a 409 too; the right one succeeds, and again (idempotent).
    expectError(await api.call('POST', '/v1/volumes/vol-c?action=detach', { body: { hostId: 'node-2' } }), 409, 'conflict');
    assert.equal((await api.call('POST', '/v1/volumes/vol-c?action=detach', { body: {} })).status, 200);
    assert.equal((await api.call('POST', '/v1/volumes/vol-c?action=detach', { body: {} })).status, 200);
  });
});
