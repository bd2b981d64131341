// The node agent reports a replica running only once its own process listens on the replica's
// port. A program that took the port after the agent's free-port check (CI session 5: another
// agent's replica) answers connections there; the agent used to take that answer for readiness and
// published a process that was about to die with EADDRINUSE as running at an address someone else
// served. Real agent (in this process) and store; the daemon is a stand-in started through the
// agent's launcher, which listens on its --listen port only for volume "serving".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiVersion } from '../control/resources/object-meta.ts';
import type { Replica } from '../control/resources/replica.ts';
import { realTimers, systemClock } from '../control/runtime/timers.ts';
import { SqliteStore } from '../control/store/sqlite-store.ts';
import { NodeAgent, replicaDataFinalizer } from './node-agent.ts';

const nodeName = 'node-r';

/** Stands in for `shorthorn replica`: listens on --listen when --volume is "serving", else only waits. */
const standIn = `
  const argv = process.argv;
  const at = (flag) => argv[argv.indexOf(flag) + 1];
  if (at('--volume') === 'serving') {
    const [host, port] = at('--listen').split(':');
    require('node:net').createServer().listen(Number(port), host);
  }
  setInterval(() => {}, 1000);`;

function replica(name: string, volumeName: string, diskPath: string): Replica {
  return {
    apiVersion,
    kind: 'Replica',
    metadata: { name, finalizers: [replicaDataFinalizer] },
    spec: {
      volumeName, volumeSize: 1024 * 1024, nodeID: nodeName, desireState: 'running',
      diskPath, diskID: 'unused', dataDirectoryName: `${name}-0000abcd`, active: true, rebuildRetryCount: 0, evictionRequested: false,
    },
  };
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The stand-ins run detached (the agent's way): stop them by pid. */
function killIfThere(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

test('a replica whose port another program holds is not reported running; one that listens is', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shorthorn-agent-ready-'));
  const store = new SqliteStore({ dataDir: join(dir, 'store'), pollIntervalMs: 10 });
  const diskPath = join(dir, 'disk');
  const first = await freePort();
  const agent = new NodeAgent({
    store, nodeName, dataDir: join(dir, 'agent'), disks: [{ path: diskPath, tags: [] }],
    launcher: [process.execPath, '-e', standIn],
    // Ports the agent finds taken (outgoing connections) it skips by itself.
    portRange: { first, last: first + 19 },
    clock: systemClock, timers: realTimers, log: () => undefined,
    syncIntervalMs: 50, restartBackoff: { baseMs: 100, maxMs: 1000 },
  });
  let thief: Server | undefined;
  let started = false;
  try {
    await mkdir(diskPath, { recursive: true });
    await agent.start();
    started = true;
    const status = async (name: string) => ((await store.get('Replica', name)) as Replica).status;

    await store.create(replica('quiet', 'quiet', diskPath));
    const { port } = await waitFor('quiet started', async () => {
      const s = await status('quiet');
      return s?.pid !== undefined && s.port !== undefined ? { pid: s.pid, port: s.port } : undefined;
    });
    // Another program takes the port after the spawn, before the daemon would bind it.
    const server = createServer().listen(port, '127.0.0.1');
    thief = server;
    await once(server, 'listening');
    const passes = agent.stats.passes;
    await waitFor('five more passes of the agent', () => Promise.resolve(agent.stats.passes >= passes + 5 ? true : undefined));
    assert.equal((await status('quiet'))?.currentState, 'starting', 'a port someone else listens on is no readiness');

    await store.create(replica('serving', 'serving', diskPath));
    const serving = await waitFor('serving running', async () => {
      const s = await status('serving');
      return s?.currentState === 'running' ? s : undefined;
    });
    assert.notEqual(serving.port, port);
    assert.equal((await status('quiet'))?.currentState, 'starting');
  } finally {
    const pids = [...agent.processes().values()].flatMap((p) => (p.pid === undefined ? [] : [p.pid]));
    if (started) await agent.stop();
    for (const pid of pids) killIfThere(pid);
    thief?.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
