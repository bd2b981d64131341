// RecurringJob: a cron-scheduled snapshot, backup or trim applied to volumes by label or group
// (reference §1.12, §6.3).
import { Type, type Static } from '@sinclair/typebox';
import { recurringJobVolumeReportMax, snapshotCountMax } from '../../lib/limits.ts';
import { cronScheduleProblem } from '../recurring/cron-schedule.ts';
import { Labels, NameMap, OwnerID, StrictObject, StringEnum, Text, Timestamp } from './common-schemas.ts';
import type { Resource } from './object-meta.ts';
import type { ResourceProblem } from './resource-problem.ts';

export const recurringJobTasks = [
  'snapshot',
  'snapshot-force-create',
  'snapshot-cleanup',
  'snapshot-delete',
  'backup',
  'backup-force-create',
  'filesystem-trim',
] as const;
export type RecurringJobTask = (typeof recurringJobTasks)[number];

/** Longhorn limits job names to 40 characters (they name CronJobs and snapshot prefixes). */
export const recurringJobNameLengthMax = 40;

export const RecurringJobSpecSchema = StrictObject({
  task: StringEnum(recurringJobTasks),
  cron: Type.String({
    minLength: 1,
    maxLength: 256,
    description: 'Five-field cron expression (UTC) or @daily-style descriptor; six fields put seconds first.',
  }),
  retain: Type.Integer({ minimum: 0, maximum: snapshotCountMax, description: 'Snapshots or backups of this job to keep.' }),
  concurrency: Type.Integer({ minimum: 1, maximum: 100, default: 10, description: 'Volumes processed at once.' }),
  groups: Type.Array(Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }), {
    maxItems: 32,
    default: [],
    description: 'Groups this job belongs to; `default` applies it to volumes with no job labels.',
  }),
  labels: Labels('Labels put on the snapshots and backups the job makes.'),
  parameters: StrictObject(
    {
      'full-backup-interval': Type.Optional(
        Type.Integer({ minimum: 0, maximum: 1000, description: 'Every N-th backup is full; 0: always incremental.' }),
      ),
    },
    { default: {}, description: 'Task parameters.' },
  ),
});
export type RecurringJobSpec = Static<typeof RecurringJobSpecSchema>;

export const recurringJobRunTriggers = ['schedule', 'runNow'] as const;
export const recurringJobRunResults = ['Succeeded', 'Failed'] as const;
export type RecurringJobRunResult = (typeof recurringJobRunResults)[number];

/** The run in progress, recorded before it starts: a manager restarted mid-run resumes it. */
export const RecurringJobRunSchema = StrictObject({
  number: Type.Integer({ minimum: 1, description: 'The run\'s executionCount.' }),
  slot: Timestamp({ description: 'The cron slot (or run-now request time) the run is for.' }),
  trigger: StringEnum(recurringJobRunTriggers),
  startedAt: Timestamp(),
});
export type RecurringJobRun = Static<typeof RecurringJobRunSchema>;

export const RecurringJobStatusSchema = StrictObject({
  ownerID: OwnerID(),
  executionCount: Type.Optional(Type.Integer({ minimum: 0, description: 'Runs so far; drives full-backup-interval.' })),
  lastScheduledAt: Type.Optional(Timestamp({ description: 'Slot of the last scheduled run started (missed slots fold into one run).' })),
  nextRunAt: Type.Optional(Timestamp({ description: 'The next slot.' })),
  currentRun: Type.Optional(RecurringJobRunSchema),
  lastRunStartedAt: Type.Optional(Timestamp()),
  lastRunFinishedAt: Type.Optional(Timestamp()),
  lastRunResult: Type.Optional(StringEnum(recurringJobRunResults)),
  lastError: Type.Optional(Text({ description: 'Why the last run failed (empty after a run that succeeded).' })),
  lastRunNowRequest: Type.Optional(Type.String({ maxLength: 64, description: 'The run-now request handled last.' })),
  message: Type.Optional(Text({ description: 'What the scheduler noticed: missed slots folded, clock behind, ...' })),
  volumes: Type.Optional(
    NameMap(Text(), { maxProperties: recurringJobVolumeReportMax, description: 'Outcome of the last run per volume.' }),
  ),
});
export type RecurringJobStatus = Static<typeof RecurringJobStatusSchema>;

export type RecurringJob = Resource<RecurringJobSpec, RecurringJobStatus>;

export function recurringJobProblems(job: RecurringJob): ResourceProblem[] {
  const problems: ResourceProblem[] = [];
  if (job.metadata.name.length > recurringJobNameLengthMax) {
    problems.push({ path: 'metadata.name', reason: `job name is ${job.metadata.name.length} characters; at most ${recurringJobNameLengthMax}` });
  }
  const cron = cronScheduleProblem(job.spec.cron);
  if (cron !== null) problems.push({ path: 'spec.cron', reason: cron });
  const isBackup = job.spec.task === 'backup' || job.spec.task === 'backup-force-create';
  const makesSnapshots = isBackup || job.spec.task === 'snapshot' || job.spec.task === 'snapshot-force-create';
  if (makesSnapshots && job.spec.retain < 1) {
    problems.push({ path: 'spec.retain', reason: `a ${job.spec.task} job must keep at least 1 (it would delete what it just made)` });
  }
  if (!isBackup && job.spec.parameters['full-backup-interval'] !== undefined) {
    problems.push({ path: 'spec.parameters.full-backup-interval', reason: `only applies to backup tasks, not ${job.spec.task}` });
  }
  return problems;
}
