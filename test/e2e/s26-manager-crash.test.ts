// Scenario S26 (reliability notes §7.3; issue #9): the manager killed with SIGKILL at seeded named
// points of its reconcile loops (runtime/fault-points.ts, controllers/volume-fault-points.ts).
// The embedded store, four node agents and the manager are real processes; one 16 MiB volume
// with 3 replicas is attached on node-1 and written with qemu-io (patterns, flushes). For each
// seed, three loops in turn on the same cluster:
// - rebuild: a replica process is SIGKILLed (the agent restarts it after 4 s): failure recorded,
//   write set shrunk, replica reused, write set grown, rebuilt, healthy recorded;
// - salvage: every replica process is SIGKILLed: faulted, engine stopped, salvage chosen, engine
//   started with --salvage, salvaged;
// - eviction: a node holding a replica is evicted: replacement placed and rebuilt, then the
//   evicting replica deleted (its agent removes its directory).
// Each loop arms one seeded point of its sequence in a fresh manager, drives the cluster into
// the loop, requires the manager to die at that point (its marker line, killed by SIGKILL), and on
// some seeds arms a later point in the restarted manager too. Then an unarmed manager must bring
// the volume back to healthy, and: at every poll meanwhile at most one engine process of the
// volume runs (/proc) and the store has one engine; the specs stay put once healthy (the
// reconcile has nothing left to do); no replica directory was removed except an evicted one after
// its replacement was RW, and the directories of the newest recorded generation are all there;
// every flushed write reads back; a scrub of the three replicas finds no mismatch.
// SEED=n replays one seed; S26_SEEDS=1,2,3 runs those (default: 1 and one random seed).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '../../src/control/resources/engine.ts';
import type { Node } from '../../src/control/resources/node.ts';
import { apiVersion } from '../../src/control/resources/object-meta.ts';
import type { Replica } from '../../src/control/resources/replica.ts';
import { validateResource, withDefaults } from '../../src/control/resources/validate-resource.ts';
import type { VolumeAttachment } from '../../src/control/resources/volume-attachment.ts';
import type { Volume } from '../../src/control/resources/volume.ts';
import { crashAtEnv, faultTraceEnv } from '../../src/control/runtime/fault-points.ts';
import { SeededRandom } from '../../src/lib/random.ts';
import { run, startDaemon, stopAll, waitFor, withTempDir, type Daemon } from '../harness/daemon.ts';
import { isAlive, startLocalCluster, updateWithRetry, type LocalCluster } from '../harness/local-cluster.ts';

after(stopAll);

const randomSeed = Date.now() % 1_000_000;
const seeds = process.env['SEED'] !== undefined
  ? [Number(process.env['SEED'])]
  : (process.env['S26_SEEDS']?.split(',').map(Number) ?? [1, randomSeed]);
const mib = 1024 * 1024;
const volumeName = 'vol-s26';
const sizeMiB = 16;
const nodes = ['node-1', 'node-2', 'node-3', 'node-4'];

/**
 * Each loop's points in the order the manager passes them once the loop is driven (named in
 * volume-fault-points.ts). Only points every run passes: a point a run may skip (e.g. the write
 * set never shrinks when the agent restarts the replica before the manager sees it fail) would
 * leave the armed manager alive. The last one is passed even after a crash at any earlier one.
 */
const loops = {
  rebuild: ['replica:failed-recorded', 'volume:write-set-shrunk', 'rebuild:replica-reused', 'rebuild:write-set-grown', 'rebuild:healthy-recorded'],
  salvage: ['salvage:faulted-recorded', 'salvage:engine-stop-stored', 'salvage:engine-start-stored', 'salvage:salvaging-recorded', 'salvage:done-recorded'],
  eviction: ['volume:replica-created', 'eviction:replica-marked', 'rebuild:write-set-grown', 'rebuild:healthy-recorded', 'eviction:delete-decided', 'eviction:deleted'],
} as const;
type Loop = keyof typeof loops;

/** What each MiB of the volume holds (a qemu-io pattern byte; 0 = never written). */
const model: number[] = new Array<number>(sizeMiB).fill(0);

