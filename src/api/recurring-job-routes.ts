// /v1/recurringjobs: Longhorn's recurring-job routes. The body is Longhorn's flat shape
// (`name`, `task`, `cron`, `retain`, `concurrency`, `groups`, `labels`, `parameters`), turned
// into a RecurringJob resource and checked by its schema and rules; `runNow` asks the manager to
// run the job once now (docs/recurring-jobs.md). The manager's recurring-job controller does
// the runs; this file only reads and writes resources.
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../lib/clock.ts';
import { runNowAnnotation } from '../control/controllers/recurring-job-controller.ts';
import type { RecurringJob } from '../control/resources/recurring-job.ts';
import { validateResource, withDefaults } from '../control/resources/validate-resource.ts';
import { isStoreError, type ResourceStore } from '../control/store/resource-store.ts';
import { ApiError } from './api-error.ts';
import { bodyObject } from './input-check.ts';
import { collectionView, resourceView, type ResourceView } from './resource-view.ts';
import { checkName, getOrNotFound, listLimited, modifyResource } from './store-access.ts';

export const recurringJobActionNames = ['runNow'] as const;

export function recurringJobView(job: RecurringJob): ResourceView {
  return resourceView('recurringjobs', job, recurringJobActionNames);
}

function bodyPath(path: string): string {
  if (path.startsWith('spec.')) return path.slice('spec.'.length);
  return path === 'metadata.name' ? 'name' : path;
}

/**
 * Longhorn clients send `parameters` as strings (`{"full-backup-interval": "2"}`); a string of
 * digits becomes the number our schema takes, anything else is left for the schema to refuse.
 */
function numericParameters(parameters: unknown): unknown {
  if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) return parameters;
  return Object.fromEntries(
    Object.entries(parameters).map(([key, value]) => [key, typeof value === 'string' && /^[0-9]{1,9}$/.test(value) ? Number(value) : value]),
  );
}

/** The job a create (or update) body describes; `name` from the URL when updating. */
export function recurringJobFromBody(body: unknown, urlName?: string): RecurringJob {
  const { name: bodyName, ...fields } = bodyObject(body);
  const name = bodyName ?? urlName;
  if (typeof name !== 'string') {
    throw ApiError.invalid('recurring job', [{ path: 'name', reason: name === undefined ? 'is required' : 'must be a string' }]);
  }
  checkName(name, 'recurring job');
  if (urlName !== undefined && name !== urlName) {
    throw ApiError.invalid(`recurring job ${urlName}`, [{ path: 'name', reason: `is ${JSON.stringify(name)}, but the URL names ${urlName}; a job cannot be renamed` }]);
  }
  if ('parameters' in fields) fields['parameters'] = numericParameters(fields['parameters']);
  const resource = withDefaults('RecurringJob', { apiVersion: 'shorthorn.io/v1', kind: 'RecurringJob', metadata: { name }, spec: fields });
  const checked = validateResource('RecurringJob', resource);
  if (!checked.ok) throw ApiError.invalid(`recurring job ${name}`, checked.problems.map((p) => ({ path: bodyPath(p.path), reason: p.reason })));
  return checked.value;
}

async function createJob(store: ResourceStore, body: unknown): Promise<ResourceView> {
  const job = recurringJobFromBody(body);
  try {
    return recurringJobView((await store.create(job)) as RecurringJob);
  } catch (error) {
    if (isStoreError(error, 'already_exists')) {
      throw new ApiError('already_exists', `a recurring job named ${job.metadata.name} exists already; update it with PUT or delete it first`, { cause: error });
    }
    throw error;
  }
}

async function updateJob(store: ResourceStore, name: string, body: unknown): Promise<ResourceView> {
  const wanted = recurringJobFromBody(body, name);
  const stored = await modifyResource<RecurringJob>(store, 'RecurringJob', name, (current) =>
    JSON.stringify(current.spec) === JSON.stringify(wanted.spec) ? null : { ...current, spec: wanted.spec },
  );
  return recurringJobView(stored);
}

async function runNow(store: ResourceStore, clock: Clock, name: string): Promise<ResourceView> {
  // The request time identifies the request; the controller runs once per new value.
  const requestedAt = new Date(clock.nowMs()).toISOString();
  const stored = await modifyResource<RecurringJob>(store, 'RecurringJob', name, (current) => ({
    ...current,
    metadata: { ...current.metadata, annotations: { ...current.metadata.annotations, [runNowAnnotation]: requestedAt } },
  }));
  return recurringJobView(stored);
}

export function registerRecurringJobRoutes(app: FastifyInstance, options: { store: ResourceStore; clock: Clock }): void {
  const { store, clock } = options;
  app.get('/v1/recurringjobs', async () => {
    const { items, truncated } = await listLimited<RecurringJob>(store, 'RecurringJob');
    return collectionView('recurringjobs', 'recurringJob', items.map(recurringJobView), truncated);
  });
  app.post('/v1/recurringjobs', async (request, reply) => reply.code(201).send(await createJob(store, request.body)));
  app.get<{ Params: { name: string } }>('/v1/recurringjobs/:name', async (request) =>
    recurringJobView(await getOrNotFound<RecurringJob>(store, 'RecurringJob', request.params.name)),
  );
  app.put<{ Params: { name: string } }>('/v1/recurringjobs/:name', async (request) => {
    checkName(request.params.name, 'recurring job');
    return updateJob(store, request.params.name, request.body);
  });
  app.delete<{ Params: { name: string } }>('/v1/recurringjobs/:name', async (request) => {
    await getOrNotFound<RecurringJob>(store, 'RecurringJob', request.params.name);
    return recurringJobView((await store.delete('RecurringJob', request.params.name)) as RecurringJob);
  });
  app.post<{ Params: { name: string }; Querystring: Record<string, unknown> }>('/v1/recurringjobs/:name', async (request) => {
    const action = request.query['action'];
    if (action !== 'runNow') {
      throw new ApiError('bad_request', `POST /v1/recurringjobs/NAME needs ?action=runNow, not ${JSON.stringify(action ?? null)}`);
    }
    return runNow(store, clock, request.params.name);
  });
}
