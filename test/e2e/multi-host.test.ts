// Several hosts (issue #6): four network namespaces joined by veth links to a bridge, each running
// a node agent and a manager; etcd and the REST API in host 1. A 3-replica volume with hard node
// anti-affinity on hosts 1–3 (host 4 kept free), attached on host 1, takes writes with flushes.
// Host 3's link goes down: the volume is degraded, host 3 is marked not ready, its replica failed
// (with the reason written on it) and replaced on host 4, rebuilt from the RW replicas over the
// network; the data verifies. Still cut off, the volume moves to host 2 (the replica on the cut-off
// host does not hold the detach): a new engine there with epoch 2 (the resource's epoch, raised per
// attach), presented to every live replica; host 2's manager takes the volume over. The link comes
// back: the old replica stays out (epoch 1, and its recorded generation is older than the
// engine's), is stopped, and is deleted once stale. Data verifies at every step.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { processTableFileName } from '../../src/agent/process-table.ts';
import { ShorthornClient } from '../../src/api/client.ts';
import { replicaFailureAnnotation, replicaReasonAnnotation } from '../../src/control/controllers/volume-reconcile.ts';
import type { Engine } from '../../src/control/resources/engine.ts';
import type { Node } from '../../src/control/resources/node.ts';
import type { Replica } from '../../src/control/resources/replica.ts';
import type { Volume } from '../../src/control/resources/volume.ts';
import { EtcdStore } from '../../src/control/store/etcd-store.ts';
import { isStoreError } from '../../src/control/store/resource-store.ts';
import { decodeMeta } from '../../src/replica/replica-meta.ts';
import { run, shorthornBin, startDaemon, stopAll, waitFor, withTempDir, type Daemon } from '../harness/daemon.ts';
import { isAlive } from '../harness/local-cluster.ts';
import { createNetnsHosts, type NetnsHost, type NetnsHosts } from '../harness/netns-hosts.ts';

const volumeName = 'vol-mh';
const sizeBytes = 32 * 1024 * 1024;
const leaseTtlMs = 3000;

let hosts: NetnsHosts | undefined;
let dataDir: string | undefined;

/** Kill the engine and replica processes the agents started (by the pids in their tables, only ours). */
function killInstances(dir: string): void {
  for (let i = 1; i <= 4; i++) {
    const path = join(dir, `node-${i}`, processTableFileName);
    if (!existsSync(path)) continue;
    const table = JSON.parse(readFileSync(path, 'utf8')) as { entries: { pid?: number }[] };
    for (const { pid } of table.entries) {
      if (pid === undefined || !isAlive(pid)) continue;
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) process.kill(pid, 'SIGKILL');
    }
  }
}

after(async () => {
  await stopAll();
  if (dataDir !== undefined) killInstances(dataDir);
  await hosts?.destroy();
});

async function startInHost(host: NetnsHost, args: readonly string[], readyPattern: RegExp): Promise<Daemon> {
  const { command, args: full } = hosts!.inHost(host, process.execPath, ['--enable-source-maps', shorthornBin, ...args]);
  // Node takes over 10 s just to load on a machine shared by many test runs.
  return startDaemon({ command, args: full, readyPattern, timeoutMs: 90_000 });
}

async function etcdHealthy(endpoint: string): Promise<true | undefined> {
  try {
    const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    return ((await response.json()) as { health?: string }).health === 'true' ? true : undefined;
  } catch (error) {
    if (error instanceof Error) return undefined; // not listening yet: poll again
    throw error;
  }
}

function replicaMeta(replica: Replica): { epoch: number; generation: number } {
  const path = join(replica.spec.diskPath!, 'replicas', replica.spec.dataDirectoryName!, 'replica.meta');
  const meta = decodeMeta(readFileSync(path), path);
  return { epoch: meta.epoch, generation: meta.generation };
}

