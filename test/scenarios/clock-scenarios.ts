// Scenario S27 (reliability notes §7.3): wall-clock jumps on real processes. Every process gets
// its own wall clock through libfaketime (Debian `faketime`, scripts/system-packages.txt): the
// offset is read from a file on every call (FAKETIME_NO_CACHE), so writing the file steps that
// process's clock while it runs; the monotonic clock is left alone (FAKETIME_DONT_FAKE_MONOTONIC),
// as an NTP step would. The engine and the three replicas are restarted cleanly under offsets of
// -1 day, +1 h, -1 h and +1 day, one replica (by seed) also in a time namespace whose monotonic
// and boot clocks are 25 h ahead (unshare --time: monotonic skew), the workload goes on, then
// every clock is stepped (+2 days, -25 h, +25 h, -25 h) and stepped again (each by ±1 h). Checks, beyond the invariants:
//   - no timeout storm: every replica stays rw through the steps (the engine's request timeouts
//     and pings run on monotonic time), and the workload keeps being acknowledged; the replica
//     with the skewed monotonic clock serves like the others (no monotonic reading crosses a
//     process boundary);
//   - the fake clocks acted (a snapshot's creation time, from the read source's clock, is off);
//   - chain decisions do not follow file or wall times: snapshots taken before and after a step
//     back are listed in chain order, a delete and purge of the older one runs, a replica killed
//     and restarted under a stepped clock is rebuilt.
// The recurring-job scheduler's answer to the same steps is a unit test
// (src/control/recurring/job-schedule-clock-jumps.test.ts); S04 moves file times for salvage.
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { dataProcessThreadPoolSize } from '../../src/lib/limits.ts';
import { shorthornBin, startDaemon, waitFor } from '../harness/daemon.ts';
import { requestTimeoutMs, type ScenarioCluster, type ScenarioReplica } from './scenario-cluster.ts';
import type { ScenarioContext, ScenarioDefinition } from './scenario-run.ts';

export const libfaketimePath = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const dayMs = 24 * 3600_000;

