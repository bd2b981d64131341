// The node agent as a process, with the embedded store and real replica daemons: Replica resources
// assigned to the node start processes whose status shows their address and pid; a replica killed
// with SIGKILL is restarted on the same port; the agent killed with SIGKILL and started again
// adopts the running processes (no duplicates, same pids) and restarts one that died meanwhile;
// a stopped replica stops; a deleted replica's data is removed; a stray replica directory is
// reported as an orphan and left alone.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { replicaDataFinalizer } from '../../src/agent/node-agent.ts';
import { processTableFileName } from '../../src/agent/process-table.ts';
import type { Node } from '../../src/control/resources/node.ts';
import { apiVersion } from '../../src/control/resources/object-meta.ts';
import type { Replica } from '../../src/control/resources/replica.ts';
import { validateResource } from '../../src/control/resources/validate-resource.ts';
import { SqliteStore } from '../../src/control/store/sqlite-store.ts';
import { startDaemon, stopAll, waitFor, withTempDir, type Daemon } from '../harness/daemon.ts';
import { portBlock } from '../harness/port-block.ts';

after(stopAll);

const nodeName = 'node-a';
const sizeBytes = 16 * 1024 * 1024;

function replicaResource(name: string, diskPath: string): Replica {
  return {
    apiVersion,
    kind: 'Replica',
    metadata: { name, finalizers: [replicaDataFinalizer] },
    spec: {
      volumeName: 'vol-a', volumeSize: sizeBytes, nodeID: nodeName, desireState: 'running',
      diskPath, diskID: 'unused', dataDirectoryName: `${name}-0000abcd`, active: true, rebuildRetryCount: 0, evictionRequested: false,
    },
  };
}

/** Every live process on this host whose command line runs `replica --dir DIR`. */
async function replicaPidsFor(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0');
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const i = argv.indexOf('--dir');
      if (argv.includes('replica') && i >= 0 && argv[i + 1] === dir) pids.push(Number(entry));
    } catch {
      // The process ended while we looked: not a candidate.
    }
  }
  return pids;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Running, not a zombie: processes orphaned by the killed agent may wait for a reaper here. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

