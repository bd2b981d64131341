// Scenario S09 (reliability notes §7.3; Longhorn #6277, #11271): split brain. The engine's host is
// cut off from the manager and from two of three replicas, but not from its local replica. The
// harness plays the manager: it starts a new engine on the other side. With a minimum of 2 write
// replicas:
//   1. the old engine loses r2 and r3 (their proxies blackhole its connections; new connections
//      pass, so the other side still reaches them) and keeps r1 (whose proxy now refuses new
//      connections: the other side cannot reach it). From then on it acknowledges no write;
//   2. a new engine on all three addresses refuses to start with the minimum at 1 (r1 may have
//      gone on alone) and starts on r2, r3 with it at 2: the quorum rule (engine/start-choice.ts),
//      with a higher epoch;
//   3. the client moves to the new engine; heal; r1 is rebuilt from the new set, and from then on
//      r1 refuses the old engine (stale epoch);
//   4. the usual checks: no acknowledged write lost (the model), no fabrication, replicas agree.
// The probe client also reads: the old engine must refuse reads (EIO, its read lease, engine/
// read-lease.ts) by the time the new engine serves, which waits out that lease first.
// A probe client held on the old engine writes sectors of a writer the workload never uses: such
// a write must fail, and if it landed anywhere the final checks would find it.
import { rm } from 'node:fs/promises';
import { waitFor, type Daemon } from '../harness/daemon.ts';
import { encodeSector, sectorBytes } from '../harness/self-describing-sector.ts';
import { nbdOutcome, type NbdWorkloadClient } from './nbd-workload-client.ts';
import { pingIntervalMs, requestTimeoutMs, type ScenarioCluster, type ScenarioReplica } from './scenario-cluster.ts';
import type { HistoryEntry } from './scenario-workload.ts';
import type { ScenarioContext, ScenarioDefinition } from './scenario-run.ts';

const probeWriter = 9;
/** The engines' read lease: the engine command's default, ping interval + request timeout. */
const readLeaseMs = pingIntervalMs + requestTimeoutMs;
const eio = /NBD error 5$/;
/** The old engine drops a blackholed replica within the request timeout plus a ping. */
const errWithinMs = requestTimeoutMs + pingIntervalMs + 5000;

interface EngineStatus {
  readonly epoch: number;
  readonly generation: number;
  readonly replicas: readonly { address: string; mode: string; lastError: string | null }[];
}

async function statusAt(controlUrl: string): Promise<EngineStatus> {
  const response = await fetch(`${controlUrl}/v1/status`);
  if (response.status !== 200) throw new Error(`engine status at ${controlUrl}: HTTP ${response.status}`);
  return (await response.json()) as EngineStatus;
}

const modeIn = (status: EngineStatus, replica: ScenarioReplica): string | undefined => status.replicas.find((r) => r.address === replica.address)?.mode;

async function probeWrite(ctx: ScenarioContext, client: NbdWorkloadClient, seq: number): Promise<string> {
  const sector = ctx.random.int(ctx.cluster.sizeBytes / sectorBytes);
  const data = new Uint8Array(sectorBytes);
  encodeSector(data, 0, { volumeTag: ctx.workload.model.volumeTag, sector, writer: probeWriter, seq, epoch: 99 });
  return nbdOutcome(() => client.write(sector * sectorBytes, data, { fua: true }));
}

const isMutation = (e: HistoryEntry): boolean => e.op !== 'read';

/** The start line of the cluster's current engine (start-choice.ts reason). */
function startLine(cluster: ScenarioCluster): string {
  return /start: generation .*/.exec(cluster.engine?.output() ?? '')?.[0] ?? '(no start line)';
}

