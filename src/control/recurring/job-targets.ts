// Which volumes a recurring job applies to. A volume joins a job by the label
// `recurring-job.shorthorn.io/<job>=enabled` or one of the job's groups by
// `recurring-job-group.shorthorn.io/<group>=enabled` (Longhorn's labels under our domain). A
// volume with no job or group label at all belongs to the `default` group. Pure.
import type { Resource } from '../resources/object-meta.ts';

export const jobLabelPrefix = 'recurring-job.shorthorn.io/';
export const groupLabelPrefix = 'recurring-job-group.shorthorn.io/';
export const enabledLabelValue = 'enabled';
export const defaultGroupName = 'default';

export interface VolumeJoins {
  readonly jobs: readonly string[];
  readonly groups: readonly string[];
}

/** The jobs and groups a volume's labels name (only `enabled` labels count). */
export function volumeJoins(labels: Readonly<Record<string, string>> | undefined): VolumeJoins {
  const jobs: string[] = [];
  const groups: string[] = [];
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (value !== enabledLabelValue) continue;
    if (key.startsWith(jobLabelPrefix)) jobs.push(key.slice(jobLabelPrefix.length));
    else if (key.startsWith(groupLabelPrefix)) groups.push(key.slice(groupLabelPrefix.length));
  }
  return { jobs: jobs.sort(), groups: groups.sort() };
}

/** The groups that count for a volume: its labelled ones, or `default` when it has none. */
export function effectiveGroups(joins: VolumeJoins): readonly string[] {
  return joins.jobs.length === 0 && joins.groups.length === 0 ? [defaultGroupName] : joins.groups;
}

export function jobAppliesTo(job: { name: string; groups: readonly string[] }, volumeLabels: Readonly<Record<string, string>> | undefined): boolean {
  const joins = volumeJoins(volumeLabels);
  if (joins.jobs.includes(job.name)) return true;
  const groups = effectiveGroups(joins);
  return job.groups.some((group) => groups.includes(group));
}

/** The volumes a job applies to, by name order (deterministic runs and reports). */
export function volumesOfJob<V extends Resource>(job: { name: string; groups: readonly string[] }, volumes: readonly V[]): V[] {
  return volumes
    .filter((volume) => jobAppliesTo(job, volume.metadata.labels))
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
}

/** The label a volume carries to join a job or a group directly. */
export function joinLabel(kind: 'job' | 'group', name: string): string {
  return `${kind === 'job' ? jobLabelPrefix : groupLabelPrefix}${name}`;
}