async function qemuIo(uri: string, commands: readonly string[]): Promise<void> {
  const args = ['-f', 'raw'];
  for (const c of commands) args.push('-c', c);
  const result = await run('qemu-io', [...args, uri], { allowFailure: true });
  const text = result.stdout + result.stderr;
  assert.equal(result.code, 0, `qemu-io ${commands.slice(0, 3).join('; ')}: ${text}`);
  // qemu-io reports a pattern mismatch on stdout and still exits 0.
  assert.doesNotMatch(text, /Pattern verification failed|error|failed/i, `qemu-io ${commands.slice(0, 3).join('; ')}: ${text}`);
}

function reads(): string[] {
  const out: string[] = [];
  for (let i = 0; i < model.length;) {
    let j = i;
    while (j < model.length && model[j] === model[i]) j++;
    out.push(`read -P ${model[i]} ${i}M ${j - i}M`);
    i = j;
  }
  return out;
}

/** Engine processes of this test in /proc, by volume name (--name). */
function enginesInProc(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    if (!argv.some((a) => a.includes(dir)) || !isAlive(Number(entry))) continue;
    const script = argv.findIndex((a) => a.endsWith('shorthorn.js'));
    if (argv[script + 1] === 'engine') out.push(argv[argv.indexOf('--name') + 1] ?? '?');
  }
  return out;
}

for (const seed of seeds) assert.ok(Number.isSafeInteger(seed), `bad seed in ${String(seeds)}`);

