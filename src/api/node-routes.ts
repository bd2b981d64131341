// /v1/nodes: list, get, PUT of the user's switches (allowScheduling, evictionRequested, tags),
// and Longhorn's `diskUpdate` action, which replaces the node's disk set; /v1/nodetags and
// /v1/disktags for pickers. Every write is checked against the Node schema and rules.
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { StrictObject, Tags } from '../control/resources/common-schemas.ts';
import { DiskSpecSchema, type Node } from '../control/resources/node.ts';
import { Value } from '@sinclair/typebox/value';
import { validateResource } from '../control/resources/validate-resource.ts';
import type { ResourceStore } from '../control/store/resource-store.ts';
import { diskCountMax } from '../lib/limits.ts';
import { ApiError } from './api-error.ts';
import { bodyObject, checkInput } from './input-check.ts';
import { collectionView, resourceView, type ResourceView } from './resource-view.ts';
import { getOrNotFound, listLimited, modifyResource } from './store-access.ts';

export const NodeUpdateInputSchema = StrictObject({
  allowScheduling: Type.Optional(Type.Boolean()),
  evictionRequested: Type.Optional(Type.Boolean()),
  tags: Type.Optional(Tags('Node tags.')),
});
type NodeUpdateInput = Static<typeof NodeUpdateInputSchema>;

/** Disk fields may be left out (defaults are filled); names and values are checked with the node. */
export const DiskUpdateInputSchema = StrictObject({
  disks: Type.Record(Type.String({ maxLength: 63 }), Type.Partial(DiskSpecSchema), { maxProperties: diskCountMax }),
});
type DiskUpdateInput = Static<typeof DiskUpdateInputSchema>;

export function nodeView(node: Node): ResourceView {
  return resourceView('nodes', node, ['diskUpdate']);
}

function checkedNode(node: Node): Node {
  const checked = validateResource('Node', node);
  if (!checked.ok) throw ApiError.invalid(`node ${node.metadata.name}`, checked.problems);
  return checked.value;
}

async function updateNode(store: ResourceStore, name: string, body: unknown): Promise<ResourceView> {
  const input = checkInput<NodeUpdateInput>(NodeUpdateInputSchema, bodyObject(body), `node ${name} update`);
  const stored = await modifyResource<Node>(store, 'Node', name, (node) => {
    const spec = {
      ...node.spec,
      ...(input.allowScheduling === undefined ? {} : { allowScheduling: input.allowScheduling }),
      ...(input.evictionRequested === undefined ? {} : { evictionRequested: input.evictionRequested }),
      ...(input.tags === undefined ? {} : { tags: input.tags }),
    };
    return JSON.stringify(spec) === JSON.stringify(node.spec) ? null : checkedNode({ ...node, spec });
  });
  return nodeView(stored);
}

async function diskUpdate(store: ResourceStore, name: string, body: unknown): Promise<ResourceView> {
  const input = checkInput<DiskUpdateInput>(DiskUpdateInputSchema, bodyObject(body), 'diskUpdate input');
  const stored = await modifyResource<Node>(store, 'Node', name, (node) => {
    // Value.Default does not reach into record values; fill each disk's defaults here.
    const disks = Object.fromEntries(Object.entries(input.disks).map(([diskName, disk]) => [diskName, Value.Default(DiskSpecSchema, structuredClone(disk))]));
    const next = { ...node, spec: { ...node.spec, disks } } as Node;
    return JSON.stringify(next.spec) === JSON.stringify(node.spec) ? null : checkedNode(next);
  });
  return nodeView(stored);
}

function distinctTags(nodes: readonly Node[], of: 'node' | 'disk'): string[] {
  const tags = new Set<string>();
  for (const node of nodes) {
    if (of === 'node') node.spec.tags.forEach((tag) => tags.add(tag));
    else Object.values(node.spec.disks).forEach((disk) => disk.tags.forEach((tag) => tags.add(tag)));
  }
  return [...tags].sort();
}

export function registerNodeRoutes(app: FastifyInstance, store: ResourceStore): void {
  app.get('/v1/nodes', async () => {
    const { items, truncated } = await listLimited<Node>(store, 'Node');
    return collectionView('nodes', 'node', items.map(nodeView), truncated);
  });
  app.get<{ Params: { name: string } }>('/v1/nodes/:name', async (request) => nodeView(await getOrNotFound<Node>(store, 'Node', request.params.name)));
  app.put<{ Params: { name: string } }>('/v1/nodes/:name', async (request) => updateNode(store, request.params.name, request.body));
  app.post<{ Params: { name: string }; Querystring: Record<string, unknown> }>('/v1/nodes/:name', async (request) => {
    const action = request.query['action'];
    if (action !== 'diskUpdate') {
      throw new ApiError('bad_request', `POST /v1/nodes/NAME needs ?action=diskUpdate, not ${JSON.stringify(action ?? null)}`);
    }
    return diskUpdate(store, request.params.name, request.body);
  });
  app.get('/v1/nodetags', async () => distinctTags((await listLimited<Node>(store, 'Node')).items, 'node'));
  app.get('/v1/disktags', async () => distinctTags((await listLimited<Node>(store, 'Node')).items, 'disk'));
}
