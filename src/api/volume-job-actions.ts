// The volume actions recurringJobAdd, recurringJobDelete and recurringJobList (Longhorn's names
// and input `{name, isGroup}`): they edit the volume's labels that join it to a job or a group
// (`recurring-job.shorthorn.io/<job>=enabled`, `recurring-job-group.shorthorn.io/<group>=enabled`).
import { Type, type Static } from '@sinclair/typebox';
import { NameRef, StrictObject } from '../control/resources/common-schemas.ts';
import { recurringJobNameLengthMax } from '../control/resources/recurring-job.ts';
import { validateResource } from '../control/resources/validate-resource.ts';
import type { Volume } from '../control/resources/volume.ts';
import { effectiveGroups, joinLabel, volumeJoins } from '../control/recurring/job-targets.ts';
import { isStoreError, type ResourceStore } from '../control/store/resource-store.ts';
import { ApiError } from './api-error.ts';
import { volumeView, type ResourceView } from './resource-view.ts';
import { modifyResource } from './store-access.ts';

export const RecurringJobInputSchema = StrictObject({
  name: NameRef({ maxLength: recurringJobNameLengthMax, description: 'A recurring job, or a group when isGroup is true.' }),
  isGroup: Type.Optional(Type.Boolean({ description: 'The name is a group of jobs, not a job.' })),
});
export type RecurringJobInput = Static<typeof RecurringJobInputSchema>;

/** One entry of recurringJobList: Longhorn's VolumeRecurringJob. */
export interface VolumeRecurringJobView {
  readonly id: string;
  readonly type: 'volumeRecurringJob';
  readonly name: string;
  readonly isGroup: boolean;
}

export interface VolumeRecurringJobList {
  readonly type: 'collection';
  readonly resourceType: 'volumeRecurringJob';
  readonly data: readonly VolumeRecurringJobView[];
  /** True when the volume has no job or group label and so belongs to the `default` group. */
  readonly defaultGroup: boolean;
}

async function changeLabels(store: ResourceStore, name: string, change: (labels: Record<string, string>) => boolean): Promise<ResourceView> {
  const stored = await modifyResource<Volume>(store, 'Volume', name, (volume) => {
    const labels = { ...volume.metadata.labels };
    if (!change(labels)) return null;
    const next: Volume = { ...volume, metadata: { ...volume.metadata, labels } };
    const checked = validateResource('Volume', next);
    if (!checked.ok) throw ApiError.invalid(`volume ${name}`, checked.problems);
    return next;
  });
  return volumeView(stored);
}

export async function recurringJobAdd(store: ResourceStore, volume: Volume, input: RecurringJobInput): Promise<ResourceView> {
  if (input.isGroup !== true) {
    // A job must exist to be joined (Longhorn's check); a group exists as soon as a job names it.
    try {
      await store.get('RecurringJob', input.name);
    } catch (error) {
      if (!isStoreError(error, 'not_found')) throw error;
      throw ApiError.invalid('recurringJobAdd input', [{ path: 'name', reason: `there is no recurring job named ${input.name}; GET /v1/recurringjobs lists them (or pass isGroup: true for a group)` }]);
    }
  }
  const key = joinLabel(input.isGroup === true ? 'group' : 'job', input.name);
  return changeLabels(store, volume.metadata.name, (labels) => {
    if (labels[key] === 'enabled') return false;
    labels[key] = 'enabled';
    return true;
  });
}

export async function recurringJobDelete(store: ResourceStore, volume: Volume, input: RecurringJobInput): Promise<ResourceView> {
  const key = joinLabel(input.isGroup === true ? 'group' : 'job', input.name);
  return changeLabels(store, volume.metadata.name, (labels) => {
    if (!(key in labels)) return false;
    delete labels[key];
    return true;
  });
}

export function recurringJobList(volume: Volume): VolumeRecurringJobList {
  const joins = volumeJoins(volume.metadata.labels);
  const entry = (name: string, isGroup: boolean): VolumeRecurringJobView => ({ id: name, type: 'volumeRecurringJob', name, isGroup });
  const groups = effectiveGroups(joins);
  return {
    type: 'collection',
    resourceType: 'volumeRecurringJob',
    data: [...joins.jobs.map((name) => entry(name, false)), ...groups.map((name) => entry(name, true))],
    defaultGroup: joins.jobs.length === 0 && joins.groups.length === 0,
  };
}
