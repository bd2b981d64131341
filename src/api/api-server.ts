// The REST API: Longhorn's routes and shapes (reference §4) over a ResourceStore, on fastify.
// It only reads and writes resources; the manager's controllers act on what it writes. Every
// call but /healthz needs the bearer token; every error is `{ type, status, code, message }`.
import { fastify, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Clock } from '../lib/clock.ts';
import type { Engine } from '../control/resources/engine.ts';
import type { Resource } from '../control/resources/object-meta.ts';
import type { Replica } from '../control/resources/replica.ts';
import type { Snapshot } from '../control/resources/snapshot.ts';
import type { Volume } from '../control/resources/volume.ts';
import { isStoreError, type ResourceStore } from '../control/store/resource-store.ts';
import { ApiError, errorBody, toApiError, type ApiErrorCode } from './api-error.ts';
import { apiBodySizeMaxBytes, apiParamLengthMax, apiRequestTimeoutMs, apiTokenLengthMax, requestBodyDrainMaxBytes } from '../lib/limits.ts';
import { drainBody } from '../lib/drain-body.ts';
import { tokenMatches } from './api-token.ts';
import { registerBackupRoutes, type BackupAccess } from './backup-routes.ts';
import { EventHub } from './event-hub.ts';
import { registerEventStream } from './event-stream.ts';
import { renderMetrics } from './metrics.ts';
import { registerNodeRoutes } from './node-routes.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { collectionView, isVolumeActionName, resourceView, volumeView, volumeActionNames } from './resource-view.ts';
import { registerSettingRoutes } from './setting-routes.ts';
import { registerRecurringJobRoutes } from './recurring-job-routes.ts';
import { checkName, getOrNotFound, listLimited } from './store-access.ts';
import { registerUiSession, streamCookieMatches } from './ui-session.ts';
import { defaultUiDir, isUiPath, registerUiStatic } from './ui-static.ts';
import { runVolumeAction } from './volume-actions.ts';
import { volumeFromCreateBody } from './volume-create.ts';

export interface ApiServerOptions {
  readonly store: ResourceStore;
  readonly token: string;
  readonly clock: Clock;
  /** Server-side failures (500s, broken watches) go here with their cause. */
  readonly log: (message: string) => void;
  /** The built web UI, served under /ui/ (default: ui/dist of this checkout). */
  readonly uiDir?: string;
  /** Lets backupVerify read the backup target; without it that action answers 503. */
  readonly backupAccess?: BackupAccess;
}

export interface ApiServer {
  readonly app: FastifyInstance;
  /** Listen; resolves to the bound port (pass 0 for any free one). */
  listen(options: { host: string; port: number }): Promise<number>;
  close(): Promise<void>;
}

const publicPaths = new Set(['/healthz']);

function fastifyErrorCode(status: number): ApiErrorCode {
  switch (status) {
    case 404:
      return 'not_found';
    case 405:
      return 'method_not_allowed';
    case 413:
      return 'too_large';
    case 415:
      return 'unsupported_media_type';
    default:
      return 'bad_request';
  }
}

function sendError(reply: FastifyReply, error: ApiError): FastifyReply {
  if (error.code === 'unauthorized') void reply.header('www-authenticate', 'Bearer');
  return reply.code(error.status).type('application/json').send(errorBody(error));
}

