// `shorthorn api`: the REST API on its own, over a store (the manager will host the same server
// later). The bearer token is made in the data directory on first start (DATA/api-token, 0600).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ensureApiToken } from '../api/api-token.ts';
import type { StoreSpec } from '../control/store/open-store.ts';
import { toError } from '../lib/errors.ts';
import { systemClock } from './system-clock.ts';

interface ApiCommandOptions {
  readonly store: string;
  readonly data?: string;
  readonly host: string;
  readonly port: string;
  readonly secretsDir?: string;
}

function fail(message: string): never {
  process.stderr.write(`shorthorn api: ${message}\n`);
  process.exit(1);
}

/** `embedded:PATH` or `etcd:http://host:2379,http://host2:2379`. */
export function parseStoreOption(text: string): StoreSpec | string {
  if (text.startsWith('embedded:') && text.length > 'embedded:'.length) return { backend: 'embedded', dataDir: text.slice('embedded:'.length) };
  if (text.startsWith('etcd:') && text.length > 'etcd:'.length) return { backend: 'etcd', endpoints: text.slice('etcd:'.length).split(',') };
  return `--store ${JSON.stringify(text)}: write embedded:DATA_DIR or etcd:http://HOST:2379[,...]`;
}

async function runApi(options: ApiCommandOptions): Promise<void> {
  const spec = parseStoreOption(options.store);
  if (typeof spec === 'string') fail(spec);
  const dataDir = options.data ?? (spec.backend === 'embedded' ? spec.dataDir : undefined);
  if (dataDir === undefined) fail('--data DIR is needed with an etcd store: the API token is kept there');
  const port = Number(options.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port ${options.port} is not a TCP port`);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const token = await ensureApiToken(dataDir);
  // Loaded here, not at the top: fastify, prom-client and the store drivers take most of a second
  // to load, and every other `shorthorn` command (the CLI above all) would pay for it.
  const [{ createApiServer }, { openStore }, { openLibraryBackupStore }] = await Promise.all([
    import('../api/api-server.ts'), import('../control/store/open-store.ts'), import('./backup-store-adapter.ts'),
  ]);
  // backupVerify reads the target with the manager's credentials (docs/manager.md "Backups").
  const secretsDir = options.secretsDir ?? (spec.backend === 'embedded' ? join(spec.dataDir, 'secrets') : undefined);
  const backupAccess = { openBackupStore: openLibraryBackupStore, credentials: { secretsDir, env: process.env } };
  const store = openStore(spec, { clock: systemClock });
  const log = (message: string): void => {
    process.stderr.write(`shorthorn api: ${message}\n`);
  };
  const server = createApiServer({ store, token, clock: systemClock, log, backupAccess });
  const bound = await server.listen({ host: options.host, port });
  process.stdout.write(`shorthorn api: listening on http://${options.host}:${bound} (token in ${dataDir}/api-token)\n`);
  const stop = (): void => {
    server
      .close()
      .then(() => store.close())
      .then(
        () => process.exit(0),
        (error: unknown) => fail(`stopping: ${toError(error).message}`),
      );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

export function registerApiCommand(program: Command): void {
  program
    .command('api')
    .description('serve the REST API (port 9500, /v1) over a store')
    .requiredOption('--store <spec>', 'embedded:DATA_DIR or etcd:http://HOST:2379[,...]')
    .option('--data <dir>', 'directory of the API token (default: the embedded store\'s directory)')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', '9500')
    .option('--secrets-dir <dir>', 'backup credential secrets, for backupVerify (default: STORE/secrets for the embedded store)')
    .action(async (options: ApiCommandOptions) => runApi(options));
}
