// `shorthorn replica`: the replica daemon. Creates the replica in --dir when the directory is
// empty (or missing), opens it otherwise, serves the replica protocol on TCP (and optionally a
// unix socket), and on SIGTERM/SIGINT stops taking requests, finishes the running ones, flushes
// and closes the store before exiting 0.
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { volumeSizeMaxBytes } from '../lib/limits.ts';
import { toError } from '../lib/errors.ts';
import { createReplicaStore, openReplicaStore } from '../replica/layered-store.ts';
import { NodeReplicaFiles } from '../replica/node/node-replica-files.ts';
import { faultInjectionEnvVar, parseFaultConfig } from '../replica/fault-config.ts';
import { FaultyReplicaFiles } from '../replica/faulty-replica-files.ts';
import type { ReplicaFiles } from '../replica/replica-files.ts';
import type { FaultPointHook } from '../replica/layered-store.ts';
import { metaFileName } from '../replica/replica-dir.ts';
import { manageDataProcessMemory } from './memory-report.ts';
import { loadOrCreateInstanceId } from '../replica/replica-instance-id.ts';
import { ReplicaServer } from '../replica/replica-server.ts';
import type { ReplicaStore } from '../replica/replica-store.ts';
import { systemClock } from './system-clock.ts';

interface ReplicaCommandOptions {
  readonly dir: string;
  readonly size?: string;
  readonly listen: string;
  readonly unix?: string;
  readonly volume?: string;
  readonly faultConfig?: string;
  readonly checksumRateMib: string;
}

/** --checksum-rate-mib: MiB/s of background snapshot hashing (0: off), as bytes per second. */
export function parseChecksumRate(text: string): number | string {
  const mib = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !(mib >= 0 && mib <= 100_000)) return `--checksum-rate-mib ${JSON.stringify(text)}: want 0 (off) to 100000 MiB/s`;
  return Math.round(mib * 1024 * 1024);
}

const sizeUnits: Readonly<Record<string, number>> = {
  '': 1,
  k: 1000, m: 1000 ** 2, g: 1000 ** 3, t: 1000 ** 4,
  ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3, ti: 1024 ** 4,
};

/** "1073741824", "1Gi", "512M": bytes as a number, or an error message. */
export function parseSizeBytes(text: string): number | string {
  const match = /^(\d+)\s*([kmgt]i?)?b?$/i.exec(text.trim());
  const unit = sizeUnits[(match?.[2] ?? '').toLowerCase()];
  if (match === null || unit === undefined) return `cannot parse size ${JSON.stringify(text)} (e.g. 1073741824, 512Mi, 10Gi)`;
  const bytes = Number(match[1]) * unit;
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes > volumeSizeMaxBytes) {
    return `size ${text} must be between 1 byte and ${volumeSizeMaxBytes} bytes`;
  }
  return bytes;
}

export function parseListen(text: string): { host: string; port: number } | string {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !(port >= 0 && port <= 65535)) return `cannot parse --listen ${JSON.stringify(text)} (want HOST:PORT)`;
  return { host, port };
}

/**
 * True when the directory holds no replica: missing, empty, or left by a create that crashed
 * before its metadata was committed (layer files but no replica.meta; create overwrites them).
 */
async function holdsNoReplica(dir: string): Promise<boolean> {
  try {
    return !(await readdir(dir)).includes(metaFileName);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw error;
  }
}

function fail(message: string): never {
  process.stderr.write(`shorthorn replica: ${message}\n`);
  process.exit(2);
}

/**
 * The files the store uses: the real ones, or (tests only) the fault-injecting layer over them
 * when --fault-config is given and the environment says fault injection is wanted, so that a
 * stray flag can never make a production replica fail on purpose.
 */
async function replicaFiles(options: ReplicaCommandOptions, log: (m: string) => void): Promise<{ files: ReplicaFiles; faultPoint?: FaultPointHook }> {
  const files = new NodeReplicaFiles();
  if (options.faultConfig === undefined) return { files };
  if (process.env[faultInjectionEnvVar] !== '1') fail(`--fault-config is for tests: set ${faultInjectionEnvVar}=1 to inject faults`);
  let config;
  try {
    config = parseFaultConfig(await readFile(options.faultConfig, 'utf8'));
  } catch (error) {
    fail(`${options.faultConfig}: ${toError(error).message}`);
  }
  const faulty = new FaultyReplicaFiles({
    inner: files,
    config,
    crash: () => process.kill(process.pid, 'SIGKILL'),
    log,
  });
  log(`FAULT INJECTION on: ${options.faultConfig} (seed ${config.seed}, ${config.rules.length} rules${config.loseUnsynced ? ', lose-unsynced' : ''}${config.crashAtPoints.length > 0 ? `, crash at ${config.crashAtPoints.join(' ')}` : ''})`);
  return { files: faulty, faultPoint: faulty.faultPoint };
}

