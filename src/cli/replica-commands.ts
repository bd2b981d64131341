// `shorthorn replica list [VOLUME]`: replicas through the API, with the node, process state, mode
// in the engine and pid (so a user can see — or, to try self-healing, kill — a replica process).
// `shorthorn replica` itself is the replica daemon (src/bin/replica-command.ts); `list` is added to
// that command, as `node list` is to the node agent's.
import type { Command } from 'commander';
import type { ResourceView } from '../api/resource-view.ts';
import type { EngineStatus } from '../control/resources/engine.ts';
import type { ReplicaSpec, ReplicaStatus } from '../control/resources/replica.ts';
import { runClientCommand, table, withClientOptions, type ClientCommandOptions } from './cli-client.ts';

interface ListOptions extends ClientCommandOptions {
  readonly node?: string;
  readonly pids?: boolean;
}

/** Modes by replica name, from the running engines. */
function modesOf(engines: readonly ResourceView[]): Map<string, string> {
  const modes = new Map<string, string>();
  for (const engine of engines) {
    const status = (engine.status ?? {}) as EngineStatus;
    if (status.currentState !== 'running') continue;
    for (const [name, mode] of Object.entries(status.replicaModeMap ?? {})) modes.set(name, mode);
  }
  return modes;
}

export function registerReplicaClientCommands(program: Command): void {
  const replica =
    program.commands.find((command) => command.name() === 'replica') ?? program.command('replica').description('replicas: list them through the API');
  // As for `node`: the daemon's required --dir must not be demanded of `replica list`.
  replica.hook('preSubcommand', (command) => {
    for (const option of command.options) option.mandatory = false;
  });

  withClientOptions(replica.command('list [volume]').alias('ls').description('list replicas (of one volume), with node, state, mode and pid (through the API)'))
    .option('--node <node>', 'only the replicas on this node')
    .option('--pids', 'print only the process ids of running replicas, one a line (for scripts)')
    .action(async (volume: string | undefined, options: ListOptions) =>
      runClientCommand(options, async (client, out) => {
        const [replicas, engines] = await Promise.all([client.listReplicas(volume), client.listEngines(volume)]);
        const chosen = replicas.data.filter((view) => options.node === undefined || (view.spec as ReplicaSpec).nodeID === options.node);
        if (options.pids === true) {
          const pids = chosen.flatMap((view) => {
            const status = (view.status ?? {}) as ReplicaStatus;
            return status.currentState === 'running' && status.pid !== undefined ? [status.pid] : [];
          });
          process.stdout.write(pids.map((pid) => `${pid}\n`).join(''));
          return;
        }
        const modes = modesOf(engines.data);
        out.print(chosen, () =>
          table(
            ['NAME', 'VOLUME', 'NODE', 'STATE', 'MODE', 'PID', 'ADDRESS'],
            chosen.map((view) => {
              const spec = view.spec as ReplicaSpec;
              const status = (view.status ?? {}) as ReplicaStatus;
              return [
                view.id,
                spec.volumeName,
                spec.nodeID ?? '',
                `${status.currentState ?? 'unknown'}${spec.failedAt === undefined ? '' : ' (failed)'}`,
                modes.get(view.id) ?? '',
                status.pid === undefined ? '' : String(status.pid),
                status.ip === undefined || status.port === undefined ? '' : `${status.ip}:${status.port}`,
              ];
            }),
          ),
        );
      }),
    );
}
