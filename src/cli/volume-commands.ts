// `shorthorn volume create|list|get|delete|attach|detach|expand|replicas`: volumes through the API.
import type { Command } from 'commander';
import { formatSize, parseSizeText } from '../api/size-text.ts';
import type { ResourceView } from '../api/resource-view.ts';
import type { VolumeSpec, VolumeStatus } from '../control/resources/volume.ts';
import { details, runClientCommand, table, UsageError, withClientOptions, type ClientCommandOptions } from './cli-client.ts';

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
    ['Created', view.metadata.creationTimestamp ?? ''],
    ['Actions', Object.keys(view.actions).join(', ')],
  ]);
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

interface CreateOptions extends ClientCommandOptions {
  readonly size: string;
  readonly replicas?: string;
  readonly frontend?: string;
  readonly accessMode?: string;
  readonly dataLocality?: string;
}

export function registerVolumeCommands(program: Command): void {
  const volume = program.command('volume').description('create, list, attach and change volumes through the API');

  withClientOptions(volume.command('create <name>').description('create a volume'))
    .requiredOption('--size <size>', 'size: bytes or e.g. 10Gi, 500Mi')
    .option('--replicas <n>', 'number of replicas (default: the default-replica-count setting)')
    .option('--frontend <frontend>', 'blockdev, nbd or iscsi')
    .option('--access-mode <mode>', 'rwo or rwx')
    .option('--data-locality <mode>', 'disabled, best-effort or strict-local')
    .action(async (name: string, options: CreateOptions) =>
      runClientCommand(options, async (client, out) => {
        const input = {
          name,
          size: size(options.size),
          ...(options.replicas === undefined ? {} : { numberOfReplicas: integer(options.replicas, '--replicas') }),
          ...(options.frontend === undefined ? {} : { frontend: options.frontend }),
          ...(options.accessMode === undefined ? {} : { accessMode: options.accessMode }),
          ...(options.dataLocality === undefined ? {} : { dataLocality: options.dataLocality }),
        };
        const created = await client.createVolume(input);
        out.print(created, () => `volume ${created.id} created (${formatSize(specOf(created).size)}, ${specOf(created).numberOfReplicas} replicas)\n`);
      }),
    );

  withClientOptions(volume.command('list').alias('ls').description('list volumes')).action(async (options: ClientCommandOptions) =>
    runClientCommand(options, async (client, out) => {
      const list = await client.listVolumes();
      if (list.truncated) process.stderr.write(`shorthorn: warning: only the first ${list.data.length} volumes are shown\n`);
      out.print(list.data, () => table(volumeHeaders, list.data.map(volumeRow)));
    }),
  );

  withClientOptions(volume.command('get <name>').description('show one volume')).action(async (name: string, options: ClientCommandOptions) =>
    runClientCommand(options, async (client, out) => {
      const view = await client.getVolume(name);
      out.print(view, () => volumeDetails(view));
    }),
  );

  withClientOptions(volume.command('delete <name>').alias('rm').description('delete a volume (its data is removed by the manager)')).action(
    async (name: string, options: ClientCommandOptions) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.deleteVolume(name);
        // With a finalizer (the manager's) the volume stays until its data is removed.
        out.print(view, () => (view.metadata.deletionTimestamp === undefined ? `volume ${name} deleted\n` : `volume ${name} is being deleted\n`));
      }),
  );

  withClientOptions(volume.command('attach <name>').description('attach a volume to a node'))
    .requiredOption('--node <node>', 'the node to attach to')
    .option('--maintenance', 'attach without exposing the device (needed for snapshot revert)')
    .option('--attachment-id <id>', 'the ticket id (default shorthorn-ui)')
    .action(async (name: string, options: ClientCommandOptions & { node: string; maintenance?: boolean; attachmentId?: string }) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.attachVolume(name, {
          hostId: options.node,
          ...(options.maintenance === true ? { disableFrontend: true } : {}),
          ...(options.attachmentId === undefined ? {} : { attachmentID: options.attachmentId }),
        });
        out.print(view, () => `volume ${name}: attach to ${options.node} requested; \`shorthorn volume get ${name}\` shows when it is attached\n`);
      }),
    );

  withClientOptions(volume.command('detach <name>').description('detach a volume'))
    .option('--node <node>', 'only if attached to this node')
    .option('--attachment-id <id>', 'the ticket id (default shorthorn-ui)')
    .option('--force', 'remove every attachment ticket, whoever made it')
    .action(async (name: string, options: ClientCommandOptions & { node?: string; attachmentId?: string; force?: boolean }) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.detachVolume(name, {
          ...(options.node === undefined ? {} : { hostId: options.node }),
          ...(options.attachmentId === undefined ? {} : { attachmentID: options.attachmentId }),
          ...(options.force === true ? { forceDetach: true } : {}),
        });
        out.print(view, () => `volume ${name}: detach requested\n`);
      }),
    );

  withClientOptions(volume.command('expand <name>').description('grow a volume'))
    .requiredOption('--size <size>', 'the new size: bytes or e.g. 20Gi')
    .action(async (name: string, options: ClientCommandOptions & { size: string }) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.expandVolume(name, size(options.size));
        out.print(view, () => `volume ${name}: size is now ${formatSize(specOf(view).size)}\n`);
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