/** Heal. The kept replica comes back into the new set by a rebuild that fences it with the new epoch. */
async function healAndCheckFence(ctx: ScenarioContext, args: { kept: ScenarioReplica; cut: readonly ScenarioReplica[]; held: NbdWorkloadClient; oldUrl: string }): Promise<void> {
  const { cluster } = ctx;
  const { kept, cut, held, oldUrl } = args;
  kept.proxy!.heal();
  for (const r of cut) r.proxy!.heal();
  const rebuilt = await cluster.rebuild(kept);
  ctx.report(`replica ${kept.index} rebuilt from the new set: ${rebuilt.doneBytes} bytes sent, ${rebuilt.skippedBytes} matched`);
  const afterHeal = await probeWrite(ctx, held, 2);
  ctx.expect(afterHeal !== 'ok', 'the old engine acknowledged a write after the heal');
  const fenced = await waitFor(
    'the old engine to lose replica r1 to the new epoch',
    async () => {
      const status = await statusAt(oldUrl);
      const r1 = status.replicas.find((r) => r.address === kept.address);
      return r1?.mode === 'err' ? r1 : undefined;
    },
    errWithinMs,
  );
  ctx.expect(/older than the accepted epoch/.test(fenced.lastError ?? ''), `replica ${kept.index} left the old engine, but not for its epoch: ${fenced.lastError ?? '?'}`);
  ctx.report(`after the heal the old engine's write -> ${afterHeal}; replica ${kept.index} refused it: ${fenced.lastError ?? '?'}`);
}

