// An API server over a real embedded store in a temporary directory, called in-process through
// fastify's inject (no sockets), with helpers to seed what the controllers would have written.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '../../control/resources/object-meta.ts';
import { resourceExamples } from '../../control/resources/testing/resource-examples.ts';
import { openStore } from '../../control/store/open-store.ts';
import type { ResourceStore } from '../../control/store/resource-store.ts';
import { ManualClock } from '../../lib/clock.ts';
import { createApiServer, type ApiServer } from '../api-server.ts';
import { ensureApiToken } from '../api-token.ts';

export interface ApiReply {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly text: string;
  readonly headers: Record<string, unknown>;
}

export interface ApiFixture {
  readonly dir: string;
  readonly store: ResourceStore;
  readonly server: ApiServer;
  readonly token: string;
  readonly logged: string[];
  call(method: string, url: string, options?: { body?: unknown; rawBody?: string; token?: string | null; contentType?: string }): Promise<ApiReply>;
  seedNode(name: string): Promise<Resource>;
  /** Write a volume's status as the volume controller would. */
  setVolumeStatus(name: string, status: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

export async function startApiFixture(): Promise<ApiFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'shorthorn-api-'));
  const store = openStore({ backend: 'embedded', dataDir: dir, pollIntervalMs: 5 });
  const token = await ensureApiToken(dir);
  const logged: string[] = [];
  const server = createApiServer({ store, token, clock: new ManualClock(Date.parse('2026-01-01T00:00:00Z')), log: (m) => logged.push(m) });
  const fixture: ApiFixture = {
    dir,
    store,
    server,
    token,
    logged,
    call: async (method, url, options = {}) => {
      const headers: Record<string, string> = {};
      const presented = options.token === undefined ? token : options.token;
      if (presented !== null) headers['authorization'] = `Bearer ${presented}`;
      let payload: string | undefined;
      if (options.rawBody !== undefined) payload = options.rawBody;
      else if (options.body !== undefined) payload = JSON.stringify(options.body);
      if (payload !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
      const response = await server.app.inject({ method: method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) });
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(response.body) as Record<string, unknown>;
      } catch {
        // not JSON (metrics): leave body empty, text has it
      }
      return { status: response.statusCode, body, text: response.body, headers: response.headers };
    },
    seedNode: async (name) => {
      const example = structuredClone(resourceExamples.Node);
      return store.create({ ...example, metadata: { name } });
    },
    setVolumeStatus: async (name, status) => {
      const current = await store.get('Volume', name);
      await store.updateStatus({ ...current, status: { ...(current.status as object), ...status } });
    },
    close: async () => {
      await server.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return fixture;
}
