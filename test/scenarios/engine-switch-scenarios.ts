// Scenario S29 (reliability notes §7.3): live engine replacement while writing. Engine v2 starts
// next to v1 on the same replicas; starting, it opens them with a higher epoch, which fences v1
// (replica-request-handler.ts: every request but chain_info below the accepted epoch is refused).
// The switch, as a client driver would do it:
//   1. quiesce: the client stops submitting and waits for its requests in flight on v1 to end;
//   2. v2 starts on the same replicas (v1's socket path is unlinked first, so v2 binds the same
//      path; v1 keeps its open listener and connection);
//   3. the client connects to v2 (the documented pause: an NBD reconnect) and goes on;
//   4. v1 is killed.
// A request still sent to v1 after step 2 fails (EIO): a probe client held on v1 checks it, with
// a self-describing sector of a writer the workload never uses, so that if v1's write landed
// anywhere the checker would report it as fabricated data.
// Round 2 kills v2 mid-switch (by seed: 0-400 ms after its spawn, once it has chosen its replicas,
// once it has recorded its generation, or once it serves but before the client attached) and falls
// back to a clean re-attach on a fresh engine v3; no acknowledged write may be lost, and the client
// sees no error. A v2 killed while opening the replicas fences only some: v1 then drops those and
// goes on with the rest under a new generation, v3 starts on that generation, and the dropped ones
// are rebuilt.
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { dataProcessThreadPoolSize } from '../../src/lib/limits.ts';
import { startDaemon, waitFor, type Daemon } from '../harness/daemon.ts';
import { encodeSector, sectorBytes } from '../harness/self-describing-sector.ts';
import { nbdOutcome } from './nbd-workload-client.ts';
import { pingIntervalMs, requestTimeoutMs, type ScenarioCluster } from './scenario-cluster.ts';
import type { ScenarioContext, ScenarioDefinition } from './scenario-run.ts';

/** A writer id the workload (writer 1) never uses: a probe write through a fenced engine. */
const probeWriter = 7;

/** Where round 2 kills v2: the engine's log line it waits for first (engine-command.ts, engine-start.ts). */
const killStages: readonly { name: string; pattern: RegExp | undefined }[] = [
  { name: 'while starting up (0-400 ms after spawn)', pattern: undefined },
  { name: 'after choosing its replicas', pattern: /start: generation \d+: using/ },
  { name: 'after recording its generation (replicas fenced)', pattern: /start: epoch \d+, generation \d+/ },
  { name: 'serving, before the client attached', pattern: /control on (\S+)/ },
];

/** Stop submitting and wait until no request of the workload is in flight; resolves with how long the drain took. */
async function quiesce(ctx: ScenarioContext): Promise<number> {
  const started = performance.now();
  ctx.workload.detach();
  await waitFor('the workload to have nothing in flight', () => (ctx.workload.history.every((e) => e.result !== 'pending') ? true : undefined), 30_000);
  return performance.now() - started;
}

/** The engine command line of this cluster (as ScenarioCluster.startEngine builds it). */
function engineArgs(cluster: ScenarioCluster): string[] {
  const args = ['engine', '--name', cluster.volume, '--size', String(cluster.sizeBytes), '--nbd-socket', cluster.socket];
  args.push('--timeout-ms', String(requestTimeoutMs), '--ping-interval-ms', String(pingIntervalMs));
  for (const r of cluster.replicas) args.push('--replica', r.address);
  return args;
}

async function epochOf(controlUrl: string): Promise<number> {
  const response = await fetch(`${controlUrl}/v1/status`);
  return ((await response.json()) as { epoch: number }).epoch;
}

/** Connect the workload to the cluster's current engine and wait for its first acknowledged operation. */
async function reattach(ctx: ScenarioContext): Promise<void> {
  ctx.workload.attach(await ctx.cluster.connect());
  await ctx.workload.acknowledged(1);
}

