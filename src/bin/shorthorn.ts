#!/usr/bin/env node
// The `shorthorn` command: the daemons (replica, engine, node, manager) and the API client
// commands. Each subcommand lives in its own file beside this one and is registered here.
//
// Only the modules of the command asked for are loaded: the daemons pull in the etcd client
// (gRPC, protobufjs), fastify and the AWS SDK, which cost about a second of CPU at every start —
// a second that every `shorthorn volume list` in a script would pay. `--help` with no command,
// or an unknown command, loads them all so that help lists everything.
import { Command } from 'commander';
import { installLastResortHandlers } from './last-resort.ts';

installLastResortHandlers();

type Register = (program: Command) => Promise<void>;

const register = {
  up: async (p) => (await import('./up-command.ts')).registerUpCommand(p),
  replica: async (p) => (await import('./replica-command.ts')).registerReplicaCommand(p),
  engine: async (p) => (await import('./engine-command.ts')).registerEngineCommand(p),
  node: async (p) => (await import('./node-command.ts')).registerNodeCommand(p),
  manager: async (p) => (await import('./manager-command.ts')).registerManagerCommand(p),
  api: async (p) => (await import('./api-command.ts')).registerApiCommand(p),
  volume: async (p) => (await import('../cli/volume-commands.ts')).registerVolumeCommands(p),
  snapshot: async (p) => (await import('../cli/snapshot-commands.ts')).registerSnapshotCommands(p),
  backup: async (p) => (await import('../cli/backup-commands.ts')).registerBackupCommands(p),
  nodeClient: async (p) => (await import('../cli/node-commands.ts')).registerNodeClientCommands(p),
  setting: async (p) => (await import('../cli/setting-commands.ts')).registerSettingCommands(p),
  replicaClient: async (p) => (await import('../cli/replica-commands.ts')).registerReplicaClientCommands(p),
  disk: async (p) => (await import('../cli/disk-commands.ts')).registerDiskCommands(p),
  job: async (p) => (await import('../cli/job-commands.ts')).registerJobCommands(p),
} satisfies Record<string, Register>;
type Part = keyof typeof register;

// Registration order matters where two files add to one command: `node list|update` join the
// node agent's `node` command, `replica list` the replica daemon's, `volume job …` the volume's.
const everything: readonly Part[] = [
  'up', 'replica', 'engine', 'node', 'manager', 'api', 'volume', 'snapshot', 'backup',
  'nodeClient', 'setting', 'replicaClient', 'disk', 'job',
];
const partsOf = new Map<string, readonly Part[]>(Object.entries({
  up: ['up'],
  replica: ['replica', 'replicaClient'],
  engine: ['engine'],
  node: ['node', 'nodeClient'],
  manager: ['manager'],
  api: ['api'],
  volume: ['volume', 'job'],
  snapshot: ['snapshot'],
  backup: ['backup'],
  setting: ['setting'],
  disk: ['disk'],
  job: ['volume', 'job'],
} satisfies Record<string, readonly Part[]>));

const program = new Command();
program
  .name('shorthorn')
  .description('Distributed block storage: replicated volumes on sparse files.')
  .version('0.1.0')
  .showHelpAfterError();

const asked = process.argv[2];
const parts = (asked === undefined ? undefined : partsOf.get(asked)) ?? everything;
for (const part of parts) await register[part](program);

await program.parseAsync(process.argv);
