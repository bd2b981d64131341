// Runs one fault scenario with one seed: start the processes, run the workload while the
// scenario injects its faults and heals them, then check the invariants (TESTING.md):
// 1. durability — every read, during the run and of the whole volume at the end, returns the
//    newest acknowledged version or a later one (checked per 512-byte sector by the model);
// 2. no fabrication — every sector is zeros or a version written to that sector of this volume;
//    repeated reads of the whole volume at the end return the same bytes;
// 3. convergence — after recovery every rw replica's flattened data (read offline from its files
//    after a clean stop) equals every other's, and each passes the same model check.
// On failure the history (JSONL), the process logs and the replica directories are kept and the
// error names the seed and the replay command.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeededRandom } from '../../src/lib/random.ts';
import { sectorBytes } from '../harness/self-describing-sector.ts';
import type { Violation } from '../sim/volume-model.ts';
import { stopAll, waitFor } from '../harness/daemon.ts';
import { ScenarioCluster, type ScenarioReplica } from './scenario-cluster.ts';
import { ScenarioWorkload, latencySummary, type WorkloadMix } from './scenario-workload.ts';
import type { NbdWorkloadClient } from './nbd-workload-client.ts';

export interface ScenarioContext {
  readonly seed: number;
  /** The scenario's own choices (when to inject, which replica): separate from the workload's. */
  readonly random: SeededRandom;
  readonly cluster: ScenarioCluster;
  readonly workload: ScenarioWorkload;
  /** A line for the scenario's report (printed on success too). */
  report(line: string): void;
  /** A failed expectation of the scenario itself (not an invariant of the data). */
  expect(condition: boolean, message: string): void;
}

export interface ScenarioDefinition {
  readonly id: string;
  readonly title: string;
  readonly replicaCount?: number;
  readonly sizeBytes?: number;
  readonly proxies?: boolean;
  /** The engine's --minimum-write-replicas (default 1). */
  readonly minimumWriteReplicas?: number;
  readonly threads?: number;
  readonly mix?: WorkloadMix;
  /** Disk fault config of replica `index` at its first start (address: what the engine calls it). */
  readonly faults?: (args: { seed: number; index: number; readSource: boolean }) => object | undefined;
  /** The client may see errors (e.g. every replica failed); by default any NBD error is a failure. */
  readonly clientErrorsAllowed?: boolean;
  /** rw replicas expected at the end (default: all of them). */
  readonly finalRw?: number;
  /**
   * Differences between rw replicas on sectors whose last write was in doubt at a crash are
   * reported as a known gap instead of a violation. The engine repairs them at start now (DESIGN
   * §2.8 rule 7; S02 checks strictly); kept for scenarios that still ask for it.
   */
  readonly inDoubtDifferencesAreKnownGap?: boolean;
  run(ctx: ScenarioContext): Promise<void>;
}

export interface ScenarioResult {
  readonly id: string;
  readonly seed: number;
  readonly violations: readonly Violation[];
  readonly knownGaps: readonly string[];
  readonly report: readonly string[];
  /** Where the evidence was kept (only when there were violations). */
  readonly keptDir: string | null;
}

export const replayCommand = (id: string, seed: number): string => `node dist/test/scenarios/run.js --scenario ${id} --seed ${seed}`;