async function cleanSwitch(ctx: ScenarioContext): Promise<void> {
  const { cluster, workload } = ctx;
  const v1 = cluster.engine!;
  const v1Url = cluster.controlUrl;
  const v1Epoch = await epochOf(v1Url);
  const held = await cluster.connect(); // the probe client, held on v1
  try {
    const t0 = performance.now();
    const drainMs = await quiesce(ctx);
    await rm(cluster.socket, { force: true });
    const t1 = performance.now();
    await cluster.startEngine();
    const startMs = performance.now() - t1;
    await reattach(ctx);
    const pauseMs = performance.now() - t0;
    const v2Epoch = await epochOf(cluster.controlUrl);
    ctx.expect(v2Epoch > v1Epoch, `v2's epoch ${v2Epoch} is not above v1's ${v1Epoch}`);
    ctx.report(`clean switch: pause ${pauseMs.toFixed(0)} ms (drain ${drainMs.toFixed(0)} ms, v2 start ${startMs.toFixed(0)} ms, reconnect and first ack ${(pauseMs - drainMs - startMs).toFixed(0)} ms); epoch ${v1Epoch} -> ${v2Epoch}`);
    // v1 is fenced: a write through it fails, and must not land (the checker would see writer 7).
    const first = ctx.random.int(cluster.sizeBytes / sectorBytes);
    const data = new Uint8Array(sectorBytes);
    encodeSector(data, 0, { volumeTag: workload.model.volumeTag, sector: first, writer: probeWriter, seq: 1, epoch: 99 });
    const written = await nbdOutcome(() => held.write(first * sectorBytes, data, { fua: true }));
    const read = await nbdOutcome(() => held.read(0, 4096));
    ctx.expect(written !== 'ok', 'a write through the replaced engine v1 was acknowledged');
    ctx.expect(read !== 'ok', 'a read through the replaced engine v1 was answered');
    ctx.report(`through v1 after v2 started: write -> ${written}; read -> ${read}`);
    const v1Status = (await (await fetch(`${v1Url}/v1/status`)).json()) as { replicas: { mode: string; lastError: string | null }[] };
    ctx.expect(v1Status.replicas.every((r) => r.mode === 'err'), `v1 still has replicas in its write set: ${JSON.stringify(v1Status.replicas)}`);
    ctx.expect(v1Status.replicas.some((r) => /older than the accepted epoch/.test(r.lastError ?? '')), `v1 not fenced by epoch: ${JSON.stringify(v1Status.replicas)}`);
  } finally {
    held.destroy();
  }
  await v1.kill9();
  ctx.report('v1 killed');
}

async function crashMidSwitch(ctx: ScenarioContext): Promise<void> {
  const { cluster, workload } = ctx;
  const v1 = cluster.engine!;
  const held = await cluster.connect();
  const stage = killStages[ctx.seed % killStages.length]!;
  let v2: Daemon | null = null;
  try {
    const t0 = performance.now();
    await quiesce(ctx);
    await rm(cluster.socket, { force: true });
    const env = { UV_THREADPOOL_SIZE: String(dataProcessThreadPoolSize) };
    v2 = await startDaemon({ args: engineArgs(cluster), ...(stage.pattern === undefined ? {} : { readyPattern: stage.pattern }), env, timeoutMs: 60_000 });
    const delayMs = stage.pattern === undefined ? ctx.random.int(400) : 0;
    await sleep(delayMs);
    await v2.kill9();
    const v2Said = v2.output().trim().split('\n').slice(-2).join(' | ');
    ctx.report(`v2 killed ${stage.name} (+${delayMs} ms); its last lines: ${v2Said}`);
    // The old engine: fenced if v2 got as far as opening the replicas, otherwise still serving.
    const floors = workload.model.floors(0, 8);
    let readData: Uint8Array | undefined;
    const read = await nbdOutcome(async () => {
      readData = await held.read(0, 8 * sectorBytes);
    });
    if (readData !== undefined) workload.violations.push(...workload.model.checkRead({ data: readData, firstSector: 0, floors, endStamp: workload.stamp(), where: 'read through v1 after v2 died mid-switch' }));
    ctx.report(`a read through v1 after v2 died: ${read}`);
    // The fallback: a clean re-attach on a fresh engine (it fences v1, whatever v2 left behind).
    await rm(cluster.socket, { force: true });
    await cluster.startEngine();
    await reattach(ctx);
    ctx.report(`fallback re-attach on v3 (epoch ${await epochOf(cluster.controlUrl)}): pause ${(performance.now() - t0).toFixed(0)} ms`);
  } finally {
    held.destroy();
    await v2?.kill9();
  }
  await v1.kill9();
  const v1Said = v1.output().split('\n').filter((l) => /dropped|generation/.test(l)).slice(-3).join(' | ');
  if (v1Said !== '') ctx.report(`v1 meanwhile: ${v1Said}`);
  // A v2 killed while opening the replicas fences some of them only: v1 drops those and records a
  // generation without them on the rest (it may have acknowledged writes there), so v3 starts on
  // that newer generation and the others come back by rebuild, as the manager would do.
  const status = await cluster.status();
  const missing = cluster.replicas.filter((r) => status.replicas.find((s) => s.address === r.address)?.mode !== 'rw');
  if (missing.length > 0) ctx.report(`v3 started on ${status.replicas.filter((r) => r.mode === 'rw').length} replica(s) (generation ${status.generation}); rebuilding ${missing.map((r) => r.index).join(', ')}`);
  for (const replica of missing) {
    const rebuilt = await cluster.rebuild(replica);
    ctx.report(`replica ${replica.index} rebuilt: ${rebuilt.doneBytes} bytes sent, ${rebuilt.skippedBytes} matched`);
  }
}

export const engineSwitchScenarios: readonly ScenarioDefinition[] = [
  {
    id: 'S29',
    title: 'live engine replacement while writing: v2 next to v1, switch, kill v1; then v2 killed mid-switch and a clean re-attach',
    run: async (ctx) => {
      await ctx.workload.acknowledged(150 + ctx.random.int(200));
      await cleanSwitch(ctx);
      await ctx.workload.acknowledged(150 + ctx.random.int(200));
      await crashMidSwitch(ctx);
      await ctx.workload.acknowledged(150);
    },
  },
];
