// The recurring-job routes' part of the OpenAPI document (openapi.ts assembles the whole).
import { Type, type TSchema } from '@sinclair/typebox';
import { RecurringJobSpecSchema } from '../control/resources/recurring-job.ts';
import { recurringJobActionNames } from './recurring-job-routes.ts';

interface Helpers {
  readonly ok: (schema: object, description?: string) => object;
  readonly json: (schema: object) => object;
  readonly ref: (name: string) => object;
  readonly nameParam: readonly object[];
  readonly errors: object;
}

const plain = (schema: TSchema): object => JSON.parse(JSON.stringify(schema)) as object;

export function recurringJobOpenApiSchemas(): Record<string, object> {
  return {
    // Longhorn's flat body: the spec's fields beside the name.
    RecurringJobInput: plain(
      Type.Object(
        { name: Type.String({ maxLength: 40 }), ...Type.Partial(Type.Omit(RecurringJobSpecSchema, ['task', 'cron'])).properties, task: RecurringJobSpecSchema.properties.task, cron: RecurringJobSpecSchema.properties.cron },
        { additionalProperties: false },
      ),
    ),
  };
}

export function recurringJobOpenApiPaths(h: Helpers): Record<string, object> {
  return {
    '/v1/recurringjobs': {
      get: { summary: 'List recurring jobs', responses: h.ok(h.ref('Collection')) },
      post: {
        summary: 'Create a recurring job',
        requestBody: h.json(h.ref('RecurringJobInput')),
        responses: { '201': { description: 'Created', ...h.json(h.ref('RecurringJob')) }, ...h.errors },
      },
    },
    '/v1/recurringjobs/{name}': {
      get: { summary: 'Get a recurring job with its last and next run', parameters: h.nameParam, responses: h.ok(h.ref('RecurringJob')) },
      put: { summary: 'Replace a recurring job\'s settings', parameters: h.nameParam, requestBody: h.json(h.ref('RecurringJobInput')), responses: h.ok(h.ref('RecurringJob')) },
      delete: { summary: 'Delete a recurring job (its snapshots and backups stay)', parameters: h.nameParam, responses: h.ok(h.ref('RecurringJob')) },
      post: {
        summary: 'runNow: run the job once now, off schedule',
        parameters: [...h.nameParam, { name: 'action', in: 'query', required: true, schema: { enum: [...recurringJobActionNames] } }],
        responses: h.ok(h.ref('RecurringJob')),
      },
    },
  };
}
