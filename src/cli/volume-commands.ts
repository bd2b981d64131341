// `shorthorn volume create|list|get|delete|attach|detach|expand|replicas`: volumes through the API.
import type { Command } from 'commander';
import { formatSize, parseSizeText } from '../api/size-text.ts';
import type { ResourceView } from '../api/resource-view.ts';
import type { VolumeSpec, VolumeStatus } from '../control/resources/volume.ts';
import { details, runClientCommand, seconds, table, UsageError, withClientOptions, type ClientCommandOptions } from './cli-client.ts';
import { describeLocal, registerAttachCommands } from './attach-commands.ts';
import { readAttachmentState } from './attachment-state.ts';
import { HostError } from './host-error.ts';
import { isExpanded, isHealed, replicaHeaders, replicaRows, volumeHealth, type VolumeHealth } from './volume-health.ts';
import { pollUntil, volumeParts, waitDeleted, watchVolume } from './volume-watch.ts';

function specOf(view: ResourceView): VolumeSpec {
  return view.spec as VolumeSpec;
}
function statusOf(view: ResourceView): VolumeStatus {
  return (view.status ?? {});
}

export function volumeRow(view: ResourceView): string[] {
  const spec = specOf(view);
  const status = statusOf(view);
  return [
    view.id,
    view.metadata.deletionTimestamp === undefined ? (status.state ?? 'creating') : 'deleting',
    status.robustness ?? 'unknown',
    formatSize(spec.size),
    String(spec.numberOfReplicas),
    status.currentNodeID ?? '',
  ];
}
const volumeHeaders = ['NAME', 'STATE', 'ROBUSTNESS', 'SIZE', 'REPLICAS', 'NODE'];

function volumeDetails(view: ResourceView): string {
  const spec = specOf(view);
  const status = statusOf(view);
  return details([
    ['Name', view.id],
    ['State', volumeRow(view)[1] ?? ''],
    ['Robustness', status.robustness ?? 'unknown'],
    ['Size', `${formatSize(spec.size)} (${spec.size} bytes)`],
    ['Actual size', status.actualSize === undefined ? '' : formatSize(status.actualSize)],
    ['Replicas', String(spec.numberOfReplicas)],
    ['Frontend', spec.frontend],
    ['Access mode', spec.accessMode],
    ['Data locality', spec.dataLocality],
    ['Node', status.currentNodeID ?? ''],
    ...standbyDetails(spec, status),
    ['Data check', dataCheckLine(status)],
    ['Created', view.metadata.creationTimestamp ?? ''],
    ['Actions', Object.keys(view.actions).join(', ')],
  ]);
}

/** The last snapshot data check (status.dataIntegrity): when, result, message; and the next one. */
function dataCheckLine(status: VolumeStatus): string {
  const check = status.dataIntegrity;
  if (check === undefined) return '';
  const last = check.lastCheckAt === undefined ? 'none yet' : `${check.lastCheckResult ?? '?'} at ${check.lastCheckAt} (${check.lastCheckMode ?? '?'}, ${check.lastCheckTrigger ?? '?'}): ${check.message ?? ''}`;
  return check.nextCheckAt === undefined ? last : `${last}; next ${check.nextCheckAt}`;
}

/** A DR volume's lines: what it holds, what the target has, the lag and the last restore. */
function standbyDetails(spec: VolumeSpec, status: VolumeStatus): [string, string][] {
  if (spec.fromBackup === undefined) return [];
  const lines: [string, string][] = [['From backup', spec.fromBackup]];
  if (!spec.standby && status.isStandby !== true) return lines;
  const last = status.lastRestore;
  lines.push(
    ['Standby', spec.standby ? 'yes' : 'activating'],
    ['Last backup', status.lastBackup ?? ''],
    ['Last restored', status.lastRestoredBackup ?? '(none yet)'],
    ['Restoring', status.restoringBackup === undefined ? '' : `${status.restoringBackup} ${status.restoreProgress ?? 0}%`],
    ['Lag', status.restoreLagSeconds === undefined ? '' : `${status.restoreLagSeconds} s`],
    ['Last restore', last === undefined ? '' : `${last.backupName}: ${last.mode}${last.fromBackupName === undefined ? '' : ` from ${last.fromBackupName}`}, ${last.blocksFetched} blocks written, ${last.blocksZeroed} zeroed`],
  );
  const condition = status.conditions?.find((c) => c.type === 'Restore');
  if (condition !== undefined) lines.push(['Restore', `${condition.reason ?? ''}: ${condition.message ?? ''}`]);
  return lines;
}

function size(text: string): number {
  const bytes = parseSizeText(text);
  if (typeof bytes === 'string') throw new UsageError(bytes);
  return bytes;
}

function integer(text: string, what: string): number {
  if (!/^[0-9]{1,9}$/.test(text)) throw new UsageError(`${what} must be a whole number, not ${JSON.stringify(text)}`);
  return Number(text);
}