export async function runScenario(def: ScenarioDefinition, seed: number): Promise<ScenarioResult> {
  const dir = await mkdtemp(join(tmpdir(), `shorthorn-${def.id}-${seed}-`));
  const sizeBytes = def.sizeBytes ?? 8 * 1024 * 1024;
  const replicaCount = def.replicaCount ?? 3;
  const violations: Violation[] = [];
  const knownGaps: string[] = [];
  const report: string[] = [];
  let cluster: ScenarioCluster | null = null;
  let workload: ScenarioWorkload | null = null;
  try {
    cluster = await ScenarioCluster.start({
      dir,
      volume: `vol-${def.id.toLowerCase()}`,
      sizeBytes,
      replicaCount,
      seed,
      proxies: def.proxies === true,
      ...(def.minimumWriteReplicas === undefined ? {} : { minimumWriteReplicas: def.minimumWriteReplicas }),
      faults: ({ index, readSource }) => def.faults?.({ seed, index, readSource }),
    });
    workload = new ScenarioWorkload({ seed, volumeName: cluster.volume, sectors: sizeBytes / sectorBytes, ...(def.mix === undefined ? {} : { mix: def.mix }) });
    const t0 = Date.now();
    const phase = (what: string): void => void report.push(`${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    workload.start(await cluster.connect(), def.threads ?? 4);
    const ctx: ScenarioContext = {
      seed,
      random: new SeededRandom(seed ^ 0x5eed),
      cluster,
      workload,
      report: (line) => {
        report.push(line);
        cluster?.note(line);
      },
      expect: (condition, message) => {
        if (!condition) violations.push({ invariant: 'internal', message: `scenario expectation: ${message}` });
      },
    };
    await def.run(ctx);
    phase('faults done');
    await workload.stop();
    phase('workload stopped');
    await finalChecks({ def, cluster, workload, violations, knownGaps, replicaCount, sizeBytes, phase });
    report.push(`workload: ${workload.stats.acked} acknowledged of ${workload.stats.issued} (${workload.stats.reads} reads, ${workload.stats.flushes} flushes, ${workload.stats.failed} failed, ${workload.stats.unknown} in doubt); ${latencySummary(workload.stats.latenciesMs)}`);
  } catch (error) {
    violations.push({ invariant: 'liveness', message: `scenario aborted: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}` });
  } finally {
    if (workload !== null) violations.push(...workload.violations);
    if (violations.length > 0) {
      await writeFile(join(dir, 'history.jsonl'), (workload?.history ?? []).map((e) => JSON.stringify(e)).join('\n') + '\n');
      await writeFile(join(dir, 'processes.log'), cluster?.describe() ?? 'no cluster');
    }
    // An aborted run (the scenario or a check threw) must still end the workload's client threads
    // and the daemons, or they keep the process alive (run.js never exited). stop() marks the
    // threads stopped at once; stopping the engine ends the requests they are waiting for.
    const threadsDone = workload?.stop();
    await stopWithin(cluster, abortStopMs).catch((error: unknown) => report.push(`clean stop failed: ${error instanceof Error ? error.message : String(error)}`));
    await threadsDone;
    if (violations.length === 0) await rm(dir, { recursive: true, force: true });
  }
  return { id: def.id, seed, violations, knownGaps, report, keptDir: violations.length > 0 ? dir : null };
}

/** How long an aborted run's clean stop may take before every daemon is killed. */
const abortStopMs = 30_000;

/** Stop the cluster cleanly, or kill every daemon this process started when that takes too long (a paused process). */
async function stopWithin(cluster: ScenarioCluster | null, timeoutMs: number): Promise<void> {
  if (cluster === null) return;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
  try {
    if ((await Promise.race([cluster.stop().then(() => 'stopped' as const), late])) === 'late') {
      await stopAll();
      throw new Error(`the cluster did not stop within ${timeoutMs} ms; every daemon killed`);
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The whole volume in 1 MiB reads, as a kernel client would split it: one 16 MiB read can take
 * longer than the replica request timeout on a loaded machine, and the engine then drops every
 * replica in turn, the last one included (seen here with load average 24; docs/reliability.md).
 */
async function readAll(client: NbdWorkloadClient, sizeBytes: number): Promise<Uint8Array> {
  const out = new Uint8Array(sizeBytes);
  const pieceBytes = 1024 * 1024;
  for (let at = 0; at < sizeBytes; at += pieceBytes) out.set(await client.read(at, Math.min(pieceBytes, sizeBytes - at)), at);
  return out;
}

async function finalChecks(args: {
  def: ScenarioDefinition;
  cluster: ScenarioCluster;
  workload: ScenarioWorkload;
  violations: Violation[];
  knownGaps: string[];
  replicaCount: number;
  sizeBytes: number;
  phase: (what: string) => void;
}): Promise<void> {
  const { def, cluster, workload, violations, knownGaps, sizeBytes, phase } = args;
  const model = workload.model;
  if (workload.clientErrors.length > 0 && def.clientErrorsAllowed !== true) {
    violations.push({ invariant: 'liveness', message: `${workload.clientErrors.length} client errors, e.g. ${workload.clientErrors.slice(0, 3).join('; ')}` });
  }
  // Everything acknowledged is now flushed; read the whole volume twice through the engine.
  const client = await cluster.connect();
  try {
    await client.flush();
    const floors = model.floors(0, model.sectors);
    phase('final flush done');
    const first = await readAll(client, sizeBytes);
    phase('final read done');
    violations.push(...model.checkRead({ data: first, firstSector: 0, floors, endStamp: workload.stamp(), where: 'final read via the engine' }));
    phase('final read checked');
    const second = await readAll(client, sizeBytes);
    if (!Buffer.from(first).equals(Buffer.from(second))) {
      violations.push({ invariant: '1 durability', message: 'two reads of the whole volume at the end differ' });
      // Reads are spread over the replicas: the second may have met a replica the first did not.
      violations.push(...model.checkRead({ data: second, firstSector: 0, floors, endStamp: workload.stamp(), where: 'second final read via the engine' }));
    }
  } finally {
    client.destroy();
  }
  // Replicas of one generation may differ after an engine crash until the new engine has compared
  // them with its read source (DESIGN §2.8 rule 7): wait for that, then they must be identical.
  const repair = await waitFor(
    'the comparison of the replicas after the engine start',
    async () => {
      const { json } = await cluster.control('GET', '/v1/status');
      type Progress = { state: string; chunksRepaired: number; chunksCompared: number; passes: number; startedMs: number; finishedMs: number | null; error: string | null };
      const progress = (json as { startRepair?: Progress | null }).startRepair;
      return progress !== undefined && progress !== null && progress.state !== 'comparing' ? progress : undefined;
    },
    120_000,
  );
  if (repair.state !== 'done') violations.push({ invariant: '3 convergence', message: `the comparison after start ended ${repair.state}: ${repair.error ?? ''}` });
  const tookMs = (repair.finishedMs ?? repair.startedMs) - repair.startedMs;
  phase(`comparison after start ${repair.state} (${repair.chunksCompared} chunks compared, ${repair.chunksRepaired} rewritten, ${repair.passes} pass(es), ${tookMs} ms)`);
  const status = await cluster.status();
  const rw = status.replicas.filter((r) => r.mode === 'rw').map((r) => cluster.replicas.find((x) => x.address === r.address)!);
  const expectedRw = def.finalRw ?? args.replicaCount;
  if (rw.length !== expectedRw) {
    violations.push({ invariant: 'liveness', message: `${rw.length} rw replicas at the end, expected ${expectedRw}: ${JSON.stringify(status.replicas)}` });
  }
  const floors = model.floors(0, model.sectors);
  await cluster.stop();
  phase('cluster stopped');
  const images: { replica: ScenarioReplica; data: Uint8Array }[] = [];
  for (const replica of rw) {
    const data = await ScenarioCluster.flattened(replica, sizeBytes);
    violations.push(...model.checkRead({ data, firstSector: 0, floors, endStamp: workload.stamp(), where: `replica ${replica.index} flattened` }));
    images.push({ replica, data });
  }
  phase('replicas read');
  const [base, ...others] = images;
  if (base === undefined) return;
  for (const other of others) {
    const differing: number[] = [];
    for (let s = 0; s < model.sectors; s++) {
      const a = base.data.subarray(s * sectorBytes, (s + 1) * sectorBytes);
      const b = other.data.subarray(s * sectorBytes, (s + 1) * sectorBytes);
      if (!Buffer.from(a).equals(Buffer.from(b))) differing.push(s);
    }
    if (differing.length === 0) continue;
    // Strict by default, sectors in doubt at a crash included: the engine repairs them at start (rule 7).
    const unexplained = def.inDoubtDifferencesAreKnownGap === true ? differing.filter((s) => !model.isIndeterminate(s)) : differing;
    if (unexplained.length > 0) {
      const inDoubt = differing.length - differing.filter((s) => !model.isIndeterminate(s)).length;
      violations.push({
        invariant: '3 convergence',
        message: `rw replicas ${base.replica.index} and ${other.replica.index} differ at ${unexplained.length} sectors (${inDoubt} in doubt at a crash), e.g. ${unexplained.slice(0, 6).join(', ')}; ${model.describe(unexplained[0]!)}`,
      });
    } else {
      knownGaps.push(`rw replicas ${base.replica.index} and ${other.replica.index} differ at ${differing.length} sectors whose last write was in doubt at a crash`);
    }
  }
}