async function splitBrain(ctx: ScenarioContext): Promise<void> {
  const { cluster, workload } = ctx;
  const oldEngine: Daemon = cluster.engine!;
  const oldUrl = cluster.controlUrl;
  const oldEpoch = (await statusAt(oldUrl)).epoch;
  const kept = cluster.replicas[ctx.random.int(cluster.replicas.length)]!;
  const cut = cluster.replicas.filter((r) => r !== kept);
  const held = await cluster.connect();
  try {
    const readBefore = await nbdOutcome(() => held.read(0, sectorBytes));
    ctx.expect(readBefore === 'ok', `the old engine refused a read before the partition: ${readBefore}`);
    ctx.report(`partition: {old engine, replica ${kept.index}} | {replicas ${cut.map((r) => r.index).join(', ')}, new engine}`);
    kept.proxy!.refuseNew();
    for (const r of cut) r.proxy!.cutExisting();
    const t0 = performance.now();
    // The old engine's reads end within its lease (plus one renewal round that times out).
    const readRefused = await waitFor(
      'the old engine to refuse a read',
      async () => {
        const outcome = await nbdOutcome(() => held.read(0, sectorBytes));
        return outcome === 'ok' ? undefined : outcome;
      },
      // A read sent to a cut replica before the lease ran out waits a timeout, then the drop's record
      // another, then a renewal round a third.
      readLeaseMs + 3 * requestTimeoutMs + 5000,
    );
    ctx.expect(eio.test(readRefused), `the old engine's read failed, but not with EIO: ${readRefused}`);
    const refusedLine = /reads refused[^\n]*/.exec(oldEngine.output())?.[0] ?? '(no log line)';
    ctx.report(`old engine refuses reads ${(performance.now() - t0).toFixed(0)} ms after the partition (lease ${readLeaseMs} ms): ${refusedLine}`);
    await waitFor(
      'the old engine to drop the replicas it was cut off from',
      async () => {
        const status = await statusAt(oldUrl);
        return cut.every((r) => modeIn(status, r) === 'err') ? true : undefined;
      },
      errWithinMs,
    );
    // From here on the old engine has one rw replica, below its minimum of 2.
    const ackedBefore = new Set(workload.history.filter((e) => e.result === 'ok'));
    const historyAt = workload.history.length;
    ctx.report(`old engine lost replicas ${cut.map((r) => r.index).join(', ')} after ${(performance.now() - t0).toFixed(0)} ms`);
    const since = (result: HistoryEntry['result']): number => workload.history.slice(historyAt).filter((e) => isMutation(e) && e.result === result).length;
    // 20 writes (and flushes, trims) issued after the loss and answered: each must have failed.
    await waitFor('20 client writes to complete on the old engine', () => (since('error') + since('ok') >= 20 ? true : undefined), 30_000);
    const heldWrite = await probeWrite(ctx, held, 1);
    ctx.expect(heldWrite !== 'ok', 'the old engine acknowledged a probe write with one rw replica (minimum 2)');
    // Stop submitting to the old engine and let what is in flight there end.
    workload.detach();
    await waitFor('the workload to have nothing in flight', () => (workload.history.every((e) => e.result !== 'pending') ? true : undefined), 30_000);
    const lateAcks = workload.history.filter((e) => isMutation(e) && e.result === 'ok' && !ackedBefore.has(e));
    ctx.expect(lateAcks.length === 0, `the old engine acknowledged ${lateAcks.length} writes after it fell below its minimum, e.g. ${JSON.stringify(lateAcks.slice(0, 3))}`);
    const oldStatus = await statusAt(oldUrl);
    ctx.report(`old engine below its minimum: ${since('error')} client writes failed, ${lateAcks.length} acknowledged; probe write -> ${heldWrite}; generation ${oldStatus.generation}`);

    // The manager's move: a new engine on the other side, on every replica address.
    await rm(cluster.socket, { force: true });
    const strict = await cluster.startEngine({ minimumWriteReplicas: 1 }).then(
      () => 'started',
      (error: unknown) => (error instanceof Error ? error.message : String(error)),
    );
    ctx.expect(strict !== 'started' && /unreachable: it may hold a newer generation/.test(strict), `with minimum 1 the new engine did not refuse: ${strict.slice(-400)}`);
    if (strict === 'started') throw new Error('the new engine started with minimum 1 although a member was unreachable');
    ctx.report('new engine with minimum 1: refused (replica may have gone on alone)');
    await cluster.startEngine({ minimumWriteReplicas: 2 });
    const line = startLine(cluster);
    ctx.expect(/by quorum: 1 of 3 members missing/.test(line), `the new engine did not start by the quorum rule: ${line}`);
    // The new engine serves only now, after waiting out the old one's lease: a read there fails.
    const oldReadNow = await nbdOutcome(() => held.read(0, sectorBytes));
    ctx.expect(eio.test(oldReadNow), `the old engine served a read (${oldReadNow}) once the new engine was serving`);
    const waited = /by quorum without [^\n]*the old engine's read lease[^\n]*/.exec(cluster.engine?.output() ?? '')?.[0];
    ctx.expect(waited !== undefined, 'the new engine started by quorum without waiting out the read lease');
    ctx.report(`new engine ${waited ?? '(did not wait)'}; then the old engine's read -> ${oldReadNow}`);
    const fresh = await cluster.status();
    const rw = fresh.replicas.filter((r) => r.mode === 'rw').map((r) => r.address).sort();
    ctx.expect(JSON.stringify(rw) === JSON.stringify(cut.map((r) => r.address).sort()), `the new engine uses ${rw.join(', ')}, expected the replicas on its side`);
    const newEpoch = (await statusAt(cluster.controlUrl)).epoch;
    ctx.expect(newEpoch > oldEpoch, `new epoch ${newEpoch} is not above the old ${oldEpoch}`);
    ctx.report(`new engine (epoch ${oldEpoch} -> ${newEpoch}): ${line.replace(/^start: /, '')}`);
    workload.attach(await cluster.connect());
    await workload.acknowledged(100);

    await healAndCheckFence(ctx, { kept, cut, held, oldUrl });
  } finally {
    held.destroy();
    await oldEngine.kill9();
  }
  await workload.acknowledged(100);
}

/** Reads on the old engine's client: their outcomes ('ok' or the NBD error). */
function probeReads(held: NbdWorkloadClient, count: number): Promise<string[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => nbdOutcome(() => held.read(i * sectorBytes, sectorBytes))));
}

/**
 * S09p: the same partition, but the old engine's process is paused (SIGSTOP) through it: it sees
 * neither the cut nor the new engine, which starts by quorum and acknowledges writes meanwhile.
 * Reads sent to the old engine after that, queued while it is paused and sent once it runs
 * again, must all fail: its lease ran out while it was paused, and a renewal reaches only the
 * kept replica. Without the lease the reads that go to the kept replica are served at once (its
 * data older than the new engine's), before the old engine notices the cut replicas are gone.
 */
