// A whole control plane on one host for end-to-end tests: the embedded store, one `shorthorn node`
// agent per node (own data dir, own disk, own port range) and one `shorthorn manager`, all real
// processes, plus the helpers the tests share (store reads with retry on conflict, cleanup of the
// engine and replica processes the agents started).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { processTableFileName } from '../../src/agent/process-table.ts';
import { EtcdStore } from '../../src/control/store/etcd-store.ts';
import { isStoreError, type ResourceStore } from '../../src/control/store/resource-store.ts';
import type { Resource } from '../../src/control/resources/object-meta.ts';
import { SqliteStore } from '../../src/control/store/sqlite-store.ts';
import { startDaemon, waitFor, type Daemon } from './daemon.ts';
import { portBlock } from './port-block.ts';

export interface LocalCluster {
  readonly store: ResourceStore;
  readonly agents: Map<string, Daemon>;
  readonly manager: Daemon;
  /** Start (again) the agent of one node, with the same arguments. */
  startAgent(node: string): Promise<Daemon>;
  /** Kill every engine and replica process the agents started (by the pids in their tables). */
  killInstances(): void;
  /** Every daemon's output and the instance logs, for a failing test's report. */
  dump(): string;
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

export async function startLocalCluster(options: {
  dir: string;
  nodes: readonly string[];
  leaseTtlMs?: number;
  /** An etcd endpoint (http://127.0.0.1:PORT) instead of the embedded store. */
  etcdEndpoint?: string;
  /** More `shorthorn node` arguments for every agent (e.g. --rebuild-bandwidth). */
  agentArgs?: readonly string[];
}): Promise<LocalCluster> {
  // Ports from a block this process holds (port-block.ts), so test files running in parallel never
  // share a range; 20 per node. The agent skips ports it finds taken anyway.
  const block = await portBlock();
  if (options.nodes.length * 20 > block.size) throw new Error(`${options.nodes.length} nodes need more than the ${block.size} ports of a test port block`);
  const firstPort = block.first;
  const storeDir = join(options.dir, 'store');
  const store: ResourceStore = options.etcdEndpoint === undefined
    ? new SqliteStore({ dataDir: storeDir, pollIntervalMs: 10 })
    : new EtcdStore({ endpoints: [options.etcdEndpoint] });
  const storeArg = options.etcdEndpoint === undefined ? `embedded:${storeDir}` : `etcd:${options.etcdEndpoint}`;
  const agents = new Map<string, Daemon>();
  const startAgent = async (node: string): Promise<Daemon> => {
    const i = options.nodes.indexOf(node);
    const disk = join(options.dir, `${node}-disk`);
    await mkdir(disk, { recursive: true });
    const agent = await startDaemon({
      args: [
        'node', '--name', node, '--data', join(options.dir, node), '--store', storeArg,
        '--disk', disk, '--port-range', `${firstPort + i * 20}-${firstPort + i * 20 + 19}`,
        '--sync-interval-ms', '200', '--restart-backoff-ms', '200', '--lease-ttl-ms', String(options.leaseTtlMs ?? 15_000),
        ...(options.agentArgs ?? []),
      ],
      readyPattern: /node agent running/,
      // Node takes over 10 s just to load on a machine shared by many test runs.
      timeoutMs: 60_000,
    });
    agents.set(node, agent);
    return agent;
  };
  for (const node of options.nodes) await startAgent(node);
  const manager = await startDaemon({ args: ['manager', '--store', storeArg, '--id', 'mgr-1'], readyPattern: /manager running/, timeoutMs: 60_000 });
  return {
    store,
    agents,
    manager,
    startAgent,
    dump: () => {
      const parts = [`--- manager\n${manager.output()}`];
      for (const [node, agent] of agents) parts.push(`--- agent ${node}\n${agent.output()}`);
      for (const node of options.nodes) {
        const logs = join(options.dir, node, 'logs');
        if (!existsSync(logs)) continue;
        for (const file of readdirSync(logs)) parts.push(`--- ${node} ${file}\n${readFileSync(join(logs, file), 'utf8').slice(-4000)}`);
      }
      return parts.join('\n');
    },
    killInstances: () => {
      for (const node of options.nodes) {
        const path = join(options.dir, node, processTableFileName);
        if (!existsSync(path)) continue;
        const table = JSON.parse(readFileSync(path, 'utf8')) as { entries: { pid?: number }[] };
        for (const { pid } of table.entries) {
          // Only processes still running from this test's directory: never a recycled pid.
          if (pid === undefined || !isAlive(pid)) continue;
          if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(options.dir)) process.kill(pid, 'SIGKILL');
        }
      }
    },
  };
}

/** Read, change and write an object's spec, again on conflict (controllers write it too). */
export async function updateWithRetry<T extends Resource>(store: ResourceStore, kind: string, name: string, change: (object: T) => T): Promise<void> {
  await waitFor(`${kind} ${name} updated`, async () => {
    const object = (await store.get(kind, name)) as T;
    try {
      await store.update(change(object));
      return true;
    } catch (error) {
      if (isStoreError(error, 'conflict')) return undefined;
      throw error;
    }
  });
}
