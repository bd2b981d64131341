// `shorthorn snapshot create|list|delete|revert|purge|check`: a volume's snapshots through the API.
import type { Command } from 'commander';
import { formatSize } from '../api/size-text.ts';
import type { ShorthornClient } from '../api/client.ts';
import type { ResourceView } from '../api/resource-view.ts';
import type { SnapshotStatus } from '../control/resources/snapshot.ts';
import type { VolumeStatus } from '../control/resources/volume.ts';
import { runClientCommand, seconds, table, UsageError, withClientOptions, type ClientCommandOptions } from './cli-client.ts';
import { pollUntil } from './volume-watch.ts';

/** The volume annotation the API sets for a revert; the manager removes it when it is done. */
const revertAnnotation = 'shorthorn.io/snapshot-revert-requested';
/** The volume condition with the outcome of the last revert. */
const revertCondition = 'SnapshotRevert';

/** A snapshot or revert the manager refused or could not do; exit code 4. */
export class SnapshotFailedError extends Error {}

interface WaitOptions extends ClientCommandOptions {
  readonly wait?: boolean;
  readonly timeout: string;
}

async function waitSnapshotReady(client: ShorthornClient, volume: string, name: string, timeoutMs: number): Promise<ResourceView> {
  return pollUntil(
    `snapshot ${name} of volume ${volume}`,
    timeoutMs,
    async () => {
      const view = await client.request<ResourceView>('GET', `/v1/snapshots/${encodeURIComponent(name)}`);
      const status = (view.status ?? {}) as SnapshotStatus;
      if (status.error !== undefined && status.error !== '') throw new SnapshotFailedError(`snapshot ${name} of volume ${volume}: ${status.error}`);
      return status.readyToUse === true ? view : undefined;
    },
    `is the manager running? \`shorthorn snapshot list ${volume}\``,
  );
}

async function waitReverted(client: ShorthornClient, volume: string, name: string, timeoutMs: number): Promise<void> {
  await pollUntil(
    `revert of volume ${volume} to ${name}`,
    timeoutMs,
    async () => {
      const view = await client.getVolume(volume);
      if (view.metadata.annotations?.[revertAnnotation] !== undefined) return undefined;
      const outcome = ((view.status ?? {}) as VolumeStatus).conditions?.find((c) => c.type === revertCondition);
      if (outcome?.status === 'False') throw new SnapshotFailedError(`volume ${volume}: ${outcome.message ?? `revert to ${name} failed`}`);
      return true;
    },
    `is the manager running? \`shorthorn volume get ${volume}\``,
  );
}

/** The volume annotation the API sets for a data check (data-integrity-reconcile.ts). */
const checkAnnotation = 'shorthorn.io/snapshot-check-requested-at';

