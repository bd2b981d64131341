// Refusals of request bodies over a real socket: a client still sending a body that the API
// refuses (too large, no token) gets the answer, not a reset. fastify answers 413 from the
// content-length before reading a byte; without reading the rest first, a fetch() still sending
// fails with EPIPE about one time in a few (S31 in CI).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startApiFixture, type ApiFixture } from './testing/api-fixture.ts';
import { requestBodyDrainMaxBytes } from '../lib/limits.ts';
import { slowUpload } from '../lib/testing/slow-upload.ts';

let api: ApiFixture;
let url = '';

before(async () => {
  api = await startApiFixture();
  const port = await api.server.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${port}`;
});
after(async () => {
  await api.close();
});

async function post(body: string, token: string | null): Promise<{ status: number; code: unknown }> {
  const response = await fetch(`${url}/v1/volumes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
    body,
  });
  const json = (await response.json()) as Record<string, unknown>;
  return { status: response.status, code: json['code'] };
}

test('a body over the limit gets 413 every time, on a fresh connection each time', async () => {
  const body = JSON.stringify({ name: 'big', size: 1 << 30, labels: { a: 'y'.repeat(3 << 20) } });
  for (let i = 0; i < 5; i++) assert.deepEqual(await post(body, api.token), { status: 413, code: 'too_large' }, `request ${i}`);
  const { items } = await api.store.list('Volume');
  assert.equal(items.length, 0);
});

test('a client writing its over-limit body in small pieces finishes sending, then reads the 413', async () => {
  const head = `POST /v1/volumes HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${api.token}\r\ncontent-type: application/json\r\nconnection: close\r\n`;
  // fastify refuses from the header alone; every piece must still go through.
  const answer = await slowUpload(Number(new URL(url).port), head, 6 << 20);
  assert.match(answer, /^HTTP\/1\.1 413 /);
  assert.match(answer, /"code":"too_large"/);
});

test('a large body without a token gets 401, not a reset', async () => {
  const body = JSON.stringify({ name: 'big', size: 1 << 30, labels: { a: 'y'.repeat(1 << 20) } });
  for (let i = 0; i < 10; i++) assert.deepEqual(await post(body, null), { status: 401, code: 'unauthorized' }, `request ${i}`);
});

test('a body past the drain cap has its connection cut, and the server goes on answering', async () => {
  const body = 'x'.repeat(requestBodyDrainMaxBytes + (4 << 20));
  await assert.rejects(post(body, api.token), (error: unknown) => error instanceof TypeError);
  assert.deepEqual(await post('{"name":', api.token), { status: 400, code: 'bad_request' });
});
