// /v1/settings: every setting of the catalogue, stored or default, with Longhorn's `value` and
// `definition` beside the resource; PUT {value} validated by the setting's type and range.
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { StrictObject } from '../control/resources/common-schemas.ts';
import type { SettingResource } from '../control/resources/setting.ts';
import { validateResource } from '../control/resources/validate-resource.ts';
import { formatSettingValue, type SettingDefinition } from '../control/settings/setting-definition.ts';
import { isSettingName, settingDefinition, settingNames, type SettingName } from '../control/settings/settings.ts';
import { isStoreError, type ResourceStore } from '../control/store/resource-store.ts';
import { settingValueLengthMax } from '../lib/limits.ts';
import { ApiError } from './api-error.ts';
import { apiConflictRetriesMax } from '../lib/limits.ts';
import { checkInput } from './input-check.ts';
import { collectionView, resourceView, type ResourceView } from './resource-view.ts';
import { checkName } from './store-access.ts';

export const SettingUpdateInputSchema = StrictObject({ value: Type.String({ maxLength: settingValueLengthMax }) });

export interface SettingView extends ResourceView {
  readonly name: string;
  readonly value: string;
  readonly definition: Record<string, unknown>;
}

function definitionView(definition: SettingDefinition): Record<string, unknown> {
  const base = {
    description: definition.description,
    category: definition.category,
    type: definition.type,
    readOnly: definition.readOnly === true,
    default: formatSettingValue(definition.default),
  };
  switch (definition.type) {
    case 'int':
      return { ...base, range: { min: definition.min, max: definition.max }, unit: definition.unit };
    case 'enum':
      return { ...base, options: definition.options };
    case 'bool':
      return { ...base, options: ['true', 'false'] };
    case 'string':
      return base;
    default: {
      const unknown: never = definition;
      return unknown;
    }
  }
}

function settingView(name: SettingName, stored: SettingResource | undefined): SettingView {
  const definition = settingDefinition(name);
  const resource: SettingResource = stored ?? {
    apiVersion: 'shorthorn.io/v1',
    kind: 'Setting',
    metadata: { name },
    spec: { value: formatSettingValue(definition.default) },
  };
  const view = resourceView('settings', resource);
  return { ...view, name, value: resource.spec.value, definition: definitionView(definition) };
}

function settingName(name: string): SettingName {
  checkName(name, 'setting');
  if (!isSettingName(name)) throw new ApiError('not_found', `there is no setting named ${name}; GET /v1/settings lists them`);
  return name;
}

async function storedSetting(store: ResourceStore, name: string): Promise<SettingResource | undefined> {
  try {
    return (await store.get('Setting', name)) as SettingResource;
  } catch (error) {
    if (isStoreError(error, 'not_found')) return undefined;
    throw error;
  }
}

export async function updateSetting(store: ResourceStore, rawName: string, body: unknown): Promise<SettingView> {
  const name = settingName(rawName);
  const { value } = checkInput<{ value: string }>(SettingUpdateInputSchema, body ?? {}, `setting ${name}`);
  if (settingDefinition(name).readOnly === true) throw new ApiError('read_only', `setting ${name} is read-only; the system sets it`);
  for (let attempt = 1; ; attempt++) {
    const current = await storedSetting(store, name);
    if (current?.spec.value === value) return settingView(name, current);
    const next: SettingResource =
      current === undefined
        ? { apiVersion: 'shorthorn.io/v1', kind: 'Setting', metadata: { name }, spec: { value } }
        : { ...current, spec: { value } };
    const checked = validateResource('Setting', next);
    if (!checked.ok) throw ApiError.invalid(`setting ${name}`, checked.problems.map((p) => ({ path: p.path === 'spec.value' ? 'value' : p.path, reason: p.reason })));
    try {
      const stored = (current === undefined ? await store.create(next) : await store.update(next)) as SettingResource;
      return settingView(name, stored);
    } catch (error) {
      const raced = isStoreError(error, 'conflict') || isStoreError(error, 'already_exists');
      if (!raced || attempt >= apiConflictRetriesMax) throw error;
    }
  }
}

export function registerSettingRoutes(app: FastifyInstance, store: ResourceStore): void {
  app.get('/v1/settings', async () => {
    const { items } = await store.list('Setting');
    const byName = new Map(items.map((item) => [item.metadata.name, item as SettingResource]));
    return collectionView('settings', 'setting', settingNames.map((name) => settingView(name, byName.get(name))), false);
  });
  app.get<{ Params: { name: string } }>('/v1/settings/:name', async (request) => {
    const name = settingName(request.params.name);
    return settingView(name, await storedSetting(store, name));
  });
  app.put<{ Params: { name: string } }>('/v1/settings/:name', async (request) => updateSetting(store, request.params.name, request.body));
}