function untilCondition(text: string | undefined): ((health: VolumeHealth) => boolean) | undefined {
  switch (text) {
    case undefined:
      return undefined;
    case 'healthy':
      return isHealed;
    case 'attached':
    case 'detached':
      return (health) => health.state === text;
    default:
      throw new UsageError(`--until must be healthy, attached or detached, not ${JSON.stringify(text)}`);
  }
}

interface CreateOptions extends ClientCommandOptions {
  readonly size?: string;
  readonly fromBackup?: string;
  readonly standby?: boolean;
  readonly replicas?: string;
  readonly frontend?: string;
  readonly accessMode?: string;
  readonly dataLocality?: string;
}

export function registerVolumeCommands(program: Command): void {
  const volume = program.command('volume').description('create, list, attach and change volumes through the API');

  withClientOptions(volume.command('create <name>').description('create a volume'))
    .option('--size <size>', 'size: bytes or e.g. 10Gi, 500Mi (required unless --from-backup names a backup the cluster knows)')
    .option('--replicas <n>', 'number of replicas (default: the default-replica-count setting)')
    .option('--from-backup <url>', 'restore the backup at this URL (`shorthorn backup get NAME` shows it) into the new volume')
    .option('--standby', 'with --from-backup: a disaster-recovery volume that keeps restoring each new backup until `volume activate`')
    .option('--frontend <frontend>', 'blockdev, nbd or iscsi')
    .option('--access-mode <mode>', 'rwo or rwx')
    .option('--data-locality <mode>', 'disabled, best-effort or strict-local')
    .action(async (name: string, options: CreateOptions) =>
      runClientCommand(options, async (client, out) => {
        if (options.size === undefined && options.fromBackup === undefined) throw new UsageError('--size is required (unless --from-backup is given)');
        if (options.standby === true && options.fromBackup === undefined) throw new UsageError('--standby needs --from-backup: a standby volume follows a backup volume');
        const input = {
          name,
          ...(options.size === undefined ? {} : { size: size(options.size) }),
          ...(options.fromBackup === undefined ? {} : { fromBackup: options.fromBackup }),
          ...(options.standby === true ? { standby: true } : {}),
          ...(options.replicas === undefined ? {} : { numberOfReplicas: integer(options.replicas, '--replicas') }),
          ...(options.frontend === undefined ? {} : { frontend: options.frontend }),
          ...(options.accessMode === undefined ? {} : { accessMode: options.accessMode }),
          ...(options.dataLocality === undefined ? {} : { dataLocality: options.dataLocality }),
        };
        const created = await client.createVolume(input as typeof input & { size: number });
        const what = options.standby === true ? '; standby, following its backups' : options.fromBackup === undefined ? '' : '; restoring';
        out.print(created, () => `volume ${created.id} created (${formatSize(specOf(created).size)}, ${specOf(created).numberOfReplicas} replicas${what})\n`);
      }),
    );

  withClientOptions(volume.command('list').alias('ls').description('list volumes')).action(async (options: ClientCommandOptions) =>
    runClientCommand(options, async (client, out) => {
      const list = await client.listVolumes();
      if (list.truncated) process.stderr.write(`shorthorn: warning: only the first ${list.data.length} volumes are shown\n`);
      out.print(list.data, () => table(volumeHeaders, list.data.map(volumeRow)));
    }),
  );

  withClientOptions(volume.command('get <name>').description('show one volume and its replicas'))
    .option('--watch', 'follow its state, replicas and rebuild progress (Ctrl-C ends it)')
    .option('--until <condition>', 'with --watch: stop once the volume is healthy (every replica RW, none rebuilding), attached or detached')
    .option('--timeout <seconds>', 'with --until: give up after this long (exit code 6)', '600')
    .action(async (name: string, options: ClientCommandOptions & { watch?: boolean; until?: string; timeout: string }) =>
      runClientCommand(options, async (client, out) => {
        if (options.watch === true || options.until !== undefined) {
          const done = untilCondition(options.until);
          const health = await watchVolume(client, name, {
            timeoutMs: options.until === undefined ? Number.MAX_SAFE_INTEGER : seconds(options.timeout, '--timeout') * 1000,
            what: `volume ${name} ${options.until ?? 'watch'}`,
            ...(done === undefined ? {} : { done }),
          });
          if (out.json) out.print(health, () => '');
          return;
        }
        const parts = await volumeParts(client, name);
        out.print(parts.volume, () => `${volumeDetails(parts.volume)}\n${table(replicaHeaders, replicaRows(volumeHealth(parts)))}`);
      }),
    );

  withClientOptions(volume.command('delete <name>').alias('rm').description('delete a volume (its data is removed by the manager)'))
    .option('--wait', 'wait until the volume and its replicas are gone')
    .option('--timeout <seconds>', 'with --wait: give up after this long (exit code 6)', '120')
    .action(async (name: string, options: ClientCommandOptions & { wait?: boolean; timeout: string }) =>
      runClientCommand(options, async (client, out) => {
        const state = readAttachmentState(name);
        if (state !== undefined) {
          throw new HostError('refused', `volume ${name} is still ${describeLocal(state)} on this host`, { hint: `shorthorn volume detach ${name}` });
        }
        const view = await client.deleteVolume(name);
        if (options.wait === true && view.metadata.deletionTimestamp !== undefined) {
          await waitDeleted(client, name, seconds(options.timeout, '--timeout') * 1000);
          out.print(view, () => `volume ${name} deleted\n`);
          return;
        }
        // With a finalizer (the manager's) the volume stays until its data is removed.
        out.print(view, () => (view.metadata.deletionTimestamp === undefined ? `volume ${name} deleted\n` : `volume ${name} is being deleted\n`));
      }),
    );

  registerAttachCommands(volume);

  withClientOptions(volume.command('expand <name>').description('grow a volume'))
    .requiredOption('--size <size>', 'the new size: bytes or e.g. 20Gi')
    .option('--wait', 'wait until the attached volume\'s engine serves the new size, showing progress')
    .option('--timeout <seconds>', 'with --wait: give up after this long (exit code 6)', '600')
    .action(async (name: string, options: ClientCommandOptions & { size: string; wait?: boolean; timeout: string }) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.expandVolume(name, size(options.size));
        if (options.wait === true) {
          await watchVolume(client, name, { timeoutMs: seconds(options.timeout, '--timeout') * 1000, done: isExpanded, what: `volume ${name} expanding` });
        }
        out.print(view, () => `volume ${name}: size is now ${formatSize(specOf(view).size)}\n`);
      }),
    );

  withClientOptions(volume.command('activate <name>').description('turn a standby (disaster-recovery) volume into a normal one, after restoring its newest backup'))
    .option('--frontend <frontend>', 'blockdev, nbd or iscsi (default: unchanged)')
    .option('--wait', 'wait until it is activated (the newest backup restored) and detached, ready to attach')
    .option('--timeout <seconds>', 'with --wait: give up after this long (exit code 6)', '600')
    .action(async (name: string, options: ClientCommandOptions & { frontend?: string; wait?: boolean; timeout: string }) =>
      runClientCommand(options, async (client, out) => {
        let view = await client.volumeAction(name, 'activate', options.frontend === undefined ? {} : { frontend: options.frontend });
        if (options.wait === true) {
          view = await pollUntil(
            `volume ${name} activating`,
            seconds(options.timeout, '--timeout') * 1000,
            async () => {
              const current = await client.getVolume(name);
              const status = statusOf(current);
              return status.isStandby === false && status.restoreRequired === false && status.state === 'detached' ? current : undefined;
            },
            `\`shorthorn volume get ${name}\` shows the restore it waits for`,
          );
        }
        const status = statusOf(view);
        out.print(view, () =>
          status.isStandby === false ? `volume ${name} activated (holds ${status.lastRestoredBackup ?? '?'}); attach it as any volume\n` : `volume ${name} is being activated\n`,
        );
      }),
    );

  withClientOptions(
    volume
      .command('snapshot-limits <name>')
      .description('limit the snapshots a volume holds: --max-count N (0: the setting snapshot-max-count), --max-size SIZE (0: none)')
      .option('--max-count <n>', 'snapshots the volume may hold, 2-1024, or 0 for the setting')
      .option('--max-size <size>', 'bytes all snapshots may hold together ("10Gi"), or 0 for no limit'),
  ).action(async (name: string, options: ClientCommandOptions & { maxCount?: string; maxSize?: string }) =>
    runClientCommand(options, async (client, out) => {
      if (options.maxCount === undefined && options.maxSize === undefined) throw new UsageError('give --max-count, --max-size or both');
      let view = options.maxCount === undefined ? undefined : await client.updateSnapshotMaxCount(name, integer(options.maxCount, '--max-count'));
      if (options.maxSize !== undefined) view = await client.updateSnapshotMaxSize(name, options.maxSize);
      if (view === undefined) return;
      const spec = specOf(view);
      out.print(view, () => `volume ${name}: at most ${spec.snapshotMaxCount ?? 'snapshot-max-count (setting)'} snapshots, ${spec.snapshotMaxSize === undefined ? 'no size limit' : `${spec.snapshotMaxSize} bytes in all`}\n`);
    }),
  );

  withClientOptions(volume.command('replicas <name> <count>').description('change the number of replicas')).action(
    async (name: string, count: string, options: ClientCommandOptions) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.updateReplicaCount(name, integer(count, 'count'));
        out.print(view, () => `volume ${name}: ${specOf(view).numberOfReplicas} replicas\n`);
      }),
  );
}
