// `shorthorn up`: a whole cluster on this host with the embedded store: one manager, one node
// agent per local node (node-1 … node-N, each with its own data directory and disk) and the REST
// API, as child processes of this one. Their output is relayed with a prefix; a daemon that dies
// is started again after a second. SIGTERM/SIGINT stop the daemons (the engines and replicas the
// agents run keep running, as with `shorthorn node`; a later `up` on the same data adopts them).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';

interface UpOptions {
  readonly data: string;
  readonly nodes: string;
  readonly port: string;
  readonly host: string;
  readonly background?: boolean;
}

/** Where the API should listen when SHORTHORN_API names it (the CLI connects there too). */
function apiFromEnv(): { host: string; port: string } | undefined {
  const text = process.env['SHORTHORN_API'];
  if (text === undefined || text === '') return undefined;
  try {
    const url = new URL(text);
    return { host: url.hostname, port: url.port === '' ? '80' : url.port };
  } catch {
    // Not a URL: the defaults stand, and the CLI will say it cannot reach it.
    return undefined;
  }
}

/** How long `up --background` waits for the cluster to come up before it gives up. */
const backgroundReadyTimeoutMs = 120_000;

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
    .option('--data <dir>', 'data directory (env SHORTHORN_DATA)', process.env['SHORTHORN_DATA'] ?? './shorthorn-data')
    .option('--nodes <n>', 'number of local nodes', '1')
    .option('--port <port>', 'API port (0: any free port; default from env SHORTHORN_API)', apiFromEnv()?.port ?? '9500')
    .option('--host <address>', 'API address (default from env SHORTHORN_API)', apiFromEnv()?.host ?? '127.0.0.1')
    .option('--background', 'run in the background: wait until the cluster is up, print where it is, return (log in DATA/up.log, pid in DATA/up.pid)')
    .action(async (options: UpOptions) => {
      if (options.background === true) await runInBackground(options);
      else runUp(options);
    });
}

/** The pid in DATA/up.pid when that process still runs `up`. */
function runningUp(dataDir: string): number | undefined {
  const pidFile = join(dataDir, 'up.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes('up') ? pid : undefined;
  } catch {
    // No such process: the pid file is stale.
    return undefined;
  }
}

/** Start `up` again without --background, detached, and wait for its ready line in the log. */
async function runInBackground(options: UpOptions): Promise<void> {
  const dataDir = resolve(options.data);
  mkdirSync(dataDir, { recursive: true });
  const already = runningUp(dataDir);
  if (already !== undefined) fail(`a cluster already runs on ${dataDir} (pid ${already}); stop it with: kill ${already}`);
  const script = process.argv[1];
  if (script === undefined) fail('cannot tell which script runs shorthorn');
  const logFile = join(dataDir, 'up.log');
  const logFd = openSync(logFile, 'a');
  const started = readFileSync(logFile, 'utf8').length;
  const args = ['up', '--data', dataDir, '--nodes', options.nodes, '--port', options.port, '--host', options.host];
  const child = spawn(process.execPath, [...process.execArgv, script, ...args], { detached: true, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  let ended: string | undefined;
  child.once('exit', (code, signal) => (ended = signal ?? `exit code ${code ?? '?'}`));
  const deadline = Date.now() + backgroundReadyTimeoutMs;
  for (;;) {
    const text = readFileSync(logFile, 'utf8').slice(started);
    const ready = /shorthorn up: .* running; .*\n/.exec(text);
    if (ready !== null) {
      child.unref();
      process.stdout.write(`${ready[0]}shorthorn up: running in the background as pid ${child.pid ?? '?'}; log ${logFile}; stop it with: kill $(cat ${join(dataDir, 'up.pid')})\n`);
      return;
    }
    if (ended !== undefined) fail(`it ended (${ended}) before the cluster was up; the end of ${logFile}:\n${text.split('\n').slice(-15).join('\n')}`);
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      fail(`the cluster was not up after ${backgroundReadyTimeoutMs / 1000} s; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

}

function runUp(options: UpOptions): void {
  const nodes = Number(options.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > nodesMax) fail(`--nodes must be 1 to ${nodesMax}, not ${options.nodes}`);
  const dataDir = resolve(options.data);
  const storeDir = join(dataDir, 'store');
  mkdirSync(storeDir, { recursive: true });
  const already = runningUp(dataDir);
  if (already !== undefined && already !== process.pid) fail(`a cluster already runs on ${dataDir} (pid ${already}); stop it with: kill ${already}`);
  // The pid file lets `kill $(cat DATA/up.pid)` stop the cluster, and a second `up` refuse to start.
  writeFileSync(join(dataDir, 'up.pid'), `${process.pid}\n`);
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
    // The token goes to DATA/api-token, where the CLI looks by default (./shorthorn-data/api-token).
    args: ['api', '--store', store, '--data', dataDir, '--host', options.host, '--port', options.port],
    readyPattern: /listening on (\S+)/,
    child: undefined,
    ready: false,
  });
  let stopping = false;
  let apiUrl = `http://${options.host}:${options.port}`;
  const start = (daemon: Supervised): void => {
    const child = spawn(process.execPath, [...process.execArgv, script, ...daemon.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    daemon.child = child;
    const relay = (stream: NodeJS.WritableStream) => (chunk: Buffer): void => {
      const text = chunk.toString();
      stream.write(text.split('\n').filter((l) => l !== '').map((l) => `[${daemon.name}] ${l}\n`).join(''));
      if (!daemon.ready && daemon.readyPattern.test(text)) {
        daemon.ready = true;
        if (daemon.name === 'api') apiUrl = daemon.readyPattern.exec(text)?.[1] ?? apiUrl;
        if (daemons.every((d) => d.ready)) {
          process.stdout.write(
            `shorthorn up: ${nodes} node(s), manager and API running; data in ${dataDir}; API ${apiUrl}; token in ${join(dataDir, 'api-token')}\n`,
          );
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
    const done = (): never => {
      if (runningUp(dataDir) === process.pid) rmSync(join(dataDir, 'up.pid'), { force: true });
      process.exit(0);
    };
    let left = running.length;
    if (left === 0) done();
    for (const child of running) {
      child.once('exit', () => {
        left--;
        if (left === 0) done();
      });
      child.kill('SIGTERM');
    }
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
