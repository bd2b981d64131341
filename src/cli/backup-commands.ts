// `shorthorn backup create|list|get|delete|restore|verify|volumes`: backups through the API.
// create, delete and restore wait for the manager to finish (a progress bar on stderr) unless
// --no-wait; the exit code says how it ended (docs/cli.md): 0 done, 1 usage, 2 not found,
// 3 conflict, 4 API unreachable or failing, 6 --timeout ran out, 7 the backup, restore or verify
// itself failed.
import type { Command } from 'commander';
import { ApiClientError, ShorthornClient } from '../api/client.ts';
import { readApiToken } from '../api/api-token.ts';
import type { CollectionView, ResourceView } from '../api/resource-view.ts';
import { formatSize } from '../api/size-text.ts';
import type { BackupVolumeStatus } from '../control/resources/backup-volume.ts';
import type { BackupStatus } from '../control/resources/backup.ts';
import type { VolumeStatus } from '../control/resources/volume.ts';
import { details, ExitCode, runClientCommand, table, UsageError, withClientOptions, type ClientCommandOptions, type Output } from './cli-client.ts';
import { ProgressBar } from './progress-bar.ts';

/** The operation ran and failed: backup Error, restore failed, verify found damage. */
export const operationFailedExitCode = 7;

interface WaitOptions extends ClientCommandOptions {
  readonly wait: boolean;
  readonly timeout: string;
}

const pollMs = 1000;
const backupVolumeLabel = 'shorthorn.io/backup-volume';