async function openOrCreate(options: ReplicaCommandOptions, log: (m: string) => void): Promise<ReplicaStore> {
  const checksumBytesPerSecond = parseChecksumRate(options.checksumRateMib);
  if (typeof checksumBytesPerSecond === 'string') fail(checksumBytesPerSecond);
  const common = { dir: options.dir, clock: systemClock, checksumBytesPerSecond, log, ...(await replicaFiles(options, log)) };
  if (await holdsNoReplica(options.dir)) {
    if (options.size === undefined) fail(`${options.dir} holds no replica: --size is needed to create one`);
    const sizeBytes = parseSizeBytes(options.size);
    if (typeof sizeBytes === 'string') fail(sizeBytes);
    const volumeName = options.volume ?? 'volume';
    const store = await createReplicaStore({ ...common, volumeName, sizeBytes });
    log(`created replica of volume ${volumeName}, ${sizeBytes} bytes, in ${options.dir}`);
    return store;
  }
  const store = await openReplicaStore(common);
  if (options.volume !== undefined && options.volume !== store.volumeName) {
    await store.close();
    fail(`${options.dir} holds a replica of volume ${store.volumeName}, not ${options.volume}`);
  }
  log(`opened replica of volume ${store.volumeName}, ${store.sizeBytes()} bytes, in ${options.dir}`);
  return store;
}

async function runReplica(options: ReplicaCommandOptions): Promise<void> {
  const log = (message: string): void => {
    process.stdout.write(`shorthorn replica: ${message}\n`);
  };
  manageDataProcessMemory(log);
  const listen = parseListen(options.listen);
  if (typeof listen === 'string') fail(listen);
  const store = await openOrCreate(options, log);
  // The directory's identity, reported to engines (format/replica-identity.ts). Through the plain
  // files, not the fault-injecting ones: it is not replica data, and faults counted by call
  // ("after N") keep their meaning.
  const identity = await loadOrCreateInstanceId({ files: new NodeReplicaFiles(), dir: options.dir }, () => randomBytes(16).toString('hex'));
  log(`instance id ${identity.instanceId}${identity.created ? ' (new)' : ''}`);
  const server = new ReplicaServer({ store, log, instanceId: identity.instanceId });
  const tcp = await server.listenTcp(listen.host, listen.port);
  if (options.unix !== undefined) await server.listenUnix(options.unix);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: finishing requests, flushing`);
    server
      .close()
      .then(() => store.flush())
      .then(() => store.close())
      .then(
        () => {
          log('stopped cleanly');
          process.exit(0);
        },
        (error: unknown) => {
          process.stderr.write(`shorthorn replica: shutdown failed: ${toError(error).stack ?? String(error)}\n`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const where = tcp.host.includes(':') ? `[${tcp.host}]:${tcp.port}` : `${tcp.host}:${tcp.port}`;
  log(`volume ${store.volumeName} listening on ${where}${options.unix === undefined ? '' : ` and unix ${options.unix}`}`);
}

export function registerReplicaCommand(program: Command): void {
  program
    .command('replica')
    .description('run a replica daemon: a chain of sparse layer files in DIR, served over the replica protocol')
    .requiredOption('--dir <dir>', 'replica directory (created, with the replica, when empty or missing)')
    .option('--size <bytes>', 'volume size when creating (bytes, or with Ki/Mi/Gi/Ti)')
    .option('--listen <host:port>', 'TCP address; port 0 picks a free one', '127.0.0.1:0')
    .option('--unix <path>', 'also listen on this unix socket')
    .option('--volume <name>', 'volume name (when creating; checked when opening)')
    // Longhorn's snapshot-data-integrity 'enabled' (hash every snapshot in the background); 0 is
    // its 'disabled' (sums are then computed only when a rebuild or scrub asks). docs/engine.md.
    .option('--checksum-rate-mib <n>', 'hash sealed snapshots in the background at most this many MiB/s (0: off)', '32')
    .option('--fault-config <file>', `tests only (needs ${faultInjectionEnvVar}=1): inject disk faults as this JSON file says (docs/reliability.md)`)
    // Node's file I/O runs on libuv's pool (4 threads by default) and a replica is mostly file
    // I/O: whoever starts the daemon should set UV_THREADPOOL_SIZE (it is read before we run).
    .action(async (options: ReplicaCommandOptions) => {
      await runReplica(options);
    });
}
