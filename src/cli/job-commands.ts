// `shorthorn job create|list|get|delete|run-now` (recurring jobs) and `shorthorn volume job
// add|delete|list` (which jobs and groups a volume belongs to), through the API.
import type { Command } from 'commander';
import type { ShorthornClient } from '../api/client.ts';
import type { CollectionView, ResourceView } from '../api/resource-view.ts';
import type { VolumeRecurringJobList } from '../api/volume-job-actions.ts';
import { recurringJobTasks, type RecurringJobSpec, type RecurringJobStatus } from '../control/resources/recurring-job.ts';
import { details, runClientCommand, table, UsageError, withClientOptions, type ClientCommandOptions } from './cli-client.ts';

const collect = (value: string, all: string[]): string[] => [...all, value];

function wholeNumber(text: string, what: string): number {
  if (!/^[0-9]{1,9}$/.test(text)) throw new UsageError(`${what} must be a whole number, not ${JSON.stringify(text)}`);
  return Number(text);
}

function labels(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--label ${JSON.stringify(pair)} must be KEY=VALUE`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

const jobPath = (name: string): string => `/v1/recurringjobs/${encodeURIComponent(name)}`;

function jobRow(view: ResourceView): string[] {
  const spec = view.spec as RecurringJobSpec;
  const status = (view.status ?? {}) as RecurringJobStatus;
  return [
    view.id,
    spec.task,
    spec.cron,
    String(spec.retain),
    spec.groups.join(','),
    String(status.executionCount ?? 0),
    status.currentRun === undefined ? status.lastRunStartedAt ?? '' : `running since ${status.currentRun.startedAt}`,
    status.lastRunResult ?? '',
    status.nextRunAt ?? '',
  ];
}

function jobDetails(view: ResourceView): string {
  const spec = view.spec as RecurringJobSpec;
  const status = (view.status ?? {}) as RecurringJobStatus;
  const pairs: [string, string][] = [
    ['name', view.id],
    ['task', spec.task],
    ['cron', `${spec.cron} (UTC)`],
    ['retain', String(spec.retain)],
    ['concurrency', String(spec.concurrency)],
    ['groups', spec.groups.join(',')],
    ['labels', Object.entries(spec.labels).map(([k, v]) => `${k}=${v}`).join(',')],
    ['full backup every', spec.parameters['full-backup-interval'] === undefined ? '' : `${spec.parameters['full-backup-interval']} runs`],
    ['runs', String(status.executionCount ?? 0)],
    ['running', status.currentRun === undefined ? 'no' : `run ${status.currentRun.number} since ${status.currentRun.startedAt}`],
    ['last run', `${status.lastRunStartedAt ?? ''} → ${status.lastRunFinishedAt ?? ''} ${status.lastRunResult ?? ''}`.trim()],
    ['next run', status.nextRunAt ?? ''],
    ['last error', status.lastError ?? ''],
    ['message', status.message ?? ''],
  ];
  const volumes = Object.entries(status.volumes ?? {}).map(([volume, outcome]) => `  ${volume}: ${outcome}`);
  return `${details(pairs)}${volumes.length === 0 ? '' : `volumes (last run):\n${volumes.join('\n')}\n`}`;
}

interface CreateOptions extends ClientCommandOptions {
  readonly task: string;
  readonly cron: string;
  readonly retain: string;
  readonly concurrency?: string;
  readonly group: string[];
  readonly label: string[];
  readonly fullBackupInterval?: string;
}

function createBody(name: string, options: CreateOptions): Record<string, unknown> {
  if (!(recurringJobTasks as readonly string[]).includes(options.task)) {
    throw new UsageError(`--task must be one of ${recurringJobTasks.join(', ')}, not ${JSON.stringify(options.task)}`);
  }
  return {
    name,
    task: options.task,
    cron: options.cron,
    retain: wholeNumber(options.retain, '--retain'),
    ...(options.concurrency === undefined ? {} : { concurrency: wholeNumber(options.concurrency, '--concurrency') }),
    groups: options.group,
    labels: labels(options.label),
    parameters: options.fullBackupInterval === undefined ? {} : { 'full-backup-interval': wholeNumber(options.fullBackupInterval, '--full-backup-interval') },
  };
}

const volumeJobAction = (client: ShorthornClient, volume: string, action: 'recurringJobAdd' | 'recurringJobDelete', target: { name: string; isGroup: boolean }) =>
  client.volumeAction(volume, action, { name: target.name, ...(target.isGroup ? { isGroup: true } : {}) });

export function registerJobCommands(program: Command): void {
  const job = program.command('job').description('recurring jobs: snapshots, backups, cleanup and trim on a cron schedule');

  withClientOptions(job.command('create <name>').description('create a recurring job'))
    .requiredOption('--task <task>', `one of ${recurringJobTasks.join(', ')}`)
    .requiredOption('--cron <expression>', 'five fields (UTC), @daily-style, or six with seconds first')
    .requiredOption('--retain <n>', 'snapshots or backups of this job to keep')
    .option('--concurrency <n>', 'volumes processed at once (default 10)')
    .option('--group <name>', 'a group the job belongs to (repeat); "default" takes volumes with no job labels', collect, [])
    .option('--label <key=value>', 'a label put on what the job makes (repeat)', collect, [])
    .option('--full-backup-interval <n>', 'backup jobs: every n-th run is a full backup')
    .action(async (name: string, options: CreateOptions) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.request<ResourceView>('POST', '/v1/recurringjobs', createBody(name, options));
        out.print(view, () => `recurring job ${view.id} created: ${options.task} at "${options.cron}"\n`);
      }),
    );

  withClientOptions(job.command('list').alias('ls').description('list recurring jobs with their last and next run')).action(async (options: ClientCommandOptions) =>
    runClientCommand(options, async (client, out) => {
      const list = await client.request<CollectionView>('GET', '/v1/recurringjobs');
      out.print(list.data, () =>
        table(['NAME', 'TASK', 'CRON', 'RETAIN', 'GROUPS', 'RUNS', 'LAST RUN', 'RESULT', 'NEXT RUN'], list.data.map(jobRow)),
      );
    }),
  );

  withClientOptions(job.command('get <name>').description('show a recurring job, its runs and the outcome per volume')).action(
    async (name: string, options: ClientCommandOptions) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.request<ResourceView>('GET', jobPath(name));
        out.print(view, () => jobDetails(view));
      }),
  );

  withClientOptions(job.command('delete <name>').alias('rm').description('delete a recurring job (what it made stays)')).action(
    async (name: string, options: ClientCommandOptions) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.request<ResourceView>('DELETE', jobPath(name));
        out.print(view, () => `recurring job ${name} deleted\n`);
      }),
  );

  withClientOptions(job.command('run-now <name>').description('run a recurring job once now, off its schedule')).action(
    async (name: string, options: ClientCommandOptions) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.request<ResourceView>('POST', `${jobPath(name)}?action=runNow`, {});
        out.print(view, () => `recurring job ${name}: run requested\n`);
      }),
  );

  const volume = program.commands.find((command) => command.name() === 'volume') ?? program.command('volume');
  const volumeJob = volume.command('job').description('the recurring jobs and groups a volume belongs to');
  for (const [verb, action, done] of [
    ['add', 'recurringJobAdd', 'joined'],
    ['delete', 'recurringJobDelete', 'left'],
  ] as const) {
    withClientOptions(volumeJob.command(`${verb} <volume> <job>`).description(`${verb === 'add' ? 'join' : 'leave'} a recurring job (or a group with --group)`))
      .option('--group', 'the name is a group of jobs')
      .action(async (volumeName: string, name: string, options: ClientCommandOptions & { group?: boolean }) =>
        runClientCommand(options, async (client, out) => {
          const view = await volumeJobAction(client, volumeName, action, { name, isGroup: options.group === true });
          out.print(view, () => `volume ${volumeName} ${done} ${options.group === true ? 'group' : 'job'} ${name}\n`);
        }),
      );
  }
  withClientOptions(volumeJob.command('list <volume>').alias('ls').description('the jobs and groups a volume belongs to')).action(
    async (volumeName: string, options: ClientCommandOptions) =>
      runClientCommand(options, async (client, out) => {
        const list = await client.volumeAction<VolumeRecurringJobList>(volumeName, 'recurringJobList');
        out.print(list, () =>
          table(
            ['NAME', 'KIND'],
            list.data.map((entry) => [entry.name, entry.isGroup ? (list.defaultGroup ? 'group (no job labels: default)' : 'group') : 'job']),
          ),
        );
      }),
  );
}
