// `shorthorn disk list|add|update`: a node's disks through the API. The API's diskUpdate action
// replaces a node's whole disk set (Longhorn's shape), so each command reads the node, changes one
// disk and sends the set back; the API checks paths, names and values.
import { basename } from 'node:path';
import type { Command } from 'commander';
import { formatSize, parseSizeText } from '../api/size-text.ts';
import { ApiClientError, type ShorthornClient } from '../api/client.ts';
import type { ResourceView } from '../api/resource-view.ts';
import type { DiskSpec, NodeSpec, NodeStatus } from '../control/resources/node.ts';
import { onOff, runClientCommand, table, UsageError, withClientOptions, type ClientCommandOptions } from './cli-client.ts';

interface DiskOptions extends ClientCommandOptions {
  readonly name?: string;
  readonly scheduling?: string;
  readonly eviction?: string;
  readonly tags?: string;
  readonly reserved?: string;
}

const diskHeaders = ['NODE', 'DISK', 'PATH', 'SCHEDULABLE', 'EVICTING', 'RESERVED', 'USED', 'SCHEDULED', 'TAGS'];

function diskRows(view: ResourceView): string[][] {
  const spec = view.spec as NodeSpec;
  const status = (view.status ?? {}) as NodeStatus;
  return Object.entries(spec.disks).map(([name, disk]) => {
    const measured = status.diskStatus?.[name];
    return [
      view.id,
      name,
      disk.path,
      disk.allowScheduling ? 'yes' : 'no',
      disk.evictionRequested ? 'yes' : 'no',
      formatSize(disk.storageReserved),
      measured === undefined ? '' : `${formatSize(measured.storageMaximum - measured.storageAvailable)} / ${formatSize(measured.storageMaximum)}`,
      measured === undefined ? '' : formatSize(measured.storageScheduled),
      disk.tags.join(','),
    ];
  });
}

function bytes(text: string, what: string): number {
  const value = parseSizeText(text);
  if (typeof value === 'string') throw new UsageError(`${what}: ${value}`);
  return value;
}

/** The user's changes to one disk, from the options given. */
function changes(options: DiskOptions): Partial<DiskSpec> {
  return {
    ...(options.scheduling === undefined ? {} : { allowScheduling: onOff(options.scheduling, '--scheduling') }),
    ...(options.eviction === undefined ? {} : { evictionRequested: onOff(options.eviction, '--eviction') }),
    ...(options.tags === undefined ? {} : { tags: options.tags === '' ? [] : options.tags.split(',') }),
    ...(options.reserved === undefined ? {} : { storageReserved: bytes(options.reserved, '--reserved') }),
  };
}

/** A disk name from its path: `/mnt/ssd1` → `ssd1` (the API checks it). */
function nameFromPath(path: string): string {
  return basename(path).toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '') || 'disk';
}

async function replaceDisks(client: ShorthornClient, node: string, edit: (disks: Record<string, DiskSpec>) => void): Promise<ResourceView> {
  const view = await client.getNode(node);
  const disks = structuredClone((view.spec as NodeSpec).disks);
  edit(disks);
  return client.updateNodeDisks(node, disks);
}

export function registerDiskCommands(program: Command): void {
  const disk = program.command('disk').description("list, add and change a node's disks through the API");

  withClientOptions(disk.command('list [node]').alias('ls').description('list the disks of every node, or of one')).action(
    async (node: string | undefined, options: ClientCommandOptions) =>
      runClientCommand(options, async (client, out) => {
        const nodes = node === undefined ? (await client.listNodes()).data : [await client.getNode(node)];
        out.print(
          nodes.map((view) => ({ node: view.id, disks: (view.spec as NodeSpec).disks, diskStatus: (view.status as NodeStatus | undefined)?.diskStatus ?? {} })),
          () => table(diskHeaders, nodes.flatMap(diskRows)),
        );
      }),
  );

  withClientOptions(disk.command('add <node> <path>').description('add a disk (a directory on a mounted filesystem) to a node'))
    .option('--name <name>', 'disk name (default: from the last part of the path)')
    .option('--scheduling <on|off>', 'allow new replicas on the disk (default on)')
    .option('--tags <a,b,...>', 'disk tags')
    .option('--reserved <size>', 'bytes kept free for other users of the filesystem, e.g. 10Gi')
    .action(async (node: string, path: string, options: DiskOptions) =>
      runClientCommand(options, async (client, out) => {
        if (options.eviction !== undefined) throw new UsageError('a new disk has nothing to evict');
        const name = options.name ?? nameFromPath(path);
        const view = await replaceDisks(client, node, (disks) => {
          if (disks[name] !== undefined) throw new UsageError(`node ${node} has a disk named ${name} already (at ${disks[name].path}); pass --name`);
          disks[name] = { path, ...changes(options) } as DiskSpec;
        });
        out.print(view, () => `disk ${name} (${path}) added to node ${node}; the node agent measures it within seconds (\`shorthorn disk list ${node}\`)\n`);
      }),
    );

  withClientOptions(disk.command('update <node> <disk>').description("change a disk's scheduling, eviction, tags or reserved space"))
    .option('--scheduling <on|off>', 'allow new replicas on the disk')
    .option('--eviction <on|off>', 'move every replica off the disk')
    .option('--tags <a,b,...>', "replace the disk's tags (empty string: none)")
    .option('--reserved <size>', 'bytes kept free for other users of the filesystem')
    .action(async (node: string, name: string, options: DiskOptions) =>
      runClientCommand(options, async (client, out) => {
        const change = changes(options);
        if (Object.keys(change).length === 0) throw new UsageError('nothing to change: give --scheduling, --eviction, --tags or --reserved');
        const view = await replaceDisks(client, node, (disks) => {
          const current = disks[name];
          if (current === undefined) {
            throw new ApiClientError('not_found', `node ${node} has no disk named ${name} (it has ${Object.keys(disks).join(', ') || 'none'})`, { status: 404 });
          }
          disks[name] = { ...current, ...change };
        });
        out.print(view, () => table(diskHeaders, diskRows(view).filter((row) => row[1] === name)));
      }),
    );
}
