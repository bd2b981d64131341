// The pusher against a real HTTP server standing in for an engine's control API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Engine } from '../control/resources/engine.ts';
import { resourceExamples } from '../control/resources/testing/resource-examples.ts';
import { SnapshotLimitsPusher } from './snapshot-limits-pusher.ts';

test('pushes only a difference, as a PUT with both limits; a refusal is retried every call and logged once', async () => {
  const requests: { method: string; url: string; body: string }[] = [];
  let answer = 200;
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      requests.push({ method: request.method ?? '', url: request.url ?? '', body });
      response.writeHead(answer, { 'content-type': 'application/json' }).end(JSON.stringify(answer === 200 ? {} : { code: 'bad_request', message: 'no' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const logs: string[] = [];
  const pusher = new SnapshotLimitsPusher((m) => logs.push(m));
  const engine: Engine = { ...resourceExamples.Engine, spec: { ...resourceExamples.Engine.spec, snapshotMaxCount: 3 } };
  const { snapshotMaxSize: _s, ...spec } = engine.spec;
  const limited: Engine = { ...engine, spec };
  try {
    assert.equal(await pusher.push(limited, url, { maxCount: 3, maxSizeBytes: 0 }), false, 'in force already');
    assert.equal(await pusher.push(limited, url, undefined), false, 'an engine that reports no limits');
    assert.equal(requests.length, 0);
    assert.equal(await pusher.push(limited, url, { maxCount: 250, maxSizeBytes: 0 }), true);
    assert.deepEqual(requests, [{ method: 'PUT', url: '/v1/snapshot-limits', body: JSON.stringify({ maxCount: 3, maxSizeBytes: 0 }) }]);
    assert.match(logs.at(-1) ?? '', /snapshot limits now maxCount 3, maxSizeBytes 0 .*were 250, 0/);

    answer = 400;
    logs.length = 0;
    for (let i = 0; i < 3; i++) assert.equal(await pusher.push(limited, url, { maxCount: 250, maxSizeBytes: 0 }), false);
    assert.equal(requests.length, 4, 'asked again every time');
    assert.equal(logs.length, 1, `one log line for the same failure: ${logs.join('\n')}`);
    assert.match(logs[0] ?? '', /refused \(400\)/);
    answer = 200;
    assert.equal(await pusher.push(limited, url, { maxCount: 250, maxSizeBytes: 0 }), true);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  // Nobody listening any more: a failure, logged, not thrown.
  logs.length = 0;
  assert.equal(await pusher.push(limited, url, { maxCount: 250, maxSizeBytes: 0 }), false);
  assert.match(logs[0] ?? '', /failed: /);
});