test(`S26: manager SIGKILLed at seeded points of the rebuild, salvage and eviction loops (seeds ${seeds.join(', ')})`, async () => {
  for (const seed of seeds) process.stdout.write(`S26 seed=${seed} (replay: SEED=${seed} node scripts/run-tests.mjs e2e/s26-manager-crash)\n`);
  await withTempDir('s26', async (dir) => {
    let cluster: LocalCluster | undefined;
    let manager: Daemon | undefined;
    const managerLogs: string[] = [];
    try {
      // The agents restart a crashed replica after 4 s, so the manager sees every failure first.
      cluster = await startLocalCluster({ dir, nodes, agentArgs: ['--restart-backoff-ms', '4000'] });
      const { store } = cluster;
      manager = cluster.manager;
      const startManager = async (armed: string | undefined): Promise<Daemon> => {
        const daemon = await startDaemon({
          args: ['manager', '--store', `embedded:${join(dir, 'store')}`, '--id', 'mgr-1'],
          // An armed point can be reached before the ready line.
          readyPattern: /manager running|fault point \S+ reached/,
          timeoutMs: 60_000,
          env: { [crashAtEnv]: armed ?? '', [faultTraceEnv]: '1' },
        });
        manager = daemon;
        return daemon;
      };
      const getVolume = async (): Promise<Volume> => (await store.get('Volume', volumeName)) as Volume;
      const getEngine = async (): Promise<Engine> => (await store.get('Engine', `${volumeName}-e-0`)) as Engine;
      const replicas = async (): Promise<Replica[]> => ((await store.list('Replica')).items as Replica[]).filter((r) => r.spec.volumeName === volumeName);
      const dataDir = (r: Replica): string => join(r.spec.diskPath!, 'replicas', r.spec.dataDirectoryName!);
      // At most one engine per volume, in /proc and in the store: checked at every poll.
      let polls = 0;
      const oneEngine = async (): Promise<void> => {
        polls++;
        const running = enginesInProc(dir).filter((n) => n === volumeName);
        assert.ok(running.length <= 1, `${running.length} engine processes of ${volumeName} at once`);
        const engines = ((await store.list('Engine')).items as Engine[]).filter((e) => e.spec.volumeName === volumeName);
        assert.equal(engines.length, 1, `engines of ${volumeName} in the store: ${engines.map((e) => e.metadata.name).join(', ')}`);
      };
      const healthy = async (): Promise<true | undefined> => {
        await oneEngine();
        const v = await getVolume();
        const rs = (await replicas()).filter((r) => r.metadata.deletionTimestamp === undefined);
        const modes = (await getEngine()).status?.replicaModeMap ?? {};
        const rw = rs.filter((r) => modes[r.metadata.name] === 'RW' && r.spec.healthyAt !== undefined && r.spec.failedAt === undefined);
        return v.status?.state === 'attached' && v.status.robustness === 'healthy' && rs.length === 3 && rw.length === 3 &&
          v.status.conditions?.find((c) => c.type === 'Salvage')?.status !== 'False' ? true : undefined;
      };

      // node-4 stays empty until the first eviction, so the volume has a spare node.
      await updateWithRetry<Node>(store, 'Node', 'node-4', (n) => ({ ...n, spec: { ...n.spec, allowScheduling: false } }));
      const volume = validateResource('Volume', withDefaults('Volume', { apiVersion, kind: 'Volume', metadata: { name: volumeName }, spec: { size: sizeMiB * mib, numberOfReplicas: 3 } }));
      assert.ok(volume.ok);
      await store.create(volume.value);
      await waitFor('volume placed', async () => ((await getVolume()).status?.state === 'detached' && (await replicas()).length === 3 ? true : undefined), 60_000);
      await updateWithRetry<Node>(store, 'Node', 'node-4', (n) => ({ ...n, spec: { ...n.spec, allowScheduling: true } }));
      await updateWithRetry<VolumeAttachment>(store, 'VolumeAttachment', volumeName, (va) => ({
        ...va, spec: { ...va.spec, attachmentTickets: { s26: { id: 's26', type: 'shorthorn-api', nodeID: 'node-1' } } },
      }));
      await waitFor('volume attached and healthy', healthy, 90_000);
      const uri = (await getEngine()).status!.endpoint!;
      // The running manager (unarmed) is replaced by one this test starts with its environment.
      await manager.stop();
      manager = await startManager(undefined);

      const runLoop = async (seed: number, loop: Loop, random: SeededRandom): Promise<void> => {
        const points = loops[loop];
        const first = random.int(points.length);
        // Some seeds crash it again at the loop's last point.
        const second = first < points.length - 1 && random.int(2) === 0 ? points.length - 1 : undefined;
        const firstPoint = points[first]!;
        const secondPoint = second === undefined ? undefined : points[second]!;
        process.stdout.write(`seed ${seed} ${loop}: crash at ${firstPoint}${secondPoint === undefined ? '' : `, then at ${secondPoint}`}\n`);
        const started = Date.now();
        // Flushed writes before the crash: they must read back after it.
        const writes: string[] = [];
        for (let i = 0; i < 2; i++) {
          const at = random.int(sizeMiB);
          const pattern = 1 + random.int(254);
          model[at] = pattern;
          writes.push(`write -P ${pattern} ${at}M 1M`);
        }
        await qemuIo(uri, [...writes, 'flush']);
        await waitFor('every replica reports its record', async () => ((await replicas()).every((r) => r.status?.generation !== undefined) ? true : undefined), 30_000);
        const before = await replicas();
        const newest = Math.max(...before.map((r) => r.status!.generation!));

        await manager!.stop();
        let armed = await startManager(firstPoint);
        const loopManagers = [armed];
        let evicted: Replica | undefined;
        if (loop === 'rebuild') {
          const victim = before[random.int(before.length)]!;
          process.kill(victim.status!.pid!, 'SIGKILL');
        } else if (loop === 'salvage') {
          for (const r of before) process.kill(r.status!.pid!, 'SIGKILL');
        } else {
          evicted = before[random.int(before.length)]!;
          await updateWithRetry<Node>(store, 'Node', evicted.spec.nodeID!, (n) => ({ ...n, spec: { ...n.spec, evictionRequested: true } }));
        }
        for (const point of [firstPoint, secondPoint]) {
          if (point === undefined) continue;
          const exit = armed.child;
          await waitFor(`the manager to crash at ${point}`, async () => {
            await oneEngine();
            return exit.exitCode !== null || exit.signalCode !== null ? true : undefined;
          }, 90_000);
          managerLogs.push(armed.output());
          assert.equal(exit.signalCode, 'SIGKILL', `manager exit: ${exit.exitCode ?? ''} ${exit.signalCode ?? ''}\n${armed.output().slice(-3000)}`);
          assert.match(armed.output(), new RegExp(`fault point ${point} reached \\(pass 1\\): SIGKILL\\n$`), 'the marker is its last line');
          if (point === firstPoint && secondPoint !== undefined) {
            armed = await startManager(secondPoint);
            loopManagers.push(armed);
          }
        }
        manager = await startManager(undefined);
        loopManagers.push(manager);
        await waitFor(`the volume healthy after the ${loop} crash`, healthy, 120_000);
        if (evicted !== undefined) {
          await waitFor('the evicted replica gone', async () => ((await replicas()).some((r) => r.metadata.name === evicted.metadata.name) ? undefined : true), 60_000);
          await updateWithRetry<Node>(store, 'Node', evicted.spec.nodeID!, (n) => ({ ...n, spec: { ...n.spec, evictionRequested: false } }));
          assert.ok((await replicas()).every((r) => r.spec.nodeID !== evicted.spec.nodeID), 'a replica is left on the evicted node');
        }
        await waitFor('the volume healthy', healthy, 60_000);

        // Idempotent: nothing left to decide, so the specs stay as they are over a few resyncs' worth of passes.
        const specs = async (): Promise<string> => JSON.stringify([(await getEngine()).spec, ...(await replicas()).map((r) => [r.metadata.name, r.spec])]);
        const settled = await specs();
        const settledAt = Date.now();
        await waitFor('6 s with no spec change', async () => {
          assert.equal(await specs(), settled, 'the manager kept changing specs after the volume was healthy');
          await oneEngine();
          return Date.now() - settledAt >= 6000 ? true : undefined;
        }, 30_000);

        // No directory with data the survivors need was removed.
        const now = await replicas();
        for (const r of before) {
          if (existsSync(dataDir(r))) continue;
          assert.ok(r === evicted || r.metadata.name === evicted?.metadata.name, `replica directory ${dataDir(r)} (${r.metadata.name}, generation ${r.status?.generation}) removed in the ${loop} loop`);
          assert.ok(!now.some((x) => x.metadata.name === r.metadata.name), `${r.metadata.name}'s directory removed while its resource is still there`);
        }
        for (const r of before.filter((x) => x.status!.generation === newest && x.metadata.name !== evicted?.metadata.name)) {
          assert.ok(existsSync(dataDir(r)), `a replica of the newest generation ${newest} lost its directory: ${dataDir(r)}`);
        }
        await qemuIo(uri, reads());
        // The points this loop went through, in order, across its managers (the trace lines).
        const passed = loopManagers.flatMap((m) => [...m.output().matchAll(/fault point (\S+) passed \((\d+)\)/g)].map((x) => x[1]!));
        process.stdout.write(`seed ${seed} ${loop}: points passed: ${passed.join(' ')}\n`);
        process.stdout.write(`seed ${seed} ${loop}: healthy and verified ${((Date.now() - started) / 1000).toFixed(1)} s after the drive\n`);
      };

      for (const seed of seeds) {
        const random = new SeededRandom(seed);
        for (const loop of ['rebuild', 'salvage', 'eviction'] as const) await runLoop(seed, loop, random);
      }
      const control = `http://127.0.0.1:${(await getEngine()).status!.port!}`;
      const scrub = (await (await fetch(`${control}/v1/scrub`, { method: 'POST', body: '{}' })).json()) as { replicas: string[]; mismatches: unknown[] };
      assert.equal(scrub.replicas.length, 3, JSON.stringify(scrub));
      assert.deepEqual(scrub.mismatches, []);
      process.stdout.write(`S26: ${polls} polls of /proc and the store, at most one engine each time\n`);
    } catch (error) {
      process.stderr.write(`seeds ${seeds.join(', ')}\n${cluster?.dump() ?? 'no cluster'}\n--- crashed managers\n${managerLogs.join('\n---\n')}\n--- last manager\n${manager?.output() ?? ''}\n`);
      throw error;
    } finally {
      await stopAll();
      cluster?.killInstances();
      await cluster?.store.close();
    }
  });
});
