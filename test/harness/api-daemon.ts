// `shorthorn api` on a test's embedded store, with the calls the end-to-end tests make through it:
// any request with the token, and a volume action that must succeed.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDaemon, type Daemon } from './daemon.ts';

export interface ApiReply {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

export interface ApiDaemon {
  readonly daemon: Daemon;
  readonly url: string;
  readonly token: string;
  readonly call: (method: string, path: string, body?: unknown) => Promise<ApiReply>;
  /** POST /v1/volumes/VOLUME?action=NAME, asserting 200; the answer's body. */
  readonly action: (volume: string, name: string, body?: unknown) => Promise<Record<string, unknown>>;
}

/** Start the API on a free port over `storeDir` (stopped with the harness's stopAll()). */
export async function startApiDaemon(storeDir: string): Promise<ApiDaemon> {
  const daemon = await startDaemon({ args: ['api', '--store', `embedded:${storeDir}`, '--port', '0'], readyPattern: /listening on (http:\/\/127\.0\.0\.1:\d+)/, timeoutMs: 60_000 });
  const url = daemon.ready[1] ?? '';
  const token = (await readFile(join(storeDir, 'api-token'), 'utf8')).trim();
  const call = async (method: string, path: string, body?: unknown): Promise<ApiReply> => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const action = async (volume: string, name: string, body: unknown = {}): Promise<Record<string, unknown>> => {
    const answer = await call('POST', `/v1/volumes/${volume}?action=${name}`, body);
    assert.equal(answer.status, 200, `${name}: ${JSON.stringify(answer.body)}`);
    return answer.body;
  };
  return { daemon, url, token, call, action };
}