export function createApiServer(options: ApiServerOptions): ApiServer {
  const { store, token, clock, log } = options;
  const app = fastify({
    logger: false,
    bodyLimit: apiBodySizeMaxBytes,
    routerOptions: { maxParamLength: apiParamLengthMax },
    requestTimeout: apiRequestTimeoutMs,
    // `__proto__` and `constructor.prototype` in a body are refused (400) rather than stripped.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    // Router refusals (an over-long name in the path, a malformed URL) in our error shape.
    frameworkErrors: (error, _request, reply) => {
      const code = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'invalid_name' : 'bad_request';
      void sendError(reply, new ApiError(code, error.message.slice(0, 300), { cause: error }));
    },
  });
  // JSON only: a text/plain body is 415, not a string that handlers must then refuse.
  app.removeContentTypeParser('text/plain');
  const hub = new EventHub({ store, clock, log });

  app.addHook('onRequest', (request, _reply, done) => {
    const path = request.url.split('?')[0] ?? '';
    if (publicPaths.has(path) || isUiPath(path)) return done();
    const header = request.headers.authorization;
    // The browser's EventSource cannot send the header: the stream alone also takes a cookie.
    if (header === undefined && streamCookieMatches(request.method, path, request.headers.cookie, token)) return done();
    if (header === undefined) {
      return done(new ApiError('unauthorized', 'missing bearer token: send "Authorization: Bearer TOKEN" with the token from DATA/api-token'));
    }
    const match = /^Bearer ([^\s]+)$/.exec(header.length > apiTokenLengthMax ? '' : header);
    if (match === null || !tokenMatches(match[1] ?? '', token)) {
      return done(new ApiError('unauthorized', 'wrong bearer token: use the one in DATA/api-token of the API\'s data directory'));
    }
    done();
  });

  app.setErrorHandler(async (error: FastifyError | ApiError | Error, request: FastifyRequest, reply: FastifyReply) => {
    let apiError: ApiError;
    const status = (error as FastifyError).statusCode;
    if (!(error instanceof ApiError) && !isStoreError(error) && status !== undefined && status >= 400 && status < 500) {
      // fastify's own refusals: bad JSON, body too large, wrong content type, poisoned keys.
      apiError = new ApiError(fastifyErrorCode(status), error.message, { cause: error });
    } else {
      apiError = toApiError(error);
    }
    if (apiError.status >= 500) log(`${apiError.code}: ${error.stack ?? error.message}`);
    // A refusal before the body was read (too large, no token): read the rest first, or the
    // client still sending it sees the connection close under it instead of this answer.
    if (!request.raw.readableEnded) await drainBody(request.raw, requestBodyDrainMaxBytes);
    return sendError(reply, apiError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new ApiError('not_found', `no route ${request.method} ${request.url.split('?')[0]?.slice(0, 200) ?? ''}; GET /v1/openapi.json lists the routes`)),
  );

  app.get('/healthz', () => ({ status: 'ok' }));
  app.get('/', () => ({ type: 'apiVersion', id: 'v1', links: { self: '/v1' } }));
  app.get('/v1', () => ({
    type: 'apiVersion',
    id: 'v1',
    links: Object.fromEntries(
      ['volumes', 'nodes', 'settings', 'replicas', 'engines', 'snapshots', 'volumeattachments', 'events', 'nodetags', 'disktags', 'backuptargets', 'backupvolumes', 'backups', 'recurringjobs'].map((p) => [p, `/v1/${p}`]),
    ),
  }));
  const openApi = buildOpenApiDocument();
  app.get('/v1/openapi.json', () => openApi);
  app.get('/metrics', async (_request, reply) => {
    const metrics = await renderMetrics(store);
    return reply.type(metrics.contentType).send(metrics.text);
  });

  // Volumes
  app.get('/v1/volumes', async () => {
    const { items, truncated } = await listLimited<Volume>(store, 'Volume');
    return collectionView('volumes', 'volume', items.map(volumeView), truncated);
  });
  app.post('/v1/volumes', async (request, reply) => {
    const volume = await volumeFromCreateBody(store, request.body);
    try {
      return await reply.code(201).send(volumeView((await store.create(volume)) as Volume));
    } catch (error) {
      if (isStoreError(error, 'already_exists')) {
        throw new ApiError('already_exists', `a volume named ${volume.metadata.name} exists already; choose another name or delete it first`);
      }
      throw error;
    }
  });
  app.get<{ Params: { name: string } }>('/v1/volumes/:name', async (request) => volumeView(await getOrNotFound<Volume>(store, 'Volume', request.params.name)));
  app.delete<{ Params: { name: string } }>('/v1/volumes/:name', async (request) => {
    await getOrNotFound<Volume>(store, 'Volume', request.params.name);
    return volumeView((await store.delete('Volume', request.params.name)) as Volume);
  });
  app.post<{ Params: { name: string }; Querystring: Record<string, unknown> }>('/v1/volumes/:name', async (request) => {
    const action = request.query['action'];
    if (typeof action !== 'string' || !isVolumeActionName(action)) {
      throw new ApiError('bad_request', `POST /v1/volumes/NAME needs ?action= one of ${volumeActionNames.join(', ')}; got ${JSON.stringify(action ?? null)}`);
    }
    return runVolumeAction({ store, clock, ...(options.backupAccess === undefined ? {} : { access: options.backupAccess }) }, request.params.name, action, request.body ?? {});
  });

  // Read-only collections of what the controllers write.
  const readOnly = <R extends Resource>(plural: string, kind: string, volumeOf: (r: R) => string | undefined): void => {
    app.get<{ Querystring: Record<string, unknown> }>(`/v1/${plural}`, async (request) => {
      const volume = request.query['volume'];
      if (volume !== undefined && typeof volume !== 'string') throw new ApiError('bad_request', '?volume= must be given once');
      // A name no volume can have (`../x`) is a mistake to report, not an empty list.
      if (volume !== undefined) checkName(volume, 'volume');
      const { items, truncated } = await listLimited<R>(store, kind, (r) => volume === undefined || volumeOf(r) === volume);
      return collectionView(plural, kind.toLowerCase(), items.map((r) => resourceView(plural, r)), truncated);
    });
    app.get<{ Params: { name: string } }>(`/v1/${plural}/:name`, async (request) =>
      resourceView(plural, await getOrNotFound<R>(store, kind, request.params.name)),
    );
  };
  readOnly<Replica>('replicas', 'Replica', (r) => r.spec.volumeName);
  readOnly<Engine>('engines', 'Engine', (r) => r.spec.volumeName);
  readOnly<Snapshot>('snapshots', 'Snapshot', (r) => r.spec.volume);
  readOnly<Resource<{ volume: string }>>('volumeattachments', 'VolumeAttachment', (r) => r.spec.volume);

  registerNodeRoutes(app, store);
  registerSettingRoutes(app, store);
  registerRecurringJobRoutes(app, { store, clock });
  registerBackupRoutes(app, { store, clock, ...(options.backupAccess === undefined ? {} : { access: options.backupAccess }) });
  app.get('/v1/events', () => ({ type: 'collection', resourceType: 'event', links: { self: '/v1/events' }, data: hub.history(), truncated: false }));
  registerEventStream(app, hub);
  registerUiSession(app, token);
  registerUiStatic(app, { dir: options.uiDir ?? defaultUiDir });

  hub.start();
  return {
    app,
    listen: async ({ host, port }) => {
      await app.listen({ host, port });
      const address = app.server.address();
      if (address === null || typeof address === 'string') throw new Error(`API bound to ${String(address)}, not a TCP port`);
      return address.port;
    },
    close: async () => {
      await hub.close();
      await app.close();
    },
  };
}