test('four hosts in network namespaces: a host cut off loses its replica to the spare host; it comes back stale and is not used', async () => {
  hosts = await createNetnsHosts(4);
  const [h1, h2, h3, h4] = hosts.hosts as [NetnsHost, NetnsHost, NetnsHost, NetnsHost];
  const testStart = Date.now();
  await withTempDir('multi-host', async (dir) => {
    dataDir = dir;
    const daemons = new Map<string, Daemon>();
    const dump = (): string => {
      const parts = [...daemons].map(([name, d]) => `--- ${name}\n${d.output().slice(-6000)}`);
      for (let i = 1; i <= 4; i++) {
        const logs = join(dir, `node-${i}`, 'logs');
        if (!existsSync(logs)) continue;
        for (const file of readdirSync(logs)) parts.push(`--- node-${i} ${file}\n${readFileSync(join(logs, file), 'utf8').slice(-3000)}`);
      }
      return parts.join('\n');
    };
    let store: EtcdStore | undefined;
    try {
      // etcd in host 1, on its bridge address; peers on its loopback.
      const etcdUrl = `http://${h1.address}:2379`;
      const etcd = hosts!.inHost(h1, 'etcd', [
        '--name', 'mh', '--data-dir', join(dir, 'etcd'),
        '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl,
        '--listen-peer-urls', 'http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
        '--initial-cluster', 'mh=http://127.0.0.1:2380', '--heartbeat-interval', '10', '--election-timeout', '100',
      ]);
      daemons.set('etcd', await startDaemon({ command: etcd.command, args: etcd.args }));
      await waitFor('etcd healthy', () => etcdHealthy(etcdUrl), 30_000);
      store = new EtcdStore({ endpoints: [etcdUrl], requestTimeoutMs: 5000 });
      const storeArg = `etcd:${etcdUrl}`;

      // Every daemon at once: loading Node dominates start-up on a busy machine.
      const starting: Promise<void>[] = [];
      for (const host of hosts!.hosts) {
        const node = `node-${host.index}`;
        const disk = join(dir, `${node}-disk`);
        await mkdir(disk, { recursive: true });
        starting.push(startInHost(host, [
          'node', '--name', node, '--data', join(dir, node), '--store', storeArg, '--disk', disk, '--address', host.address,
          '--port-range', '10000-10100', '--sync-interval-ms', '200', '--restart-backoff-ms', '200', '--lease-ttl-ms', String(leaseTtlMs),
        ], /node agent running/).then((d) => void daemons.set(`agent ${node}`, d)));
        starting.push(startInHost(host, ['manager', '--store', storeArg, '--id', node, '--lease-ttl-ms', String(leaseTtlMs)], /manager running/)
          .then((d) => void daemons.set(`manager ${node}`, d)));
      }
      starting.push(startInHost(h1, ['api', '--store', storeArg, '--data', join(dir, 'api'), '--host', h1.address, '--port', '9500'], /listening on/)
        .then((d) => void daemons.set('api', d)));
      // allSettled: a daemon still starting when another failed must be registered before stopAll.
      const failedStart = (await Promise.allSettled(starting)).find((r) => r.status === 'rejected');
      if (failedStart !== undefined) throw failedStart.reason;
      const startedMs = Date.now() - testStart;
      // The test reaches the API from the root namespace, through the bridge.
      const client = new ShorthornClient({ baseUrl: `http://${h1.address}:9500`, token: readFileSync(join(dir, 'api', 'api-token'), 'utf8').trim() });
      const managerOutput = (): string => [...daemons].filter(([n]) => n.startsWith('manager')).map(([, d]) => d.output()).join('\n');

      await client.updateSetting('replica-soft-anti-affinity', 'false');
      await client.updateSetting('replica-replenishment-wait-interval', '0');
      await waitFor('four nodes registered', async () => ((await client.listNodes()).data.length === 4 ? true : undefined), 30_000);
      // Keep host 4 free: the spare the replacement must go to.
      await client.updateNode('node-4', { allowScheduling: false });
      await client.createVolume({ name: volumeName, size: sizeBytes, numberOfReplicas: 3, staleReplicaTimeout: 1 });
      const replicasOf = async (): Promise<Replica[]> =>
        ((await store!.list('Replica')).items as Replica[]).filter((r) => r.spec.volumeName === volumeName);
      const getVolume = async (): Promise<Volume> => (await store!.get('Volume', volumeName)) as Volume;
      const getEngine = async (): Promise<Engine> => (await store!.get('Engine', `${volumeName}-e-0`)) as Engine;
      await waitFor('3 replicas placed', async () => ((await getVolume()).status?.state === 'detached' && (await replicasOf()).length === 3 ? true : undefined), 60_000);
      assert.deepEqual((await replicasOf()).map((r) => r.spec.nodeID).sort(), ['node-1', 'node-2', 'node-3'], 'hard node anti-affinity: one replica per host');
      await client.updateNode('node-4', { allowScheduling: true });
      await client.attachVolume(volumeName, { hostId: 'node-1' });
      await waitFor('attached on node-1 and healthy', async () => {
        const v = await getVolume();
        return v.status?.state === 'attached' && v.status.robustness === 'healthy' ? true : undefined;
      }, 90_000);

      // Every address published is the host's bridge address, not loopback.
      const engine1 = await getEngine();
      assert.equal(engine1.spec.epoch, 1);
      assert.equal(engine1.status?.ip, h1.address);
      const addressOf = new Map(hosts!.hosts.map((h) => [`node-${h.index}`, h.address]));
      for (const r of await replicasOf()) {
        assert.equal(r.status?.ip, addressOf.get(r.spec.nodeID!), `replica ${r.metadata.name} on ${r.spec.nodeID} publishes its host's address`);
        assert.equal(engine1.spec.replicaAddressMap[r.metadata.name], `${r.status!.ip!}:${r.status!.port!}`);
        assert.equal(replicaMeta(r).epoch, 1, 'the engine presented the epoch of its resource');
      }
      const uri = engine1.status.endpoint!;
      // A workload with flushes: a pattern per MiB, flushed after each.
      await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x3c 0 2M', '-c', 'flush', '-c', 'write -P 0x3d 2M 2M', '-c', 'flush', uri]);

      // ---- host 3 is cut off ----
      const lost = (await replicasOf()).find((r) => r.spec.nodeID === 'node-3')!;
      const cutAt = new Date();
      await hosts!.setLink(h3, false);
      // Blocks until the engine gives up on host 3's replica (request timeout), then acknowledged by two.
      await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x4d 4M 4M', '-c', 'flush', uri]);
      const degradedAt = await waitFor('volume degraded', async () => {
        const at = (await getVolume()).status?.lastDegradedAt;
        return at !== undefined && Date.parse(at) >= cutAt.getTime() - 1000 ? at : undefined;
      }, 60_000);
      const replacement = await waitFor('a replacement on node-4, rebuilt, volume healthy', async () => {
        const fresh = (await replicasOf()).find((r) => r.spec.nodeID === 'node-4');
        const e = await getEngine();
        const modes = e.status?.replicaModeMap ?? {};
        const ok = fresh !== undefined && modes[fresh.metadata.name] === 'RW' && e.status?.rebuildStatus?.[fresh.metadata.name]?.state === 'done' &&
          Object.values(modes).filter((m) => m === 'RW').length === 3 && (await getVolume()).status?.robustness === 'healthy';
        return ok ? fresh : undefined;
      }, 90_000);
      const healedMs = Date.now() - cutAt.getTime();
      const node3 = (await store.get('Node', 'node-3')) as Node;
      assert.equal(node3.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'NodeAgentDown');
      const failed = (await store.get('Replica', lost.metadata.name)) as Replica;
      assert.ok(failed.spec.failedAt !== undefined, 'the cut-off replica is marked failed');
      assert.match(failed.metadata.annotations?.[replicaFailureAnnotation] ?? '', /node node-3 is not ready/);
      // The rebuild's reason, on the new replica and in the owner's log.
      const reason = replacement.metadata.annotations?.[replicaReasonAnnotation] ?? '';
      assert.match(reason, new RegExp(`replaces failed ${lost.metadata.name} on node node-3 \\(node node-3 is not ready\\)`));
      assert.match(reason, /placed on node node-4/);
      // The API shows it too (GET /v1/volumes/V/replicas carries the metadata).
      const viaApi = (await client.listReplicas(volumeName)).data.find((r) => r.metadata.name === replacement.metadata.name);
      assert.equal(viaApi?.metadata.annotations?.[replicaReasonAnnotation], reason);
      assert.match(managerOutput(), new RegExp(`node-1: volume ${volumeName}: placed replica ${replacement.metadata.name} on node node-4 .*replaces failed ${lost.metadata.name}`));
      const engine2 = await getEngine();
      const source = engine2.status?.rebuildStatus?.[replacement.metadata.name]?.fromReplicaAddress ?? '';
      assert.ok(source.startsWith(`${h1.address}:`) || source.startsWith(`${h2.address}:`), `rebuilt from a replica on host 1 or 2, not ${source}`);
      assert.equal(replacement.status?.ip, h4.address);
      await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x3c 0 2M', '-c', 'read -P 0x3d 2M 2M', '-c', 'read -P 0x4d 4M 4M', uri]);
      process.stdout.write(`daemons up after ${startedMs} ms; cut at ${cutAt.toISOString()}, degraded at ${degradedAt}, healthy again after ${healedMs} ms\n`);

      // ---- host 3 still cut off: the volume moves to host 2, a new engine with the next epoch ----
      // Its replica there cannot be reported stopped; a replica on a node that is not Ready does not hold the detach.
      await client.detachVolume(volumeName, {});
      await waitFor('detached', async () => ((await getVolume()).status?.state === 'detached' ? true : undefined), 60_000);
      await client.attachVolume(volumeName, { hostId: 'node-2' });
      await waitFor('attached on node-2 and healthy', async () => {
        const v = await getVolume();
        return v.status?.state === 'attached' && v.status.currentNodeID === 'node-2' && v.status.robustness === 'healthy' ? true : undefined;
      }, 90_000);
      const engine3 = await getEngine();
      assert.equal(engine3.spec.epoch, 2, 'each attach raises the epoch on the Engine resource');
      assert.equal(engine3.status?.ip, h2.address);
      for (const r of (await replicasOf()).filter((x) => x.spec.failedAt === undefined)) assert.equal(replicaMeta(r).epoch, 2);
      assert.equal(((await getVolume()).status as { ownerID?: string }).ownerID, 'node-2');
      assert.match(managerOutput(), new RegExp(`volume ${volumeName}: owned by manager node-2 now: this manager is its preferred owner \\(was node-1\\)`));
      const uri2 = engine3.status.endpoint!;
      await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x3c 0 2M', '-c', 'read -P 0x3d 2M 2M', '-c', 'read -P 0x4d 4M 4M', '-c', 'write -P 0x5e 8M 1M', '-c', 'flush', uri2]);

      // ---- host 3 comes back: its replica is stale and stays out ----
      await hosts!.setLink(h3, true);
      await waitFor('node-3 ready again', async () => {
        const n = (await store!.get('Node', 'node-3')) as Node;
        return n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' ? true : undefined;
      }, 60_000);
      await waitFor('the stale replica stopped by its returning agent', async () => {
        const r = (await store!.get('Replica', lost.metadata.name)) as Replica;
        return r.status?.currentState === 'stopped' ? true : undefined;
      }, 60_000);
      const engine4 = await getEngine();
      assert.equal(engine4.spec.replicaAddressMap[lost.metadata.name], undefined, 'the stale replica is not in the write set');
      assert.equal(engine4.status?.replicaModeMap?.[lost.metadata.name], undefined);
      const staleMeta = replicaMeta(lost);
      assert.equal(staleMeta.epoch, 1, 'the stale replica never saw the new engine');
      assert.ok(staleMeta.generation < (engine4.status?.generation ?? 0),
        `the stale replica's generation ${staleMeta.generation} is older than the engine's ${engine4.status?.generation ?? '?'}`);
      await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x3c 0 2M', '-c', 'read -P 0x3d 2M 2M', '-c', 'read -P 0x4d 4M 4M', '-c', 'read -P 0x5e 8M 1M', uri2]);

      // ---- the stale replica is deleted once failed for staleReplicaTimeout (1 min), its data removed ----
      const staleDir = join(lost.spec.diskPath!, 'replicas', lost.spec.dataDirectoryName!);
      await waitFor('the stale replica deleted and its data removed', async () => {
        try {
          await store!.get('Replica', lost.metadata.name);
          return undefined;
        } catch (error) {
          if (!isStoreError(error, 'not_found')) throw error;
          return existsSync(staleDir) ? undefined : true;
        }
      }, 120_000);
      assert.equal((await getVolume()).status?.robustness, 'healthy');
      process.stdout.write(`stale replica gone ${Date.now() - cutAt.getTime()} ms after the cut; test ${Date.now() - testStart} ms\n`);
    } catch (error) {
      process.stderr.write(`${dump()}\n`);
      throw error;
    } finally {
      await stopAll();
      killInstances(dir);
      await store?.close();
    }
  });
});
