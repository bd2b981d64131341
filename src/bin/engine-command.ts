// `shorthorn engine`: one volume's engine. Connects to its replicas, keeps only those of the
// highest generation, fences older engines with a new epoch, serves the volume over NBD (unix
// socket and/or TCP) and a small control API, and pings the replicas so a silent one leaves the
// write set. SIGTERM: stop serving, flush every replica, exit 0.
import type { Server } from 'node:http';
import type { Command } from 'commander';
import { toError } from '../lib/errors.ts';
import { blockSizeBytes, replicaCountMax, replicaRequestTimeoutMs, snapshotCountMax } from '../lib/limits.ts';
import { BackupJobs } from '../engine/backup-jobs.ts';
import { createControlServer } from '../engine/control-server.ts';
import { startEngine } from '../engine/engine-start.ts';
import type { ReplicaLink } from '../engine/replica-link.ts';
import { connectReplica } from '../engine/replica-client.ts';
import { NbdServer, type NbdEndpoint } from '../frontend/nbd-server.ts';
import { engineBackupRunner } from './engine-backup-runner.ts';
import { manageDataProcessMemory } from './memory-report.ts';
import { parseListen, parseSizeBytes } from './replica-command.ts';
import { systemClock } from './system-clock.ts';

interface EngineCommandOptions {
  readonly name: string;
  readonly size: string;
  readonly replica: string[];
  readonly nbdSocket?: string;
  readonly nbdListen?: string;
  readonly controlListen?: string;
  readonly controlSocket?: string;
  readonly minimumWriteReplicas: string;
  readonly timeoutMs: string;
  readonly pingIntervalMs: string;
  readonly readLeaseMs?: string;
  readonly salvage?: boolean;
  readonly epoch?: string;
  readonly disableFrontend?: boolean;
  readonly snapshotMaxCount: string;
  readonly snapshotMaxSize: string;
}

function fail(message: string): never {
  process.stderr.write(`shorthorn engine: ${message}\n`);
  process.exit(2);
}

function positiveInt(text: string, what: string, max: number): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1 || value > max) fail(`${what} must be an integer from 1 to ${max}, not ${text}`);
  return value;
}

/** A replica that could not be reached at start: every call fails, so start-up reports it. */
function unreachableLink(address: string, why: string): ReplicaLink {
  const refuse = (): Promise<never> => Promise.reject(new Error(`replica ${address} unreachable: ${why}`));
  return {
    address,
    read: refuse,
    write: refuse,
    writeZeroes: refuse,
    trim: refuse,
    flush: refuse,
    ping: refuse,
    acceptEpoch: refuse,
    setMembership: refuse,
    chain: refuse,
    snapshot: refuse,
    expand: refuse,
    close: () => Promise.resolve(),
  };
}

