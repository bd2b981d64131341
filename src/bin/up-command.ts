// `shorthorn up`: a whole cluster on this host. Until the manager exists it says so.
import type { Command } from 'commander';

export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('start a whole Shorthorn cluster on this host (embedded store, local nodes)')
    .option('--data <dir>', 'data directory', './shorthorn-data')
    .option('--nodes <n>', 'number of local nodes', '1')
    .option('--port <port>', 'API and UI port', '9500')
    .action(() => {
      process.stdout.write(
        'shorthorn up: nothing to run yet — the manager and node agent are not built.\n' +
          'Today you can run the data-path daemons directly: see `shorthorn --help`.\n',
      );
    });
}
