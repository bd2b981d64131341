// The web UI's files and the event-stream cookie, over a real socket (so paths reach the server
// exactly as written, `..` and all): content types, SPA fallback, traversal refused, no token for
// the UI, the cookie opens only the stream and only with the right value.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openStore } from '../control/store/open-store.ts';
import type { ResourceStore } from '../control/store/resource-store.ts';
import { ManualClock } from '../lib/clock.ts';
import { createApiServer, type ApiServer } from './api-server.ts';
import { ensureApiToken } from './api-token.ts';
import { streamCookieName, streamCookieValue } from './ui-session.ts';
import { chooseUiFile } from './ui-static.ts';

interface RawReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

let dir: string;
let store: ResourceStore;
let server: ApiServer;
let port: number;
let token: string;

/** One request with the path sent byte for byte; a stream's first chunk is enough for a 200. */
function raw(method: string, path: string, headers: Record<string, string> = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (res.headers['content-type'] === 'text/event-stream') {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text });
          req.destroy();
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shorthorn-ui-static-'));
  const uiDir = join(dir, 'ui');
  await mkdir(join(uiDir, 'assets'), { recursive: true });
  await writeFile(join(uiDir, 'index.html'), '<!doctype html><title>Shorthorn</title>');
  await writeFile(join(uiDir, 'assets', 'app-1234.js'), 'console.log(1)');
  await writeFile(join(uiDir, 'assets', 'app-1234.css'), 'body{}');
  await writeFile(join(dir, 'secret.txt'), 'do not serve');
  await symlink(join(dir, 'secret.txt'), join(uiDir, 'assets', 'leak.txt'));
  store = openStore({ backend: 'embedded', dataDir: join(dir, 'store'), pollIntervalMs: 5 });
  token = await ensureApiToken(dir);
  server = createApiServer({ store, token, clock: new ManualClock(0), log: () => undefined, uiDir });
  port = await server.listen({ host: '127.0.0.1', port: 0 });
});
after(async () => {
  await server.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe('chooseUiFile', () => {
  test('routes get index.html, assets their file, dot segments are refused', () => {
    assert.deepEqual(chooseUiFile('/ui/'), { kind: 'file', relativePath: 'index.html' });
    assert.deepEqual(chooseUiFile('/ui/volumes/vol-a'), { kind: 'file', relativePath: 'index.html' });
    assert.deepEqual(chooseUiFile('/ui/assets/a.js'), { kind: 'file', relativePath: 'assets/a.js' });
    for (const bad of ['/ui/../../etc/passwd', '/ui/%2e%2e/%2e%2e/etc/passwd', '/ui/..%2f..%2fetc%2fpasswd', '/ui/./index.html', '/ui/a%00.js', '/ui/..%5c..%5cetc', '/ui/%E0%A4%A']) {
      assert.equal(chooseUiFile(bad).kind, 'refused', bad);
    }
  });
});

describe('UI files', () => {
  test('served without a token, with content types and cache rules', async () => {
    const index = await raw('GET', '/ui/');
    assert.equal(index.status, 200);
    assert.match(String(index.headers['content-type']), /^text\/html/);
    assert.match(String(index.headers['content-security-policy']), /default-src 'self'/);
    assert.equal(index.headers['cache-control'], 'no-cache');
    assert.match(index.text, /<title>Shorthorn/);
    const js = await raw('GET', '/ui/assets/app-1234.js');
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /^text\/javascript/);
    assert.match(String(js.headers['cache-control']), /immutable/);
    assert.equal(js.headers['x-content-type-options'], 'nosniff');
    assert.match(String((await raw('GET', '/ui/assets/app-1234.css')).headers['content-type']), /^text\/css/);
    const route = await raw('GET', '/ui/volumes/vol-a?x=1');
    assert.equal(route.status, 200);
    assert.match(route.text, /<title>Shorthorn/);
    const bare = await raw('GET', '/ui');
    assert.equal(bare.status, 302);
    assert.equal(bare.headers['location'], '/ui/');
  });

  test('a missing asset is 404, traversal is 400, a symlink out is refused', async () => {
    assert.equal((await raw('GET', '/ui/assets/nope.js')).status, 404);
    assert.equal((await raw('GET', `/ui/assets/${'a'.repeat(300)}.js`)).status, 404);
    assert.equal((await raw('GET', `/ui/${'d/'.repeat(3000)}x.js`)).status, 404);
    assert.equal((await raw('GET', '/ui/index.html/x.js')).status, 404);
    for (const bad of ['/ui/../../etc/passwd', '/ui/%2e%2e/%2e%2e/etc/passwd', '/ui/..%2f..%2f..%2fetc%2fpasswd', '/ui/assets/..%2f..%2fsecret.txt']) {
      const reply = await raw('GET', bad);
      assert.equal(reply.status, 400, `${bad}: ${reply.text}`);
      assert.equal((JSON.parse(reply.text) as { code: string }).code, 'bad_request');
      assert.doesNotMatch(reply.text, /root:|do not serve/);
    }
    const leak = await raw('GET', '/ui/assets/leak.txt');
    assert.equal(leak.status, 400);
    assert.doesNotMatch(leak.text, /do not serve/);
  });

  test('the API itself still needs the token', async () => {
    assert.equal((await raw('GET', '/v1/volumes')).status, 401);
    assert.equal((await raw('GET', '/v1/volumes', { authorization: `Bearer ${token}` })).status, 200);
  });
});

describe('event-stream cookie', () => {
  test('POST /v1/session needs the token and sets a path-scoped HttpOnly cookie that is not the token', async () => {
    assert.equal((await raw('POST', '/v1/session')).status, 401);
    const session = await raw('POST', '/v1/session', { authorization: `Bearer ${token}` });
    assert.equal(session.status, 204);
    const cookie = String(session.headers['set-cookie']);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.match(cookie, /Path=\/v1\/events\/stream/);
    assert.ok(!cookie.includes(token), 'the cookie must not carry the token');
    assert.ok(cookie.startsWith(`${streamCookieName}=${streamCookieValue(token)};`));
    const cleared = await raw('DELETE', '/v1/session', { authorization: `Bearer ${token}` });
    assert.match(String(cleared.headers['set-cookie']), /Max-Age=0/);
  });

  test('the cookie opens the stream and nothing else; a wrong cookie opens nothing', async () => {
    const good = `${streamCookieName}=${streamCookieValue(token)}`;
    const stream = await raw('GET', '/v1/events/stream', { cookie: `other=1; ${good}` });
    assert.equal(stream.status, 200);
    assert.match(stream.text, /: connected/);
    assert.equal((await raw('GET', '/v1/events/stream', { cookie: `${streamCookieName}=${'0'.repeat(64)}` })).status, 401);
    assert.equal((await raw('GET', '/v1/events/stream', { cookie: `${streamCookieName}=${token}` })).status, 401);
    assert.equal((await raw('GET', '/v1/events/stream')).status, 401);
    assert.equal((await raw('GET', '/v1/volumes', { cookie: good })).status, 401);
    assert.equal((await raw('GET', '/v1/events', { cookie: good })).status, 401);
    assert.equal((await raw('POST', '/v1/session', { cookie: good })).status, 401);
  });
});