async function runEngine(options: EngineCommandOptions): Promise<void> {
  const log = (message: string): void => {
    process.stdout.write(`shorthorn engine: ${options.name}: ${message}\n`);
  };
  manageDataProcessMemory(log);
  const sizeBytes = parseSizeBytes(options.size);
  if (typeof sizeBytes === 'string') fail(sizeBytes);
  if (sizeBytes % blockSizeBytes !== 0) fail(`--size ${sizeBytes} must be a multiple of ${blockSizeBytes} bytes`);
  if (options.replica.length === 0) fail('at least one --replica is needed');
  if (options.replica.length > replicaCountMax) fail(`at most ${replicaCountMax} replicas`);
  // Maintenance mode (Longhorn's disableFrontend): no NBD listener at all, only the control API.
  // An --nbd-socket given with it is not opened (the node agent passes it: it names the engine).
  const frontendDisabled = options.disableFrontend === true;
  if (frontendDisabled && options.nbdListen !== undefined) fail('--disable-frontend serves no NBD: leave out --nbd-listen');
  if (!frontendDisabled && options.nbdSocket === undefined && options.nbdListen === undefined) fail('give --nbd-socket PATH or --nbd-listen HOST:PORT (or --disable-frontend)');
  const timeoutMs = positiveInt(options.timeoutMs, '--timeout-ms', 600_000);
  const pingIntervalMs = positiveInt(options.pingIntervalMs, '--ping-interval-ms', 600_000);
  // Every engine of a volume must use the same lease (a new one waits out the old one's): the
  // default follows the ping interval and timeout, which the agent leaves at their defaults.
  const readLeaseMs = options.readLeaseMs === undefined ? pingIntervalMs + timeoutMs : positiveInt(options.readLeaseMs, '--read-lease-ms', 3_600_000);
  const minimumWriteReplicas = positiveInt(options.minimumWriteReplicas, '--minimum-write-replicas', replicaCountMax);
  // The epoch the manager assigned (Engine spec.epoch); without it, one above what the replicas saw.
  const epoch = options.epoch === undefined ? undefined : positiveInt(options.epoch, '--epoch', Number.MAX_SAFE_INTEGER);
  const connect = (address: string): Promise<ReplicaLink> =>
    connectReplica(address, { volumeName: options.name, timeoutMs });
  const links = await Promise.all(
    options.replica.map((address) => connect(address).catch((error: unknown) => unreachableLink(address, toError(error).message))),
  );
  const started = await startEngine({
    volumeName: options.name, sizeBytes, links, clock: systemClock, log, minimumWriteReplicas, ...(epoch === undefined ? {} : { epoch }),
    ...(options.salvage === true ? { salvage: true } : {}),
    readLease: { ms: readLeaseMs, sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
  });
  if (started.possiblyLost.length > 0) log(`salvage: writes acknowledged only by ${started.possiblyLost.join(', ')} may be lost`);
  const engine = started.engine;

  const backups = new BackupJobs({ engine, runner: engineBackupRunner, clock: systemClock, log });
  const nbd = new NbdServer(engine, {
    refuseReason: () => backups.refuseClients(),
    exportName: options.name,
    description: `Shorthorn volume ${options.name}`,
    log: (level, message) => log(`nbd ${level}: ${message}`),
  });
  const endpoints: NbdEndpoint[] = [];
  if (options.nbdSocket !== undefined && !frontendDisabled) endpoints.push(await nbd.listen({ kind: 'unix', path: options.nbdSocket }));
  if (options.nbdListen !== undefined) {
    const listen = parseListen(options.nbdListen);
    if (typeof listen === 'string') fail(listen);
    endpoints.push(await nbd.listen({ kind: 'tcp', ...listen }));
  }

  const snapshotLimits = {
    maxCount: options.snapshotMaxCount === '0' ? 0 : positiveInt(options.snapshotMaxCount, '--snapshot-max-count', snapshotCountMax),
    maxSizeBytes: options.snapshotMaxSize === '0' ? 0 : positiveInt(options.snapshotMaxSize, '--snapshot-max-size', Number.MAX_SAFE_INTEGER),
  };
  const control = createControlServer({ engine, connect, log, clock: systemClock, clientCount: () => nbd.connectionCount, backups, snapshotLimits });
  const controlWhere = await listenControl(control, options);

  const pinger = setInterval(() => {
    void engine.pingAll();
  }, pingIntervalMs);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    clearInterval(pinger);
    log(`${signal}: stopping`);
    control.close();
    nbd
      .close()
      .then(() => engine.flush())
      .then(() => engine.close())
      .then(
        () => {
          log('stopped cleanly');
          process.exit(0);
        },
        (error: unknown) => {
          process.stderr.write(`shorthorn engine: shutdown failed: ${toError(error).message}\n`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (frontendDisabled) {
    log(`frontend disabled (maintenance mode): no NBD listener${options.nbdSocket === undefined ? '' : ` (${options.nbdSocket} not opened)`}, the volume is not exposed; control on ${controlWhere}`);
    return;
  }
  const where = endpoints.map((e) => (e.kind === 'unix' ? `unix ${e.path}` : `tcp ${e.host}:${e.port}`)).join(' and ');
  log(`serving NBD on ${where}; control on ${controlWhere}`);
}

async function listenControl(control: Server, options: EngineCommandOptions): Promise<string> {
  if (options.controlSocket !== undefined) {
    const path = options.controlSocket;
    await new Promise<void>((resolve, reject) => {
      control.once('error', reject);
      control.listen(path, resolve);
    });
    return `unix ${path}`;
  }
  const listen = parseListen(options.controlListen ?? '127.0.0.1:0');
  if (typeof listen === 'string') fail(listen);
  await new Promise<void>((resolve, reject) => {
    control.once('error', reject);
    control.listen(listen.port, listen.host, resolve);
  });
  const address = control.address();
  return address !== null && typeof address === 'object' ? `${address.address}:${address.port}` : String(address);
}

export function registerEngineCommand(program: Command): void {
  program
    .command('engine')
    .description("run a volume's engine: replicate every write to its replicas and serve the volume over NBD")
    .requiredOption('--name <volume>', 'volume name (replicas refuse requests for another volume)')
    .requiredOption('--size <bytes>', 'volume size (bytes, or with Ki/Mi/Gi/Ti)')
    .option('--replica <address>', 'replica address host:port or socket path (repeat)', (v: string, all: string[]) => [...all, v], [])
    .option('--nbd-socket <path>', 'serve NBD on this unix socket')
    .option('--nbd-listen <host:port>', 'serve NBD on this TCP address')
    .option('--control-listen <host:port>', 'control API address (default 127.0.0.1:0)')
    .option('--control-socket <path>', 'control API on a unix socket instead')
    .option('--minimum-write-replicas <n>', 'fail writes rather than acknowledge them on fewer rw replicas', '1')
    .option('--timeout-ms <ms>', 'per-request timeout to replicas', String(replicaRequestTimeoutMs))
    .option('--ping-interval-ms <ms>', 'how often every replica is pinged', '2000')
    .option('--read-lease-ms <ms>', 'with --minimum-write-replicas above 1: serve a read only if that many rw replicas answered within this long; a start by quorum waits this long before serving (default: ping interval + timeout; use one value for every engine of a volume)')
    .option('--salvage', 'every replica failed: start from the newest reachable members even if some are missing (their last writes may be lost)')
    .option('--disable-frontend', 'maintenance mode: open no NBD listener (an --nbd-socket is not opened); serve only the control API (restore, backup, snapshots, rebuild)')
    .option('--epoch <n>', 'fencing epoch assigned by the manager; refuses to start if a replica has seen a higher one (default: one above the highest seen)')
    // Longhorn's volume snapshotMaxCount / snapshotMaxSize, checked on snapshot requests to the control API.
    .option('--snapshot-max-count <n>', `refuse a snapshot that would make more than n snapshots not marked removed (0: only the replica limit, ${snapshotCountMax})`, '0')
    .option('--snapshot-max-size <bytes>', 'refuse a snapshot once all snapshots would hold more than this many bytes of data (0: no limit)', '0')
    .action(async (options: EngineCommandOptions) => {
      await runEngine(options);
    });
}