/** Wait for the manager to record the check asked for at `request`; a mismatch or failure is exit code 4. */
async function waitChecked(client: ShorthornClient, volume: string, request: string, timeoutMs: number): Promise<ResourceView> {
  const view = await pollUntil(
    `data check of volume ${volume}`,
    timeoutMs,
    async () => {
      const current = await client.getVolume(volume);
      return ((current.status ?? {}) as VolumeStatus).dataIntegrity?.lastRequest === request ? current : undefined;
    },
    `is the manager running and the volume attached? \`shorthorn volume get ${volume}\``,
  );
  const check = ((view.status ?? {}) as VolumeStatus).dataIntegrity;
  if (check?.lastCheckResult !== 'clean') throw new SnapshotFailedError(`volume ${volume}: data check ${check?.lastCheckResult ?? '?'}: ${check?.message ?? ''}`);
  return view;
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

export function registerSnapshotCommands(program: Command): void {
  const snapshot = program.command('snapshot').description('take, list, delete and revert to snapshots of a volume');

  withClientOptions(snapshot.command('create <volume>').description('take a snapshot of an attached volume'))
    .option('--name <name>', 'snapshot name (default: a UUID)')
    .option('--label <key=value>', 'a label (repeat)', (v: string, all: string[]) => [...all, v], [])
    .option('--wait', 'wait until the snapshot is taken')
    .option('--timeout <seconds>', 'with --wait: give up after this long (exit code 6)', '120')
    .action(async (volume: string, options: WaitOptions & { name?: string; label: string[] }) =>
      runClientCommand(options, async (client, out) => {
        const timeoutMs = seconds(options.timeout, '--timeout') * 1000;
        const view = await client.createSnapshot(volume, {
          ...(options.name === undefined ? {} : { name: options.name }),
          ...(options.label.length === 0 ? {} : { labels: labels(options.label) }),
        });
        if (options.wait === true) {
          const taken = await waitSnapshotReady(client, volume, view.id, timeoutMs);
          out.print(taken, () => `snapshot ${view.id} of volume ${volume} taken\n`);
          return;
        }
        out.print(view, () => `snapshot ${view.id} of volume ${volume} requested\n`);
      }),
    );

  withClientOptions(snapshot.command('list <volume>').alias('ls').description('list the snapshots of an attached volume')).action(
    async (volume: string, options: ClientCommandOptions) =>
      runClientCommand(options, async (client, out) => {
        const list = await client.listSnapshots(volume);
        out.print(list.data, () =>
          table(
            ['NAME', 'CREATED', 'SIZE', 'READY', 'REMOVED', 'CHECKSUM'],
            list.data.map((view) => {
              const status = (view.status ?? {}) as SnapshotStatus;
              return [
                view.id,
                status.creationTime ?? '',
                status.size === undefined ? '' : formatSize(status.size),
                status.readyToUse === true ? 'yes' : 'no',
                status.markRemoved === true ? 'yes' : '',
                status.checksumState ?? '',
              ];
            }),
          ),
        );
      }),
  );

  withClientOptions(snapshot.command('delete <volume> <snapshot>').alias('rm').description('delete a snapshot (its data is freed by purge)')).action(
    async (volume: string, name: string, options: ClientCommandOptions) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.deleteSnapshot(volume, name);
        out.print(view, () => `snapshot ${name} of volume ${volume} deleted\n`);
      }),
  );

  withClientOptions(snapshot.command('revert <volume> <snapshot>').description('revert a volume attached in maintenance mode to a snapshot'))
    .option('--wait', 'wait until the manager has reverted the volume')
    .option('--timeout <seconds>', 'with --wait: give up after this long (exit code 6)', '120')
    .action(async (volume: string, name: string, options: WaitOptions) =>
      runClientCommand(options, async (client, out) => {
        const timeoutMs = seconds(options.timeout, '--timeout') * 1000;
        const view = await client.revertSnapshot(volume, name);
        if (options.wait === true) {
          await waitReverted(client, volume, name, timeoutMs);
          out.print(view, () => `volume ${volume}: reverted to ${name}\n`);
          return;
        }
        out.print(view, () => `volume ${volume}: revert to ${name} requested\n`);
      }),
    );

  withClientOptions(snapshot.command('check <volume>').description("check an attached volume's snapshot data now: every replica's data against its checksums, and the replicas against each other"))
    .option('--wait', 'wait for the outcome (exit code 4 when the check finds a mismatch or fails)')
    .option('--timeout <seconds>', 'with --wait: give up after this long (exit code 6)', '600')
    .action(async (volume: string, options: WaitOptions) =>
      runClientCommand(options, async (client, out) => {
        const timeoutMs = seconds(options.timeout, '--timeout') * 1000;
        const view = await client.checkSnapshots(volume);
        const request = view.metadata.annotations?.[checkAnnotation];
        if (options.wait === true && request !== undefined) {
          const checked = await waitChecked(client, volume, request, timeoutMs);
          const status = ((checked.status ?? {}) as VolumeStatus).dataIntegrity;
          out.print(checked, () => `volume ${volume}: data check ${status?.message ?? 'clean'}\n`);
          return;
        }
        out.print(view, () => `volume ${volume}: data check requested (\`shorthorn volume get ${volume}\` shows the outcome)\n`);
      }),
    );

  withClientOptions(snapshot.command('purge <volume>').description('free the data of deleted and system snapshots')).action(
    async (volume: string, options: ClientCommandOptions) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.purgeSnapshots(volume);
        out.print(view, () => `volume ${volume}: snapshot purge requested\n`);
      }),
  );
}
