// POST /v1/volumes: Longhorn's flat create input (`name`, `size`, `numberOfReplicas`, ...) turned
// into a Volume resource, with schema defaults and default-replica-count filled in, then checked
// by the Volume schema and rules. Problems are reported with the body's field names.
import type { ResourceProblem } from '../control/resources/resource-problem.ts';
import { validateResource, withDefaults } from '../control/resources/validate-resource.ts';
import type { Volume } from '../control/resources/volume.ts';
import { parseSettingValue } from '../control/settings/settings.ts';
import { isStoreError, type ResourceStore } from '../control/store/resource-store.ts';
import { ApiError } from './api-error.ts';
import { bodyObject } from './input-check.ts';
import { parseSizeText } from './size-text.ts';
import { checkFromBackup } from './volume-from-backup.ts';
import { checkName } from './store-access.ts';
import { labelProblems } from './label-check.ts';

/** Spec fields only controllers write; a create body naming them is refused. */
const controllerFields = new Set(['nodeID', 'lastAttachedBy']);

async function defaultReplicaCount(store: ResourceStore): Promise<number> {
  let text = '3';
  try {
    const setting = (await store.get('Setting', 'default-replica-count')) as { spec: { value: string } };
    text = setting.spec.value;
  } catch (error) {
    if (!isStoreError(error, 'not_found')) throw error;
  }
  const parsed = parseSettingValue('default-replica-count', text);
  return parsed.ok && typeof parsed.value === 'number' ? parsed.value : 3;
}

function bodyPath(path: string): string {
  if (path.startsWith('spec.')) return path.slice('spec.'.length);
  if (path === 'metadata.name') return 'name';
  if (path.startsWith('metadata.')) return path.slice('metadata.'.length);
  return path;
}

export async function volumeFromCreateBody(store: ResourceStore, body: unknown): Promise<Volume> {
  const { name, labels, ...fields } = bodyObject(body);
  const problems: ResourceProblem[] = [];
  if (typeof name !== 'string') throw ApiError.invalid('volume', [{ path: 'name', reason: name === undefined ? 'is required' : 'must be a string' }]);
  checkName(name, 'volume');
  for (const field of Object.keys(fields)) {
    if (controllerFields.has(field)) problems.push({ path: field, reason: 'is set by the attach action, not at creation' });
  }
  await checkFromBackup(store, fields, problems);
  problems.push(...labelProblems(labels, 'labels'));
  if (fields['size'] === undefined) {
    if (!problems.some((p) => p.path === 'size')) problems.push({ path: 'size', reason: 'is required' });
  }
  else {
    const size = parseSizeText(fields['size']);
    if (typeof size === 'string') problems.push({ path: 'size', reason: size });
    else fields['size'] = size;
  }
  if (problems.length > 0) throw ApiError.invalid(`volume ${name}`, problems);
  if (fields['numberOfReplicas'] === undefined || fields['numberOfReplicas'] === 0) {
    // Longhorn's webhook fills 0 or absent from the setting.
    fields['numberOfReplicas'] = await defaultReplicaCount(store);
  }
  const resource = withDefaults('Volume', {
    apiVersion: 'shorthorn.io/v1',
    kind: 'Volume',
    metadata: { name, ...(labels === undefined ? {} : { labels }) },
    spec: fields,
  });
  const checked = validateResource('Volume', resource);
  if (!checked.ok) {
    throw ApiError.invalid(
      `volume ${name}`,
      checked.problems.map((p) => ({ path: bodyPath(p.path), reason: p.reason })),
    );
  }
  return checked.value;
}
