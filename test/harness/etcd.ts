// Starts Debian's `etcd` on 127.0.0.1 with free ports and a temp data dir, for tests and benchmarks,
// and stops it by PID. Fast elections (10 ms heartbeat) also bring etcd's minimum lease TTL down
// to one second, so lease-expiry tests stay short.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.ts';

export interface EtcdServer {
  readonly endpoint: string;
  readonly pid: number;
  readonly dataDir: string;
  /** SIGTERM, then SIGKILL after a deadline; removes the data dir unless `keepData`. */
  stop(options?: { keepData?: boolean }): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await response.json()) as { health?: string };
    return body.health === 'true';
  } catch (error) {
    // Not listening yet (connection refused) or not ready: the caller polls until its deadline.
    if (error instanceof Error) return false;
    throw error;
  }
}

/** Start etcd; `dataDir` reuses a directory (restart after stop({ keepData: true })). */
export async function startEtcd(options: { dataDir?: string; startTimeoutMs?: number } = {}): Promise<EtcdServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'shorthorn-etcd-'));
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const endpoint = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const logPath = join(dataDir, `etcd-${clientPort}.log`);
    const log = openSync(logPath, 'a');
    const child = spawn('etcd', [
      '--name', 'shorthorn-test',
      '--data-dir', join(dataDir, 'data'),
      '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `shorthorn-test=${peer}`,
      '--heartbeat-interval', '10', '--election-timeout', '100',
    ], { stdio: ['ignore', log, log] });
    closeSync(log);
    const pid = child.pid;
    if (pid === undefined) throw new Error('etcd did not start: is etcd-server installed?');
    const deadline = performance.now() + (options.startTimeoutMs ?? 20_000);
    while (performance.now() < deadline && child.exitCode === null) {
      if (await healthy(endpoint)) {
        return {
          endpoint,
          pid,
          dataDir,
          async stop(stopOptions = {}) {
            if (child.exitCode === null && child.signalCode === null) {
              process.kill(pid, 'SIGTERM');
              const timer = setTimeout(() => process.kill(pid, 'SIGKILL'), 5000);
              await exited(child);
              clearTimeout(timer);
            }
            if (stopOptions.keepData !== true) rmSync(dataDir, { recursive: true, force: true });
          },
        };
      }
      await new Promise((resolve) => setTimeout(resolve, 50)); // poll interval of the health check
    }
    if (child.exitCode === null) process.kill(pid, 'SIGKILL');
    await exited(child);
    lastError = readFileSync(logPath, 'utf8').split('\n').slice(-5).join('\n');
    if (!lastError.includes('address already in use')) break;
  }
  rmSync(dataDir, { recursive: true, force: true });
  throw new Error(`etcd did not become healthy:\n${lastError}`);
}
