// `shorthorn snapshot create|list|delete|revert|purge`: a volume's snapshots through the API.
import type { Command } from 'commander';
import { formatSize } from '../api/size-text.ts';
import type { SnapshotStatus } from '../control/resources/snapshot.ts';
import { runClientCommand, table, UsageError, withClientOptions, type ClientCommandOptions } from './cli-client.ts';

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
    .action(async (volume: string, options: ClientCommandOptions & { name?: string; label: string[] }) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.createSnapshot(volume, {
          ...(options.name === undefined ? {} : { name: options.name }),
          ...(options.label.length === 0 ? {} : { labels: labels(options.label) }),
        });
        out.print(view, () => `snapshot ${view.id} of volume ${volume} requested\n`);
      }),
    );

  withClientOptions(snapshot.command('list <volume>').alias('ls').description('list the snapshots of an attached volume')).action(
    async (volume: string, options: ClientCommandOptions) =>
      runClientCommand(options, async (client, out) => {
        const list = await client.listSnapshots(volume);
        out.print(list.data, () =>
          table(
            ['NAME', 'CREATED', 'SIZE', 'READY', 'REMOVED'],
            list.data.map((view) => {
              const status = (view.status ?? {}) as SnapshotStatus;
              return [
                view.id,
                status.creationTime ?? '',
                status.size === undefined ? '' : formatSize(status.size),
                status.readyToUse === true ? 'yes' : 'no',
                status.markRemoved === true ? 'yes' : '',
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

  withClientOptions(snapshot.command('revert <volume> <snapshot>').description('revert a volume attached in maintenance mode to a snapshot')).action(
    async (volume: string, name: string, options: ClientCommandOptions) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.revertSnapshot(volume, name);
        out.print(view, () => `volume ${volume}: revert to ${name} requested\n`);
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
