// `shorthorn node`: the node agent. Registers the node and its disks, runs the engine and replica
// processes the store assigns to it (they keep running when the agent stops; a restarted agent
// adopts them), and reports their state. SIGTERM/SIGINT stop the agent only.
import { isIPv4 } from 'node:net';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { NodeAgent, type AgentDisk } from '../agent/node-agent.ts';
import { toError } from '../lib/errors.ts';
import type { StoreSpec } from '../control/store/open-store.ts';
import { openStore } from '../control/store/open-store.ts';
import { realTimers } from '../control/runtime/timers.ts';
import { systemClock } from './system-clock.ts';

interface NodeCommandOptions {
  readonly name: string;
  readonly data: string;
  readonly store: string;
  readonly disk: string[];
  readonly portRange: string;
  readonly syncIntervalMs: string;
  readonly rebuildBandwidth: string;
  readonly restartBackoffMs: string;
  readonly leaseTtlMs: string;
  readonly address: string;
}

function fail(message: string): never {
  process.stderr.write(`shorthorn node: ${message}\n`);
  process.exit(2);
}

/** `embedded:/var/lib/shorthorn` or `etcd:http://127.0.0.1:2379[,http://…]`. */
export function parseStoreSpec(text: string): StoreSpec | string {
  const colon = text.indexOf(':');
  const backend = text.slice(0, colon);
  const rest = text.slice(colon + 1);
  if (colon > 0 && backend === 'embedded' && rest.length > 0) return { backend: 'embedded', dataDir: resolve(rest) };
  if (colon > 0 && backend === 'etcd' && rest.length > 0) return { backend: 'etcd', endpoints: rest.split(',') };
  return `cannot parse --store ${JSON.stringify(text)} (want embedded:PATH or etcd:URL[,URL])`;
}

/** `PATH[:tag,tag]`. */
export function parseDisk(text: string): AgentDisk | string {
  const [path, tags] = text.split(':', 2);
  if (path === undefined || !path.startsWith('/')) return `--disk ${JSON.stringify(text)} needs an absolute path`;
  const tagList = tags === undefined || tags === '' ? [] : tags.split(',');
  if (tagList.some((t) => !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(t))) return `--disk ${JSON.stringify(text)} has a malformed tag`;
  return { path, tags: tagList };
}

function positiveInt(text: string, what: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) fail(`${what} must be a positive integer, not ${text}`);
  return value;
}

async function runNode(options: NodeCommandOptions): Promise<void> {
  const log = (message: string): void => {
    process.stdout.write(`shorthorn node: ${options.name}: ${message}\n`);
  };
  const storeSpec = parseStoreSpec(options.store);
  if (typeof storeSpec === 'string') fail(storeSpec);
  const dataDir = resolve(options.data);
  const disks = (options.disk.length === 0 ? [`${dataDir}/disk`] : options.disk).map((text) => {
    const disk = parseDisk(text);
    if (typeof disk === 'string') fail(disk);
    return disk;
  });
  const range = /^(\d+)-(\d+)$/.exec(options.portRange);
  const first = Number(range?.[1]);
  const last = Number(range?.[2]);
  if (range === null || !(first >= 1 && first <= last && last <= 65535)) fail(`--port-range ${options.portRange}: want FIRST-LAST`);
  // An IPv4 address of this host that the other hosts reach (replica and engine addresses are
  // written as ip:port; 0.0.0.0 would be no address at all to publish).
  if (!isIPv4(options.address) || options.address === '0.0.0.0') fail(`--address ${options.address}: want this host's IPv4 address, reachable from the other hosts`);
  const script = process.argv[1];
  if (script === undefined) fail('cannot tell which script runs shorthorn');
  const store = openStore(storeSpec, { clock: systemClock, timers: realTimers });
  const backoffMs = positiveInt(options.restartBackoffMs, '--restart-backoff-ms');
  const agent = new NodeAgent({
    store,
    nodeName: options.name,
    dataDir,
    disks,
    launcher: [process.execPath, ...process.execArgv, script],
    portRange: { first, last },
    clock: systemClock,
    timers: realTimers,
    log,
    syncIntervalMs: positiveInt(options.syncIntervalMs, '--sync-interval-ms'),
    rebuildBandwidthBytesPerSecond: options.rebuildBandwidth === '0' ? 0 : positiveInt(options.rebuildBandwidth, '--rebuild-bandwidth'),
    restartBackoff: { baseMs: backoffMs, maxMs: Math.max(backoffMs, 60_000) },
    leaseTtlMs: positiveInt(options.leaseTtlMs, '--lease-ttl-ms'),
    address: options.address,
  });
  await agent.start();
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping the agent; engine and replica processes keep running`);
    agent
      .stop()
      .then(() => store.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          process.stderr.write(`shorthorn node: shutdown failed: ${toError(error).stack ?? String(error)}\n`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  log('node agent running');
}

export function registerNodeCommand(program: Command): void {
  program
    .command('node')
    .description('run the node agent: register this node and its disks, run the engines and replicas assigned to it')
    .requiredOption('--name <node>', 'node name')
    .requiredOption('--data <dir>', "the agent's directory: process table, logs, NBD sockets")
    .requiredOption('--store <spec>', 'embedded:PATH or etcd:URL[,URL]')
    .option('--disk <path[:tags]>', 'a disk directory, with optional tags (repeat); default DATA/disk', (v: string, all: string[]) => [...all, v], [])
    .option('--port-range <first-last>', 'ports for engine and replica processes', '10000-30000')
    .option('--sync-interval-ms <ms>', 'how often processes are checked and status reported', '1000')
    .option('--rebuild-bandwidth <bytes-per-second>', 'how fast the engines on this node copy data into a rebuilding replica (0: no limit)', '0')
    .option('--restart-backoff-ms <ms>', 'first restart delay after a crash (doubles per crash, up to 60 s)', '1000')
    .option('--lease-ttl-ms <ms>', 'node lease time to live: the node is marked not ready this long after the agent stops', '15000')
    .option('--address <ipv4>', "this host's address that other hosts reach: replicas and engine control APIs listen and are published there", '127.0.0.1')
    .action(async (options: NodeCommandOptions) => {
      await runNode(options);
    });
}