test('node agent: runs, restarts, adopts and cleans up replica processes; reports orphans', async () => {
  await withTempDir('node-agent', async (dir) => {
    const storeDir = join(dir, 'store');
    const dataDir = join(dir, 'agent');
    const diskPath = join(dir, 'disk1');
    const store = new SqliteStore({ dataDir: storeDir, pollIntervalMs: 10 });
    // Ports from a block this test process holds (test/harness/port-block.ts), so files running
    // at the same time never share one; below Linux's ephemeral range (32768+).
    const firstPort = (await portBlock()).first;
    const agentArgs = [
      'node', '--name', nodeName, '--data', dataDir, '--store', `embedded:${storeDir}`,
      '--disk', `${diskPath}:ssd`, '--port-range', `${firstPort}-${firstPort + 49}`,
      '--sync-interval-ms', '100', '--restart-backoff-ms', '100',
    ];
    const startAgent = (): Promise<Daemon> => startDaemon({ args: agentArgs, readyPattern: /node agent running/ });
    const started: number[] = [];
    try {
      await mkdir(join(diskPath, 'replicas', 'stray-0000beef'), { recursive: true });
      await writeFile(join(diskPath, 'replicas', 'stray-0000beef', 'volume-head.img'), 'precious');
      let agent = await startAgent();

      const node = (await store.get('Node', nodeName)) as Node;
      const [diskName, disk] = Object.entries(node.spec.disks)[0]!;
      assert.equal(disk.path, diskPath);
      assert.deepEqual(disk.tags, ['ssd']);
      const nodeStatus = await waitFor('node status with the orphan', async () => {
        const n = (await store.get('Node', nodeName)) as Node;
        return n.status?.diskStatus?.[diskName]?.orphanedReplicaDirectories !== undefined ? n : undefined;
      });
      assert.ok(validateResource('Node', nodeStatus).ok, 'the node the agent wrote is a valid Node');
      const diskStatus = nodeStatus.status!.diskStatus![diskName]!;
      assert.deepEqual(diskStatus.orphanedReplicaDirectories, ['stray-0000beef']);
      assert.ok(diskStatus.storageMaximum > 0 && diskStatus.storageAvailable > 0);
      assert.equal(nodeStatus.status!.conditions!.find((c) => c.type === 'Ready')?.status, 'True');

      for (const name of ['r1', 'r2']) await store.create(replicaResource(name, diskPath));
      const running = async (name: string, notPid?: number): Promise<Replica | undefined> => {
        const r = (await store.get('Replica', name)) as Replica;
        const s = r.status;
        return s?.currentState === 'running' && s.pid !== undefined && s.pid !== notPid ? r : undefined;
      };
      const r1 = await waitFor('r1 running', () => running('r1'));
      const r2 = await waitFor('r2 running', () => running('r2'));
      started.push(r1.status!.pid!, r2.status!.pid!);
      assert.ok(validateResource('Replica', r1).ok, 'the status the agent wrote is valid');
      assert.equal(r1.status!.ip, '127.0.0.1');
      assert.ok(await accepts(r1.status!.port!), 'r1 serves on the port in its status');
      assert.notEqual(r1.status!.port, r2.status!.port);
      const r1Dir = join(diskPath, 'replicas', 'r1-0000abcd');
      assert.ok(existsSync(join(r1Dir, 'replica.meta')), 'r1 was created in <disk>/replicas/<dataDirectoryName>');
      // The node now counts both replicas and still reports only the stray directory.
      await waitFor('scheduled bytes counted', async () => {
        const n = (await store.get('Node', nodeName)) as Node;
        const d = n.status?.diskStatus?.[diskName];
        return d?.storageScheduled === 2 * sizeBytes && d.orphanedReplicaDirectories?.length === 1 ? true : undefined;
      });

      // kill -9 a replica: restarted, same port (the engine knows it by its address).
      process.kill(r1.status!.pid!, 'SIGKILL');
      const r1b = await waitFor('r1 restarted', () => running('r1', r1.status!.pid));
      started.push(r1b.status!.pid!);
      assert.equal(r1b.status!.port, r1.status!.port);
      assert.ok(await accepts(r1b.status!.port!));

      // kill -9 the agent; its processes keep running. Kill r2 while the agent is down.
      await agent.kill9();
      assert.ok(alive(r1b.status!.pid!) && alive(r2.status!.pid!), 'replicas outlive the agent');
      process.kill(r2.status!.pid!, 'SIGKILL');
      await waitFor('r2 gone', () => (alive(r2.status!.pid!) ? undefined : true));
      const table = JSON.parse(await readFile(join(dataDir, processTableFileName), 'utf8')) as { entries: { name: string; pid?: number }[] };
      assert.equal(table.entries.find((e) => e.name === 'r1')?.pid, r1b.status!.pid, 'the table on disk names the running pid');
      agent = await startAgent();
      assert.match(agent.output(), new RegExp(`adopted replica r1 pid ${r1b.status!.pid}`));
      assert.match(agent.output(), /replica r2 pid \d+ ended while the agent was down/);
      const r2b = await waitFor('r2 restarted by the new agent', () => running('r2', r2.status!.pid));
      started.push(r2b.status!.pid!);
      assert.deepEqual(await replicaPidsFor(r1Dir), [r1b.status!.pid], 'r1 adopted, not started twice');
      assert.deepEqual(await replicaPidsFor(join(diskPath, 'replicas', 'r2-0000abcd')), [r2b.status!.pid]);
      assert.equal(((await store.get('Replica', 'r1')) as Replica).status?.pid, r1b.status!.pid);

      // desireState stopped: the process ends, the status says stopped.
      const r2now = (await store.get('Replica', 'r2')) as Replica;
      await store.update({ ...r2now, spec: { ...r2now.spec, desireState: 'stopped' } });
      await waitFor('r2 stopped', async () => {
        const r = (await store.get('Replica', 'r2')) as Replica;
        return r.status?.currentState === 'stopped' && r.status.pid === undefined && !alive(r2b.status!.pid!) ? true : undefined;
      });

      // Delete r1: the process stops, its data goes, the finalizer is removed, the object is gone.
      await store.delete('Replica', 'r1');
      await waitFor('r1 deleted with its data', async () => {
        try {
          await store.get('Replica', 'r1');
          return undefined;
        } catch {
          return existsSync(r1Dir) ? undefined : true;
        }
      });
      assert.ok(!alive(r1b.status!.pid!), 'the deleted replica process ended');
      assert.equal(await readFile(join(diskPath, 'replicas', 'stray-0000beef', 'volume-head.img'), 'utf8'), 'precious', 'the orphan is untouched');
      await agent.stop();
    } finally {
      for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
      await store.close();
    }
  });
});
