// `shorthorn node list|update`: nodes through the API. `shorthorn node` itself is the node agent
// daemon (src/bin/node-command.ts); these are added to that command as subcommands when it
// exists, so both live under the name Longhorn users expect.
import type { Command } from 'commander';
import { formatSize } from '../api/size-text.ts';
import type { ResourceView } from '../api/resource-view.ts';
import type { NodeSpec, NodeStatus } from '../control/resources/node.ts';
import { onOff, runClientCommand, table, UsageError, withClientOptions, type ClientCommandOptions } from './cli-client.ts';

function nodeRow(view: ResourceView): string[] {
  const spec = view.spec as NodeSpec;
  const status = (view.status ?? {}) as NodeStatus;
  const ready = status.conditions?.find((c) => c.type === 'Ready')?.status ?? 'Unknown';
  let maximum = 0;
  let available = 0;
  for (const disk of Object.values(status.diskStatus ?? {})) {
    maximum += disk.storageMaximum;
    available += disk.storageAvailable;
  }
  return [
    view.id,
    ready === 'True' ? 'yes' : ready === 'False' ? 'no' : 'unknown',
    spec.allowScheduling ? 'yes' : 'no',
    spec.evictionRequested ? 'yes' : 'no',
    String(Object.keys(spec.disks).length),
    maximum === 0 ? '' : `${formatSize(maximum - available)} / ${formatSize(maximum)}`,
    spec.tags.join(','),
  ];
}

interface UpdateOptions extends ClientCommandOptions {
  readonly scheduling?: string;
  readonly eviction?: string;
  readonly tags?: string;
}

export function registerNodeClientCommands(program: Command): void {
  const node =
    program.commands.find((command) => command.name() === 'node') ?? program.command('node').description('nodes: list and change them through the API');
  // Commander checks the mandatory options of every ancestor, so the agent's required --name would
  // be demanded of `node list`. When a subcommand runs, the agent does not: drop the requirement.
  node.hook('preSubcommand', (command) => {
    for (const option of command.options) option.mandatory = false;
  });

  withClientOptions(node.command('list').alias('ls').description('list nodes (through the API)')).action(async (options: ClientCommandOptions) =>
    runClientCommand(options, async (client, out) => {
      const list = await client.listNodes();
      out.print(list.data, () => table(['NAME', 'READY', 'SCHEDULABLE', 'EVICTING', 'DISKS', 'USED', 'TAGS'], list.data.map(nodeRow)));
    }),
  );

  withClientOptions(node.command('update <name>').description('change a node\'s scheduling, eviction or tags (through the API)'))
    .option('--scheduling <on|off>', 'allow new replicas on the node')
    .option('--eviction <on|off>', 'move every replica off the node')
    .option('--tags <a,b,...>', 'replace the node tags (empty string: none)')
    .action(async (name: string, options: UpdateOptions) =>
      runClientCommand(options, async (client, out) => {
        const input = {
          ...(options.scheduling === undefined ? {} : { allowScheduling: onOff(options.scheduling, '--scheduling') }),
          ...(options.eviction === undefined ? {} : { evictionRequested: onOff(options.eviction, '--eviction') }),
          ...(options.tags === undefined ? {} : { tags: options.tags === '' ? [] : options.tags.split(',') }),
        };
        if (Object.keys(input).length === 0) throw new UsageError('nothing to change: give --scheduling, --eviction or --tags');
        const view = await client.updateNode(name, input);
        out.print(view, () => table(['NAME', 'READY', 'SCHEDULABLE', 'EVICTING', 'DISKS', 'USED', 'TAGS'], [nodeRow(view)]));
      }),
    );
}