function labels(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--label ${JSON.stringify(pair)} must be KEY=VALUE`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

function deadlineOf(options: WaitOptions): number {
  const seconds = Number(options.timeout);
  if (!Number.isFinite(seconds) || seconds < 0) throw new UsageError(`--timeout ${JSON.stringify(options.timeout)} must be a number of seconds (0: no limit)`);
  return seconds === 0 ? Infinity : Date.now() + seconds * 1000;
}

async function pause(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

class TimedOut extends Error {}

/** Poll `read` until `finished` says so; the bar shows `progress`. */
async function waitFor<T>(
  label: string,
  deadline: number,
  read: () => Promise<T>,
  look: (value: T) => { done: boolean; percent: number; state: string },
): Promise<T> {
  const bar = new ProgressBar(label);
  try {
    for (;;) {
      const value = await read();
      const seen = look(value);
      bar.update(seen.percent, seen.state);
      if (seen.done) return value;
      if (Date.now() > deadline) throw new TimedOut(`${label}: still ${seen.state} at ${seen.percent}% when --timeout ran out`);
      await pause(pollMs);
    }
  } finally {
    bar.done();
  }
}

function backupRow(view: ResourceView): string[] {
  const status = (view.status ?? {}) as BackupStatus;
  return [
    view.id, view.metadata.labels?.[backupVolumeLabel] ?? status.volumeName ?? '', status.snapshotName ?? '',
    status.state ?? '', status.progress === undefined ? '' : `${status.progress}%`, status.size === undefined ? '' : formatSize(status.size),
    status.backupCreatedAt ?? '',
  ];
}

function backupDetails(view: ResourceView): string {
  const status = (view.status ?? {}) as BackupStatus;
  return details([
    ['name', view.id],
    ['volume', view.metadata.labels?.[backupVolumeLabel] ?? status.volumeName ?? ''],
    ['snapshot', status.snapshotName ?? ''],
    ['state', status.state ?? ''],
    ['progress', status.progress === undefined ? '' : `${status.progress}%`],
    ['size', status.size === undefined ? '' : formatSize(status.size)],
    ['uploaded', status.newlyUploadDataSize === undefined ? '' : formatSize(status.newlyUploadDataSize)],
    ['created', status.backupCreatedAt ?? ''],
    ['url', status.url ?? ''],
    ...(status.error === undefined ? [] : [['error', status.error] as const]),
    ...(view.metadata.deletionTimestamp === undefined ? [] : [['deleting', view.metadata.deletionTimestamp] as const]),
  ]);
}

const getBackup = (client: ShorthornClient, name: string): Promise<ResourceView> => client.request('GET', `/v1/backups/${encodeURIComponent(name)}`);

function finalBackup(out: Output, view: ResourceView): void {
  const status = (view.status ?? {}) as BackupStatus;
  out.print(view, () => (status.state === 'Completed' ? `backup ${view.id} completed: ${status.url ?? ''}\n` : backupDetails(view)));
  if (status.state === 'Error') {
    process.stderr.write(`shorthorn: error: backup ${view.id} failed: ${status.error ?? 'no reason given'}\n`);
    process.exitCode = operationFailedExitCode;
  }
}

async function run(options: ClientCommandOptions, body: Parameters<typeof runClientCommand>[1]): Promise<void> {
  await runClientCommand(options, async (client, out) => {
    try {
      await body(client, out);
    } catch (error) {
      if (!(error instanceof TimedOut)) throw error;
      process.stderr.write(`shorthorn: error: ${error.message}\n`);
      process.exitCode = ExitCode.timeout;
    }
  });
}

function withWait(command: Command): Command {
  return command
    .option('--no-wait', 'return once the request is recorded')
    .option('--timeout <seconds>', 'give up waiting after this long (0: no limit)', '0');
}

export function registerBackupCommands(program: Command): void {
  const backup = program.command('backup').description('back up snapshots to the backup target, list, restore, verify and delete backups');

  withWait(withClientOptions(backup.command('create <volume> <snapshot>').description('back up a snapshot of a volume (waits for it to complete)')))
    .option('--mode <mode>', 'incremental (default) or full')
    .option('--label <key=value>', 'a label stored with the backup (repeat)', (v: string, all: string[]) => [...all, v], [])
    .action(async (volume: string, snapshot: string, options: WaitOptions & { mode?: string; label: string[] }) =>
      run(options, async (client, out) => {
        if (options.mode !== undefined && options.mode !== 'full' && options.mode !== 'incremental') throw new UsageError(`--mode must be full or incremental, not ${JSON.stringify(options.mode)}`);
        const deadline = deadlineOf(options);
        const created = await client.volumeAction(volume, 'snapshotBackup', {
          snapshotName: snapshot,
          ...(options.mode === undefined ? {} : { backupMode: options.mode }),
          ...(options.label.length === 0 ? {} : { labels: labels(options.label) }),
        });
        if (!options.wait) {
          out.print(created, () => `backup ${created.id} of ${volume} requested\n`);
          return;
        }
        const view = await waitFor(`backup ${created.id}`, deadline, () => getBackup(client, created.id), (v) => {
          const status = (v.status ?? {}) as BackupStatus;
          return { done: status.state === 'Completed' || status.state === 'Error', percent: status.progress ?? 0, state: status.state ?? 'Pending' };
        });
        finalBackup(out, view);
      }),
    );

  withClientOptions(backup.command('list [volume]').alias('ls').description('list backups (of one volume, or all), as the target holds them')).action(
    async (volume: string | undefined, options: ClientCommandOptions) =>
      run(options, async (client, out) => {
        const list = await client.request<CollectionView>('GET', `/v1/backups${volume === undefined ? '' : `?volume=${encodeURIComponent(volume)}`}`);
        out.print(list.data, () => table(['NAME', 'VOLUME', 'SNAPSHOT', 'STATE', 'PROGRESS', 'SIZE', 'CREATED'], list.data.map(backupRow)));
        if (list.truncated) process.stderr.write('shorthorn: warning: the API returned only part of the list\n');
      }),
  );

  withClientOptions(backup.command('volumes').description('list the backup volumes in the target')).action(async (options: ClientCommandOptions) =>
    run(options, async (client, out) => {
      const list = await client.request<CollectionView>('GET', '/v1/backupvolumes');
      out.print(list.data, () =>
        table(['NAME', 'SIZE', 'LAST BACKUP', 'LAST BACKUP AT', 'STORED'], list.data.map((v) => {
          const s = (v.status ?? {}) as BackupVolumeStatus;
          return [v.id, s.size === undefined ? '' : formatSize(s.size), s.lastBackupName ?? '', s.lastBackupAt ?? '', s.dataStored === undefined ? '' : formatSize(s.dataStored)];
        })),
      );
    }),
  );

  withClientOptions(backup.command('get <backup>').description('show one backup')).action(async (name: string, options: ClientCommandOptions) =>
    run(options, async (client, out) => {
      const view = await getBackup(client, name);
      out.print(view, () => backupDetails(view));
    }),
  );

  withWait(withClientOptions(backup.command('delete <backup>').alias('rm').description('delete a backup from the target (waits until it is gone)'))).action(
    async (name: string, options: WaitOptions) =>
      run(options, async (client, out) => {
        const deadline = deadlineOf(options);
        const view = await client.request<ResourceView>('DELETE', `/v1/backups/${encodeURIComponent(name)}`);
        if (options.wait) {
          await waitFor(`deleting ${name}`, deadline, async () => {
            try {
              await getBackup(client, name);
              return false;
            } catch (error) {
              if (error instanceof ApiClientError && error.code === 'not_found') return true;
              throw error;
            }
          }, (gone) => ({ done: gone, percent: gone ? 100 : 0, state: gone ? 'deleted' : 'deleting' }));
        }
        out.print(view, () => `backup ${name} ${options.wait ? 'deleted' : 'marked for deletion'}\n`);
      }),
  );

  withWait(withClientOptions(backup.command('restore <backup>').description('restore a backup into a new volume (waits for the restore)')))
    .requiredOption('--to <volume>', 'name of the new volume')
    .option('--replicas <n>', 'replicas of the new volume (default: default-replica-count)')
    .option('--size <size>', 'size of the new volume (default: the backed-up volume\'s)')
    .action(async (name: string, options: WaitOptions & { to: string; replicas?: string; size?: string }) =>
      run(options, async (client, out) => {
        const deadline = deadlineOf(options);
        const source = await getBackup(client, name);
        const status = (source.status ?? {}) as BackupStatus;
        if (status.state !== 'Completed' || status.url === undefined) throw new UsageError(`backup ${name} is ${status.state ?? 'not ready'}; only a completed backup can be restored`);
        const replicas = options.replicas === undefined ? undefined : Number(options.replicas);
        if (replicas !== undefined && !Number.isInteger(replicas)) throw new UsageError(`--replicas ${JSON.stringify(options.replicas)} must be a whole number`);
        const created = await client.createVolume({
          name: options.to, fromBackup: status.url,
          ...(options.size === undefined ? {} : { size: options.size }),
          ...(options.size === undefined && status.volumeSize !== undefined ? { size: status.volumeSize } : {}),
          ...(replicas === undefined ? {} : { numberOfReplicas: replicas }),
        } as { name: string; size: number | string });
        if (!options.wait) {
          out.print(created, () => `volume ${options.to} created; restoring ${name}\n`);
          return;
        }
        const view = await waitFor(`restore ${name} → ${options.to}`, deadline, () => client.getVolume(options.to), (v) => {
          const s = (v.status ?? {}) as VolumeStatus;
          const condition = s.conditions?.find((c) => c.type === 'Restore');
          const percent = Number(/(\d+)%/.exec(condition?.message ?? '')?.[1] ?? (s.restoreRequired === false ? 100 : 0));
          const failed = condition?.reason === 'RestoreFailed' || condition?.reason === 'InvalidBackupURL';
          const done = (s.restoreRequired === false && s.state === 'detached') || failed;
          return { done, percent, state: failed ? 'failed' : s.restoreRequired === false ? (s.state ?? '') : (condition?.reason ?? 'Pending') };
        });
        const condition = ((view.status ?? {}) as VolumeStatus).conditions?.find((c) => c.type === 'Restore');
        out.print(view, () => `volume ${options.to}: ${condition?.message ?? 'restored'}\n`);
        if (condition?.status !== 'True') {
          process.stderr.write(`shorthorn: error: restore into ${options.to} failed: ${condition?.message ?? 'no reason given'}\n`);
          process.exitCode = operationFailedExitCode;
        }
      }),
    );

  withClientOptions(backup.command('verify <backup>').description('re-read and re-hash every block of a backup in the target')).action(
    async (name: string, options: ClientCommandOptions) =>
      run(options, async (client, out) => {
        const view = await getBackup(client, name);
        const volume = view.metadata.labels?.[backupVolumeLabel] ?? ((view.status ?? {}) as BackupStatus).volumeName;
        if (volume === undefined) throw new UsageError(`backup ${name} names no volume`);
        // A whole backup is read: allow far longer than an ordinary call.
        const slow = new ShorthornClient({ baseUrl: options.api, token: await readApiToken(options.tokenFile), timeoutMs: 6 * 3600_000 });
        const report = await slow.request<{ ok: boolean; blocksChecked: number; missing: unknown[]; corrupt: unknown[]; blockListOk?: boolean | null; bytesFetched: number }>(
          'POST', `/v1/backupvolumes/${encodeURIComponent(volume)}?action=backupVerify`, { name },
        );
        out.print(report, () => details([
          ['backup', name], ['volume', volume], ['result', report.ok ? 'ok' : 'DAMAGED'], ['blocks checked', String(report.blocksChecked)],
          ['missing blocks', String(report.missing.length)], ['corrupt blocks', String(report.corrupt.length)],
          ['block list', report.blockListOk === true ? 'ok' : report.blockListOk === false ? 'MISMATCH' : 'no checksum'], ['fetched', formatSize(report.bytesFetched)],
        ]));
        if (!report.ok) process.exitCode = operationFailedExitCode;
      }),
  );
}
