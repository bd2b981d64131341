// Contract tests of /v1/recurringjobs and the volume actions recurringJobAdd/Delete/List over a
// real embedded store: valid calls, hostile bodies, unknown names, each with its status and code.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runNowAnnotation } from '../control/controllers/recurring-job-controller.ts';
import { validateResource } from '../control/resources/validate-resource.ts';
import { startApiFixture, type ApiFixture } from './testing/api-fixture.ts';

let api: ApiFixture;

before(async () => {
  api = await startApiFixture();
});
after(async () => {
  await api.close();
});

function expectError(reply: { status: number; body: Record<string, unknown> }, status: number, code: string): void {
  assert.equal(reply.status, status, JSON.stringify(reply.body));
  assert.equal(reply.body['type'], 'error');
  assert.equal(reply.body['code'], code);
  assert.equal(typeof reply.body['message'], 'string');
}

const problemPaths = (reply: { body: Record<string, unknown> }): string[] =>
  ((reply.body['problems'] as { path: string }[] | undefined) ?? []).map((p) => p.path);

describe('recurring jobs', () => {
  test('create fills defaults (Longhorn\'s string parameters accepted); get, list, update, runNow, delete', async () => {
    const created = await api.call('POST', '/v1/recurringjobs', {
      body: { name: 'nightly', task: 'backup', cron: '0 2 * * *', retain: 7, groups: ['default'], parameters: { 'full-backup-interval': '4' } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const spec = created.body['spec'] as Record<string, unknown>;
    assert.equal(spec['concurrency'], 10);
    assert.deepEqual(spec['labels'], {});
    assert.deepEqual(spec['parameters'], { 'full-backup-interval': 4 });
    assert.ok('runNow' in (created.body['actions'] as object));
    expectError(await api.call('POST', '/v1/recurringjobs', { body: { name: 'nightly', task: 'snapshot', cron: '* * * * *', retain: 1 } }), 409, 'already_exists');
    assert.equal((await api.call('GET', '/v1/recurringjobs/nightly')).status, 200);
    const list = await api.call('GET', '/v1/recurringjobs');
    assert.deepEqual((list.body['data'] as { id: string }[]).map((j) => j.id), ['nightly']);

    const updated = await api.call('PUT', '/v1/recurringjobs/nightly', { body: { task: 'backup', cron: '*/30 * * * * *', retain: 2 } });
    assert.equal(updated.status, 200, JSON.stringify(updated.body));
    assert.equal((updated.body['spec'] as Record<string, unknown>)['cron'], '*/30 * * * * *');
    expectError(await api.call('PUT', '/v1/recurringjobs/nightly', { body: { name: 'other', task: 'backup', cron: '* * * * *', retain: 2 } }), 422, 'invalid');
    expectError(await api.call('PUT', '/v1/recurringjobs/missing', { body: { task: 'snapshot', cron: '* * * * *', retain: 1 } }), 404, 'not_found');

    const ran = await api.call('POST', '/v1/recurringjobs/nightly?action=runNow');
    assert.equal(ran.status, 200, JSON.stringify(ran.body));
    assert.equal((ran.body['metadata'] as { annotations: Record<string, string> }).annotations[runNowAnnotation], '2026-01-01T00:00:00.000Z');
    expectError(await api.call('POST', '/v1/recurringjobs/nightly?action=explode'), 400, 'bad_request');
    expectError(await api.call('POST', '/v1/recurringjobs/missing?action=runNow'), 404, 'not_found');

    assert.equal((await api.call('DELETE', '/v1/recurringjobs/nightly')).status, 200);
    expectError(await api.call('GET', '/v1/recurringjobs/nightly'), 404, 'not_found');
    expectError(await api.call('DELETE', '/v1/recurringjobs/nightly'), 404, 'not_found');
  });

  test('hostile bodies get 4xx naming the field, and nothing is stored', async () => {
    const cases: { body: unknown; status: number; code: string; path?: string }[] = [
      { body: { task: 'snapshot', cron: '* * * * *', retain: 1 }, status: 422, code: 'invalid', path: 'name' },
      { body: { name: '../etc', task: 'snapshot', cron: '* * * * *', retain: 1 }, status: 400, code: 'invalid_name' },
      { body: { name: 'j'.repeat(41), task: 'snapshot', cron: '* * * * *', retain: 1 }, status: 422, code: 'invalid', path: 'name' },
      { body: { name: 'x', task: 'format-disk', cron: '* * * * *', retain: 1 }, status: 422, code: 'invalid', path: 'task' },
      { body: { name: 'x', task: 'snapshot', cron: 'every day', retain: 1 }, status: 422, code: 'invalid', path: 'cron' },
      { body: { name: 'x', task: 'snapshot', cron: '0 0 31 2 *', retain: 1 }, status: 422, code: 'invalid', path: 'cron' },
      { body: { name: 'x', task: 'snapshot', cron: '* * * * *', retain: 0 }, status: 422, code: 'invalid', path: 'retain' },
      { body: { name: 'x', task: 'snapshot', cron: '* * * * *', retain: 1e9 }, status: 422, code: 'invalid', path: 'retain' },
      { body: { name: 'x', task: 'snapshot', cron: '* * * * *', retain: '3' }, status: 422, code: 'invalid', path: 'retain' },
      { body: { name: 'x', task: 'snapshot', cron: '* * * * *', retain: 1, concurrency: 0 }, status: 422, code: 'invalid', path: 'concurrency' },
      { body: { name: 'x', task: 'snapshot', cron: '* * * * *', retain: 1, groups: ['Bad Group'] }, status: 422, code: 'invalid', path: 'groups[0]' },
      { body: { name: 'x', task: 'snapshot', cron: '* * * * *', retain: 1, parameters: { 'full-backup-interval': 2 } }, status: 422, code: 'invalid', path: 'parameters.full-backup-interval' },
      { body: { name: 'x', task: 'backup', cron: '* * * * *', retain: 1, parameters: { 'full-backup-interval': 'often' } }, status: 422, code: 'invalid' },
      { body: { name: 'x', task: 'backup', cron: '* * * * *', retain: 1, parameters: { rm: '-rf' } }, status: 422, code: 'invalid' },
      { body: { name: 'x', task: 'snapshot', cron: '* * * * *', retain: 1, status: { executionCount: 99 } }, status: 422, code: 'invalid' },
      { body: { name: 'x', task: 'snapshot', cron: '* * * * *', retain: 1, labels: { k: 'v'.repeat(10_000) } }, status: 422, code: 'invalid' },
      { body: [1, 2], status: 400, code: 'bad_request' },
      { body: 'snapshot', status: 400, code: 'bad_request' },
    ];
    for (const { body, status, code, path } of cases) {
      const reply = await api.call('POST', '/v1/recurringjobs', { body });
      expectError(reply, status, code);
      if (path !== undefined) assert.ok(problemPaths(reply).some((p) => p === path || p.startsWith(path)), `${JSON.stringify(body).slice(0, 80)}: ${JSON.stringify(reply.body)}`);
    }
    expectError(await api.call('POST', '/v1/recurringjobs', { rawBody: '{"name":' }), 400, 'bad_request');
    expectError(await api.call('POST', '/v1/recurringjobs', { rawBody: '{"__proto__":{"x":1},"name":"x"}' }), 400, 'bad_request');
    assert.deepEqual((await api.call('GET', '/v1/recurringjobs')).body['data'], []);
  });
});

describe('volume recurring-job actions', () => {
  test('add and delete edit the volume\'s labels; list shows jobs, groups and the default group', async () => {
    assert.equal((await api.call('POST', '/v1/volumes', { body: { name: 'vol-j', size: '1Gi', numberOfReplicas: 1 } })).status, 201);
    assert.equal((await api.call('POST', '/v1/recurringjobs', { body: { name: 'snap', task: 'snapshot', cron: '* * * * *', retain: 3 } })).status, 201);
    const act = (action: string, body: unknown = {}) => api.call('POST', `/v1/volumes/vol-j?action=${action}`, { body });

    const fresh = await act('recurringJobList');
    assert.equal(fresh.status, 200);
    assert.deepEqual(fresh.body['data'], [{ id: 'default', type: 'volumeRecurringJob', name: 'default', isGroup: true }]);
    assert.equal(fresh.body['defaultGroup'], true);

    const added = await act('recurringJobAdd', { name: 'snap' });
    assert.equal(added.status, 200, JSON.stringify(added.body));
    assert.equal((added.body['metadata'] as { labels: Record<string, string> }).labels['recurring-job.shorthorn.io/snap'], 'enabled');
    assert.equal((await act('recurringJobAdd', { name: 'gold', isGroup: true })).status, 200);
    assert.equal((await act('recurringJobAdd', { name: 'gold', isGroup: true })).status, 200, 'adding twice is fine');
    const listed = await act('recurringJobList');
    assert.deepEqual(
      (listed.body['data'] as { name: string; isGroup: boolean }[]).map((e) => [e.name, e.isGroup]),
      [['snap', false], ['gold', true]],
    );
    assert.equal(listed.body['defaultGroup'], false);
    const stored = await api.store.get('Volume', 'vol-j');
    assert.ok(validateResource('Volume', stored).ok);

    expectError(await act('recurringJobAdd', { name: 'missing' }), 422, 'invalid');
    expectError(await act('recurringJobAdd', { name: '../x' }), 422, 'invalid');
    expectError(await act('recurringJobAdd', { name: 'snap', isGroup: 'yes' }), 422, 'invalid');
    expectError(await act('recurringJobAdd', { name: 'snap', extra: 1 }), 422, 'invalid');
    expectError(await act('recurringJobAdd', {}), 422, 'invalid');
    expectError(await api.call('POST', '/v1/volumes/no-such?action=recurringJobAdd', { body: { name: 'snap' } }), 404, 'not_found');

    assert.equal((await act('recurringJobDelete', { name: 'snap' })).status, 200);
    assert.equal((await act('recurringJobDelete', { name: 'gold', isGroup: true })).status, 200);
    assert.equal((await act('recurringJobDelete', { name: 'gold', isGroup: true })).status, 200, 'deleting what is not there is fine');
    assert.equal((await act('recurringJobList')).body['defaultGroup'], true);
  });

  test('the OpenAPI document lists the routes and the action inputs', async () => {
    const doc = (await api.call('GET', '/v1/openapi.json')).body as { paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } };
    assert.ok('/v1/recurringjobs' in doc.paths);
    assert.ok('/v1/recurringjobs/{name}' in doc.paths);
    for (const name of ['RecurringJobInput', 'recurringJobAddInput', 'recurringJobDeleteInput', 'recurringJobListInput', 'RecurringJob']) {
      assert.ok(name in doc.components.schemas, name);
    }
  });
});