/** The environment that gives a process the wall clock written in `file` ("+1d", "-1h", ...). */
function faketimeEnv(file: string): Record<string, string> {
  return { LD_PRELOAD: libfaketimePath, FAKETIME_TIMESTAMP_FILE: file, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
}

/** The clock file of process `who` (an index, or the engine). */
const clockFile = (cluster: ScenarioCluster, who: number | 'engine'): string => `${cluster.dir}/clock-${who}.faketime`;

async function setClocks(cluster: ScenarioCluster, offsets: { engine: string; replicas: readonly string[] }): Promise<void> {
  await writeFile(clockFile(cluster, 'engine'), `${offsets.engine}\n`);
  for (const [i, offset] of offsets.replicas.entries()) await writeFile(clockFile(cluster, i), `${offset}\n`);
}

/** Watch the engine for `ms` while the workload runs: every replica must stay rw. Resolves with the acknowledged count. */
async function noTimeoutStorm(ctx: ScenarioContext, ms: number, what: string): Promise<void> {
  const until = performance.now() + ms;
  const ackedBefore = ctx.workload.stats.acked;
  while (performance.now() < until) {
    const status = await ctx.cluster.status();
    const out = status.replicas.filter((r) => r.mode !== 'rw');
    if (out.length > 0) {
      ctx.expect(false, `${what}: replicas left the write set: ${JSON.stringify(out)}`);
      return;
    }
    await sleep(200);
  }
  const acked = ctx.workload.stats.acked - ackedBefore;
  ctx.expect(acked > 0, `${what}: no operation acknowledged in ${ms} ms`);
  ctx.report(`${what}: every replica rw for ${ms} ms, ${acked} operations acknowledged`);
}

/** The monotonic skew of one replica: a time namespace (unshare --time) moves its monotonic and boot clocks. */
const monotonicOffsetSeconds = 86_400 + 3_600;

/**
 * Start a replica inside a new time namespace with its monotonic clock offset (S27 "monotonic skew").
 * The replica's arguments are those of ScenarioCluster.startReplica; only the wrapper differs.
 */
async function startWithMonotonicOffset(cluster: ScenarioCluster, replica: ScenarioReplica, env: Record<string, string>): Promise<void> {
  const offset = String(monotonicOffsetSeconds);
  const args = ['--time', '--monotonic', offset, '--boottime', offset, process.execPath, '--enable-source-maps', shorthornBin];
  args.push('replica', '--dir', replica.dir, '--size', String(cluster.sizeBytes), '--volume', cluster.volume, '--listen', `127.0.0.1:${replica.port}`);
  replica.daemon = await startDaemon({ command: 'unshare', args, readyPattern: /listening on (\S+)/, env: { UV_THREADPOOL_SIZE: String(dataProcessThreadPoolSize), ...env }, timeoutMs: 60_000 });
  cluster.note(`replica ${replica.index} (${replica.address}) started in a time namespace (monotonic +${offset} s), pid ${replica.daemon.pid}`);
}

async function snapshotCreatedMs(cluster: ScenarioCluster, name: string): Promise<number> {
  const { json } = await cluster.control('GET', '/v1/snapshots');
  const found = (json as { snapshots: { name: string; createdMs: number }[] }).snapshots.find((s) => s.name === name);
  if (found === undefined) throw new Error(`snapshot ${name} not listed: ${JSON.stringify(json)}`);
  return found.createdMs;
}

async function run(ctx: ScenarioContext): Promise<void> {
  const { cluster, workload } = ctx;
  if (!existsSync(libfaketimePath)) throw new Error(`${libfaketimePath} missing: install the Debian package faketime (scripts/system-packages.txt)`);
  await workload.acknowledged(100);
  // Everything restarts cleanly under its own clock (nothing is lost: a clean stop flushes).
  await setClocks(cluster, { engine: '-1d', replicas: ['+1h', '-1h', '+1d'] });
  workload.detach();
  await waitFor('the workload to have nothing in flight', () => (workload.history.every((e) => e.result !== 'pending') ? true : undefined), 30_000);
  await cluster.engine!.stop();
  const skewed = cluster.replicas[ctx.seed % cluster.replicas.length]!;
  for (const replica of cluster.replicas) {
    await replica.daemon!.stop();
    if (replica === skewed) await startWithMonotonicOffset(cluster, replica, faketimeEnv(clockFile(cluster, replica.index)));
    else await cluster.startReplica(replica, undefined, faketimeEnv(clockFile(cluster, replica.index)));
  }
  ctx.report(`replica ${skewed.index} runs in a time namespace with its monotonic and boot clocks ${monotonicOffsetSeconds} s ahead`);
  await rm(cluster.socket, { force: true });
  await cluster.startEngine({ env: faketimeEnv(clockFile(cluster, 'engine')) });
  workload.attach(await cluster.connect());
  await workload.acknowledged(100);
  await noTimeoutStorm(ctx, 2 * requestTimeoutMs, 'skewed clocks (-1 d, +1 h, -1 h, +1 d)');

  const before = await cluster.control('POST', '/v1/snapshots', { name: 's27-before' });
  ctx.expect(before.status === 200, `snapshot before the step: ${JSON.stringify(before.json)}`);
  const skewMs = (await snapshotCreatedMs(cluster, 's27-before')) - Date.now();
  ctx.report(`s27-before created at real time ${skewMs >= 0 ? '+' : ''}${(skewMs / 3600_000).toFixed(2)} h (the read source's fake clock)`);
  ctx.expect(Math.abs(skewMs) > 0.5 * 3600_000, `the fake clocks did not act: s27-before created ${skewMs} ms from real time`);

  // Step every clock while the workload runs: the engine 2 days forward, the replicas by a day and an hour either way.
  await setClocks(cluster, { engine: '+1d', replicas: ['-1d', '+1d', '-1h'] });
  ctx.report('clocks stepped: engine -1 d -> +1 d, replicas +1 h -> -1 d, -1 h -> +1 d, +1 d -> -1 h');
  await noTimeoutStorm(ctx, 3 * requestTimeoutMs, 'after the step');
  const after = await cluster.control('POST', '/v1/snapshots', { name: 's27-after' });
  ctx.expect(after.status === 200, `snapshot after the step: ${JSON.stringify(after.json)}`);
  const listed = ((await cluster.control('GET', '/v1/snapshots')).json as { snapshots: { name: string; parent: string | null; createdMs: number }[] }).snapshots;
  const afterNode = listed.find((s) => s.name === 's27-after');
  ctx.expect(afterNode?.parent === 's27-before', `s27-after's parent is ${afterNode?.parent ?? '?'}, not s27-before (chain order, whatever the times)`);
  ctx.report(`created times: s27-before ${(((listed.find((s) => s.name === 's27-before')?.createdMs ?? 0) - Date.now()) / dayMs).toFixed(2)} d, s27-after ${(((afterNode?.createdMs ?? 0) - Date.now()) / dayMs).toFixed(2)} d from real time`);
  await workload.acknowledged(100);
  const deleted = await cluster.control('DELETE', '/v1/snapshots/s27-before');
  ctx.expect(deleted.status === 200, `delete s27-before: HTTP ${deleted.status} ${JSON.stringify(deleted.json)}`);
  const purged = await cluster.control('POST', '/v1/snapshots/purge', {});
  ctx.expect(purged.status === 200, `purge: HTTP ${purged.status} ${JSON.stringify(purged.json)}`);

  // A replica killed and restarted under a stepped clock comes back by rebuild (its join snapshot is named from the engine's clock).
  const victim = cluster.replicas[(ctx.seed + 1) % cluster.replicas.length]!; // not the skewed one: it keeps its namespace
  await victim.daemon!.kill9();
  await cluster.waitForMode(victim, 'err', 10 * requestTimeoutMs);
  await cluster.startReplica(victim, undefined, faketimeEnv(clockFile(cluster, victim.index)));
  await setClocks(cluster, { engine: '-1h', replicas: ['+1h', '-1h', '+1h'] });
  const rebuilt = await cluster.rebuild(victim);
  ctx.report(`replica ${victim.index} killed, restarted and rebuilt after a second step: ${rebuilt.doneBytes} bytes sent, ${rebuilt.skippedBytes} matched`);
  await noTimeoutStorm(ctx, 2 * requestTimeoutMs, 'after the second step');
  await workload.acknowledged(100);
}

export const clockScenarios: readonly ScenarioDefinition[] = [
  { id: 'S27', title: 'wall-clock jumps (libfaketime): processes at -1 d, +1 h, -1 h, +1 d, then stepped by a day or two and an hour while writing', run },
];
