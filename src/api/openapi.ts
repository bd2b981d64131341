// The OpenAPI 3.1 document at /v1/openapi.json, built from the same TypeBox schemas that
// validate resources and inputs (3.1's schema dialect is JSON Schema, so they go in unchanged).
import type { TSchema } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import { kindNames, resourceKinds, resourceSchema } from '../control/resources/resource-kinds.ts';
import { VolumeSpecSchema } from '../control/resources/volume.ts';
import { backupOpenApiPaths, backupOpenApiSchemas } from './backup-openapi.ts';
import { recurringJobOpenApiPaths, recurringJobOpenApiSchemas } from './recurring-job-openapi.ts';
import { DiskUpdateInputSchema, NodeUpdateInputSchema } from './node-routes.ts';
import { volumeActionNames } from './resource-view.ts';
import { SettingUpdateInputSchema } from './setting-routes.ts';
import { volumeActionInputs, SizeInput } from './volume-inputs.ts';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const errors = {
  '400': { description: 'Malformed request or invalid name', ...json(ref('Error')) },
  '401': { description: 'Missing or wrong bearer token', ...json(ref('Error')) },
  '404': { description: 'No such resource', ...json(ref('Error')) },
  '409': { description: 'Conflicts with the resource\'s state', ...json(ref('Error')) },
  '422': { description: 'Body refused by validation; `problems` lists the fields', ...json(ref('Error')) },
};
const nameParam = [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }];
const ok = (schema: object, description = 'OK') => ({ '200': { description, ...json(schema) }, ...errors });

/** A plain-JSON copy (TypeBox's symbol keys are dropped by JSON). */
function plain(schema: TSchema): object {
  return JSON.parse(JSON.stringify(schema)) as object;
}

function readOnlyCollection(plural: string, kind: string): Record<string, object> {
  return {
    [`/v1/${plural}`]: { get: { summary: `List ${plural}`, responses: ok(ref('Collection')) } },
    [`/v1/${plural}/{name}`]: { get: { summary: `Get one ${kind}`, parameters: nameParam, responses: ok(ref(kind)) } },
  };
}

export function buildOpenApiDocument(): object {
  const schemas: Record<string, object> = {};
  for (const kind of kindNames) schemas[kind] = plain(resourceSchema(kind));
  const { nodeID: _nodeID, lastAttachedBy: _lastAttachedBy, size: _size, ...specFields } = VolumeSpecSchema.properties;
  schemas['VolumeCreateInput'] = plain(
    Type.Object(
      { name: Type.String({ maxLength: 40 }), size: SizeInput, labels: Type.Optional(Type.Record(Type.String(), Type.String())), ...Type.Partial(Type.Object(specFields)).properties },
      { additionalProperties: false },
    ),
  );
  for (const action of volumeActionNames) schemas[`${action}Input`] = plain(volumeActionInputs[action]);
  schemas['SettingUpdateInput'] = plain(SettingUpdateInputSchema);
  schemas['NodeUpdateInput'] = plain(NodeUpdateInputSchema);
  schemas['diskUpdateInput'] = plain(DiskUpdateInputSchema);
  Object.assign(schemas, backupOpenApiSchemas());
  Object.assign(schemas, recurringJobOpenApiSchemas());
  schemas['Error'] = {
    type: 'object',
    required: ['type', 'status', 'code', 'message'],
    properties: {
      type: { const: 'error' },
      status: { type: 'integer' },
      code: { type: 'string' },
      message: { type: 'string' },
      problems: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, reason: { type: 'string' } } } },
    },
  };
  schemas['Collection'] = {
    type: 'object',
    properties: { type: { const: 'collection' }, resourceType: { type: 'string' }, data: { type: 'array' }, truncated: { type: 'boolean' } },
  };

  const paths: Record<string, object> = {
    '/healthz': { get: { summary: 'Liveness (no token needed)', security: [], responses: { '200': { description: 'OK' } } } },
    '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text exposition format' } } } },
    '/v1/volumes': {
      get: { summary: 'List volumes', responses: ok(ref('Collection')) },
      post: { summary: 'Create a volume', requestBody: json(ref('VolumeCreateInput')), responses: { '201': { description: 'Created', ...json(ref('Volume')) }, ...errors } },
    },
    '/v1/volumes/{name}': {
      get: { summary: 'Get a volume', parameters: nameParam, responses: ok(ref('Volume')) },
      delete: { summary: 'Delete a volume', parameters: nameParam, responses: ok(ref('Volume')) },
      post: {
        summary: `Run a volume action: ${volumeActionNames.join(', ')}`,
        parameters: [...nameParam, { name: 'action', in: 'query', required: true, schema: { enum: [...volumeActionNames] } }],
        requestBody: json({ oneOf: volumeActionNames.map((action) => ref(`${action}Input`)) }),
        responses: ok({}),
      },
    },
    '/v1/nodes': { get: { summary: 'List nodes', responses: ok(ref('Collection')) } },
    '/v1/nodes/{name}': {
      get: { summary: 'Get a node', parameters: nameParam, responses: ok(ref('Node')) },
      put: { summary: 'Update scheduling, eviction and tags', parameters: nameParam, requestBody: json(ref('NodeUpdateInput')), responses: ok(ref('Node')) },
      post: {
        summary: 'diskUpdate: replace the node\'s disks',
        parameters: [...nameParam, { name: 'action', in: 'query', required: true, schema: { const: 'diskUpdate' } }],
        requestBody: json(ref('diskUpdateInput')),
        responses: ok(ref('Node')),
      },
    },
    '/v1/nodetags': { get: { summary: 'Distinct node tags', responses: ok({ type: 'array', items: { type: 'string' } }) } },
    '/v1/disktags': { get: { summary: 'Distinct disk tags', responses: ok({ type: 'array', items: { type: 'string' } }) } },
    '/v1/settings': { get: { summary: 'List settings with their definitions', responses: ok(ref('Collection')) } },
    '/v1/settings/{name}': {
      get: { summary: 'Get a setting', parameters: nameParam, responses: ok(ref('Setting')) },
      put: { summary: 'Set a setting', parameters: nameParam, requestBody: json(ref('SettingUpdateInput')), responses: ok(ref('Setting')) },
    },
    '/v1/events': { get: { summary: 'Recent resource changes', responses: ok(ref('Collection')) } },
    '/v1/events/stream': { get: { summary: 'Live resource changes (server-sent events)', responses: { '200': { description: 'text/event-stream' } } } },
    ...readOnlyCollection('replicas', 'Replica'),
    ...readOnlyCollection('engines', 'Engine'),
    ...readOnlyCollection('snapshots', 'Snapshot'),
    ...readOnlyCollection('volumeattachments', 'VolumeAttachment'),
    ...backupOpenApiPaths({ ok, json, ref, nameParam, errors }),
    ...recurringJobOpenApiPaths({ ok, json, ref, nameParam, errors }),
  };
  return {
    openapi: '3.1.0',
    info: { title: 'Shorthorn API', version: 'v1', description: 'Shaped like Longhorn\'s API: resources with links and actions. See docs/api.md.' },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas },
    paths,
    'x-kinds': Object.fromEntries(kindNames.map((kind) => [kind, resourceKinds[kind].plural])),
  };
}
