#!/usr/bin/env node
// The `shorthorn` command: the daemons (replica, engine, node, manager) and the API client
// commands. Each subcommand lives in its own file beside this one and is registered here.
import { Command } from 'commander';
import { registerUpCommand } from './up-command.ts';
import { registerReplicaCommand } from './replica-command.ts';
import { registerEngineCommand } from './engine-command.ts';
import { registerNodeCommand } from './node-command.ts';
import { registerManagerCommand } from './manager-command.ts';
import { registerApiCommand } from './api-command.ts';
import { registerVolumeCommands } from '../cli/volume-commands.ts';
import { registerBackupCommands } from '../cli/backup-commands.ts';
import { registerSnapshotCommands } from '../cli/snapshot-commands.ts';
import { registerNodeClientCommands } from '../cli/node-commands.ts';
import { registerSettingCommands } from '../cli/setting-commands.ts';
import { registerReplicaClientCommands } from '../cli/replica-commands.ts';
import { registerDiskCommands } from '../cli/disk-commands.ts';
import { registerJobCommands } from '../cli/job-commands.ts';
import { installLastResortHandlers } from './last-resort.ts';

installLastResortHandlers();

const program = new Command();
program
  .name('shorthorn')
  .description('Distributed block storage: replicated volumes on sparse files.')
  .version('0.1.0')
  .showHelpAfterError();

registerUpCommand(program);
registerReplicaCommand(program);
registerEngineCommand(program);
registerNodeCommand(program);
registerManagerCommand(program);
registerApiCommand(program);
registerVolumeCommands(program);
registerSnapshotCommands(program);
registerBackupCommands(program);
// After registerNodeCommand: `node list|update` become subcommands of the node agent's command.
registerNodeClientCommands(program);
registerSettingCommands(program);
// After registerReplicaCommand: `replica list` becomes a subcommand of the replica daemon's command.
registerReplicaClientCommands(program);
registerDiskCommands(program);
// After registerVolumeCommands: `volume job add|delete|list` join the volume command.
registerJobCommands(program);

await program.parseAsync(process.argv);
