// `shorthorn up`: a whole cluster on this host with the embedded store: one manager, one node
// agent per local node (node-1 … node-N, each with its own data directory and disk) and the REST
// API, as child processes of this one. Their output is relayed with a prefix; a daemon that dies
// is started again after a second. SIGTERM/SIGINT stop the daemons (the engines and replicas the
// agents run keep running, as with `shorthorn node`; a later `up` on the same data adopts them).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';

interface UpOptions {
  readonly data: string;
  readonly nodes: string;
  readonly port: string;
  readonly host: string;
}

interface Supervised {
  readonly name: string;
  readonly args: readonly string[];
  readonly readyPattern: RegExp;
  child: ChildProcess | undefined;
  ready: boolean;
}

const nodesMax = 16;
const restartDelayMs = 1000;

function fail(message: string): never {
  process.stderr.write(`shorthorn up: ${message}\n`);
  process.exit(2);
}

export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('start a whole Shorthorn cluster on this host (embedded store, local nodes, manager, API)')
    .option('--data <dir>', 'data directory', './shorthorn-data')
    .option('--nodes <n>', 'number of local nodes', '1')
    .option('--port <port>', 'API port (0: any free port)', '9500')
    .option('--host <address>', 'API address', '127.0.0.1')
    .action((options: UpOptions) => {
      runUp(options);
    });
}

function runUp(options: UpOptions): void {
  const nodes = Number(options.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > nodesMax) fail(`--nodes must be 1 to ${nodesMax}, not ${options.nodes}`);
  const dataDir = resolve(options.data);
  const storeDir = join(dataDir, 'store');
  mkdirSync(storeDir, { recursive: true });
  const store = `embedded:${storeDir}`;
  const script = process.argv[1];
  if (script === undefined) fail('cannot tell which script runs shorthorn');
  const daemons: Supervised[] = [
    { name: 'manager', args: ['manager', '--store', store, '--id', 'node-1'], readyPattern: /manager running/, child: undefined, ready: false },
  ];
  for (let i = 1; i <= nodes; i++) {
    const name = `node-${i}`;
    // Port ranges per node, so the agents of one host never offer each other's ports.
    const first = 10000 + (i - 1) * 1000;
    daemons.push({
      name,
      args: ['node', '--name', name, '--data', join(dataDir, name), '--store', store, '--port-range', `${first}-${first + 999}`],
      readyPattern: /node agent running/,
      child: undefined,
      ready: false,
    });
  }
  daemons.push({
    name: 'api',
    args: ['api', '--store', store, '--host', options.host, '--port', options.port],
    readyPattern: /listening on (\S+)/,
    child: undefined,
    ready: false,
  });
  let stopping = false;
  const start = (daemon: Supervised): void => {
    const child = spawn(process.execPath, [...process.execArgv, script, ...daemon.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    daemon.child = child;
    const relay = (stream: NodeJS.WritableStream) => (chunk: Buffer): void => {
      const text = chunk.toString();
      stream.write(text.split('\n').filter((l) => l !== '').map((l) => `[${daemon.name}] ${l}\n`).join(''));
      if (!daemon.ready && daemon.readyPattern.test(text)) {
        daemon.ready = true;
        if (daemons.every((d) => d.ready)) {
          process.stdout.write(`shorthorn up: ${nodes} node(s), manager and API running; data in ${dataDir}\n`);
        }
      }
    };
    child.stdout.on('data', relay(process.stdout));
    child.stderr.on('data', relay(process.stderr));
    child.once('exit', (code, signal) => {
      daemon.child = undefined;
      daemon.ready = false;
      if (stopping) return;
      process.stderr.write(`shorthorn up: ${daemon.name} exited (${signal ?? `code ${code ?? '?'}`}); starting it again in ${restartDelayMs} ms\n`);
      setTimeout(() => {
        if (!stopping) start(daemon);
      }, restartDelayMs);
    });
  };
  for (const daemon of daemons) start(daemon);
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`shorthorn up: ${signal}: stopping the daemons\n`);
    const running = daemons.flatMap((d) => (d.child === undefined ? [] : [d.child]));
    let left = running.length;
    if (left === 0) process.exit(0);
    for (const child of running) {
      child.once('exit', () => {
        left--;
        if (left === 0) process.exit(0);
      });
      child.kill('SIGTERM');
    }
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