async function pausedSplitBrain(ctx: ScenarioContext): Promise<void> {
  const { cluster, workload } = ctx;
  const oldEngine: Daemon = cluster.engine!;
  const oldUrl = cluster.controlUrl;
  const kept = cluster.replicas[ctx.random.int(cluster.replicas.length)]!;
  const cut = cluster.replicas.filter((r) => r !== kept);
  const held = await cluster.connect();
  let paused = false;
  try {
    const before = await probeReads(held, 3);
    ctx.expect(before.every((o) => o === 'ok'), `the old engine refused reads before the partition: ${before.join(', ')}`);
    // Nothing of the workload in flight on the old engine while it is paused.
    workload.detach();
    await waitFor('the workload to have nothing in flight', () => (workload.history.every((e) => e.result !== 'pending') ? true : undefined), 30_000);
    process.kill(oldEngine.pid, 'SIGSTOP');
    paused = true;
    const pausedAt = performance.now();
    ctx.report(`old engine paused; partition: {old engine, replica ${kept.index}} | {replicas ${cut.map((r) => r.index).join(', ')}, new engine}`);
    kept.proxy!.refuseNew();
    for (const r of cut) r.proxy!.cutExisting();
    await rm(cluster.socket, { force: true });
    await cluster.startEngine({ minimumWriteReplicas: 2 });
    const line = startLine(cluster);
    ctx.expect(/by quorum: 1 of 3 members missing/.test(line), `the new engine did not start by the quorum rule: ${line}`);
    const waited = /by quorum without [^\n]*the old engine's read lease[^\n]*/.exec(cluster.engine?.output() ?? '')?.[0];
    ctx.expect(waited !== undefined, 'the new engine started by quorum without waiting out the read lease');
    workload.attach(await cluster.connect());
    await workload.acknowledged(100);
    ctx.report(`new engine ${waited ?? '(did not wait)'}; 100 writes acknowledged there`);
    // Reads the old engine's client sends now: three queued while it is paused, three after.
    const queued = probeReads(held, 3);
    process.kill(oldEngine.pid, 'SIGCONT');
    paused = false;
    const resumedAt = performance.now();
    const outcomes = [...(await queued), ...(await probeReads(held, 3))];
    const served = outcomes.filter((o) => !eio.test(o));
    ctx.expect(served.length === 0, `the old engine, resumed after ${((resumedAt - pausedAt) / 1000).toFixed(1)} s paused, answered ${served.length} of 6 reads other than with EIO: ${served.join(', ')}`);
    const refusedLine = /reads refused[^\n]*/.exec(oldEngine.output())?.[0] ?? '(no log line)';
    ctx.report(`old engine resumed after ${((resumedAt - pausedAt) / 1000).toFixed(1)} s paused: reads -> ${outcomes.map((o) => (eio.test(o) ? 'EIO' : o)).join(', ')} within ${(performance.now() - resumedAt).toFixed(0)} ms; ${refusedLine}`);
    await healAndCheckFence(ctx, { kept, cut, held, oldUrl });
  } finally {
    held.destroy();
    if (paused) process.kill(oldEngine.pid, 'SIGCONT');
    await oldEngine.kill9();
  }
  await workload.acknowledged(100);
}

export const splitBrainScenarios: readonly ScenarioDefinition[] = [
  {
    id: 'S09',
    title: 'split brain: the engine keeps its local replica only; a new engine starts on the other two by quorum (minimum 2 write replicas); the old one acknowledges nothing and is fenced after the heal',
    proxies: true,
    minimumWriteReplicas: 2,
    // The client's writes fail on the old engine once it is below its minimum.
    clientErrorsAllowed: true,
    run: async (ctx) => {
      await ctx.workload.acknowledged(150 + ctx.random.int(200));
      await splitBrain(ctx);
    },
  },
  {
    id: 'S09p',
    title: 'split brain with the old engine paused (SIGSTOP) through the partition and the new engine\'s first 100 writes: once resumed it serves no read (its read lease ran out)',
    proxies: true,
    minimumWriteReplicas: 2,
    clientErrorsAllowed: true,
    run: async (ctx) => {
      await ctx.workload.acknowledged(150 + ctx.random.int(200));
      await pausedSplitBrain(ctx);
    },
  },
];
