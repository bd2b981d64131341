// One simulated run from one seed: build the cluster, run the workload while a nemesis injects the
// seed's faults, then heal everything, end the run as the plan says (as it is, engine crash, or
// power loss of every machine), start again, and check: the whole volume read through the engine
// against the model (invariants 1 and 2), every rw replica's flattened data against the model and
// against each other (3), every acknowledged snapshot present and every replica reopening cleanly
// (5), and no operation on a live engine hanging (liveness).
import { ShorthornError } from '../../src/lib/errors.ts';
import { volumeTagOf, sectorBytes } from '../harness/self-describing-sector.ts';
import { SimCluster } from './sim-cluster.ts';
import { noDiskFaults } from './sim-disk.ts';
import type { PlantedLinkBug } from './sim-replica-link.ts';
import { describePlan, drawPlan, type Nemesis, type SimPlan } from './sim-plan.ts';
import { SimScheduler, SimStuck } from './sim-scheduler.ts';
import { Workload, type WorkloadStats } from './sim-workload.ts';
import { VolumeModel, type Violation } from './volume-model.ts';
import type { SimReplicaNode } from './sim-replica-node.ts';

function errorCode(error: unknown): string | undefined {
  return error instanceof ShorthornError ? String((error as ShorthornError<string>).code) : undefined;
}

export interface SimOptions {
  readonly seed: number;
  /** Operations in the workload (default: drawn from the seed). */
  readonly ops?: number;
  /** No faults at all (for tests of the checker's planted bugs on quiet runs). */
  readonly quiet?: boolean;
  /** Keep every trace line (replays); otherwise only the last few hundred. */
  readonly traceAll?: boolean;
  /** A planted defect in the link to one replica, to show the checker catches it. */
  readonly bug?: { readonly link: PlantedLinkBug; readonly replica: number };
}

export interface SimResult {
  readonly seed: number;
  readonly plan: string;
  readonly violations: readonly Violation[];
  /** Differences the design allows today but should not in the end (see docs/reliability.md). */
  readonly knownGaps: readonly string[];
  readonly stats: WorkloadStats & { events: number; simMs: number; engineStarts: number; faults: number };
  readonly trace: string;
}

const volumeName = 'simvol';

export async function runSimulation(options: SimOptions): Promise<SimResult> {
  const sim = new SimScheduler(options.seed, { traceAll: options.traceAll ?? false });
  const plan = drawPlan(sim.random, { ...(options.ops === undefined ? {} : { ops: options.ops }), quiet: options.quiet ?? false });
  const run = new SimRun(sim, plan, options);
  sim.trace(`seed ${options.seed}: ${describePlan(plan)}`);
  try {
    await run.execute();
  } catch (error) {
    // A stuck run is a liveness failure; anything else thrown is a failure of the run itself,
    // reported with the seed and trace like any violation.
    if (error instanceof SimStuck) run.violations.push({ invariant: 'liveness', message: error.message });
    else run.violations.push({ invariant: 'internal', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  }
  for (const message of sim.taskErrors) run.violations.push({ invariant: 'internal', message });
  for (const node of run.cluster.nodes) for (const message of node.problems) run.violations.push({ invariant: '5 crash atomicity', message });
  for (const v of run.violations) sim.trace(`VIOLATION ${v.invariant}: ${v.message}`);
  return {
    seed: options.seed,
    plan: describePlan(plan),
    violations: run.violations,
    knownGaps: run.knownGaps,
    stats: { ...run.workload.stats, events: sim.eventCount, simMs: Math.round(sim.nowMs), engineStarts: run.cluster.engineStarts, faults: run.faults },
    trace: sim.traceText(),
  };
}

class SimRun {
  readonly sim: SimScheduler;
  readonly plan: SimPlan;
  readonly cluster: SimCluster;
  readonly model: VolumeModel;
  readonly workload: Workload;
  readonly violations: Violation[] = [];
  readonly knownGaps: string[] = [];
  faults = 0;
  private crashes = 0;
  private workDone = false;
  private partitionFreeUntilMs = 0;

  constructor(sim: SimScheduler, plan: SimPlan, options: SimOptions) {
    this.sim = sim;
    this.plan = plan;
    this.cluster = new SimCluster(sim, {
      volumeName,
      sizeBytes: plan.sizeBytes,
      replicaCount: plan.replicaCount,
      timeoutMs: plan.timeoutMs,
      minimumWriteReplicas: plan.minimumWriteReplicas,
      ...(options.bug === undefined ? {} : { bug: options.bug }),
    });
    this.model = new VolumeModel({ sectors: plan.sizeBytes / sectorBytes, volumeTag: volumeTagOf(volumeName), writer: 7 });
    this.workload = new Workload(
      { sim, cluster: this.cluster, model: this.model, violations: this.violations, engineTrouble: () => this.engineTrouble(), hangMs: 40 * plan.timeoutMs },
      plan.ops,
    );
    this.cluster.onEngineStarted = (amnesia) => {
      if (amnesia) this.model.amnesia();
    };
  }

  async execute(): Promise<void> {
    const { sim, cluster, plan } = this;
    await sim.settle(cluster.create(), 'replicas to be created');
    const started = await sim.settle(cluster.startEngine(), 'the first engine');
    if (!started.ok || started.value === null) throw new Error('the first engine did not start on fresh replicas');
    for (const node of cluster.nodes) {
      node.disk.faults = plan.disk;
    }
    cluster.network.faults = plan.network;
    let threadsDone = 0;
    for (let t = 0; t < plan.concurrency; t++) {
      sim.spawn(`client ${t}`, async () => {
        await this.workload.thread(t);
        threadsDone++;
      });
    }
    if (plan.nemeses.length > 0) sim.spawn('nemesis', () => this.nemesis());
    await sim.runUntil(() => threadsDone === plan.concurrency || this.workload.stopped, 'the workload to finish');
    this.workDone = true;
    if (this.workload.stopped) return;
    await this.finish();
  }

  private engineTrouble(): void {
    const engine = this.cluster.engine;
    if (engine === null) return;
    const rw = engine.status().replicas.filter((r) => r.mode === 'rw').length;
    // An engine left with no rw replica can do nothing: a supervisor (the manager, one day)
    // replaces it, and the new one starts on the newest generation. With fewer rw replicas than
    // its minimum it still serves reads; only a rebuild can bring it back to its minimum.
    if (rw === 0) {
      this.cluster.crashEngine('no rw replica left: replaced by the supervisor');
      this.restartEngineSoon();
    }
  }

  /** Start a new engine after a short pause, retrying while faults make it fail. */
  private restartEngineSoon(): void {
    const { sim, cluster } = this;
    if (cluster.restarting) return;
    cluster.restarting = true;
    sim.spawn('engine restart', async () => {
      try {
        for (let attempt = 0; attempt < 50; attempt++) {
          // Back off: a partition may take a few seconds to heal.
          await this.sleep(5 + sim.random.next() * 50 + attempt * 20);
          const started = await cluster.startEngine();
          if (started !== null) return;
          // A replica that failed its start (a failed fsync, say) is restarted by its supervisor.
          const up = cluster.nodes.filter((n) => n.state === 'up' && !cluster.network.isPartitioned(n.address));
          if (up.length > 0 && sim.random.next() < 0.5) sim.random.pick(up).kill('restarted after a failed engine start');
        }
        this.violations.push({ invariant: 'liveness', message: 'no engine could start in 50 attempts' });
        this.workload.stopped = true;
      } finally {
        cluster.restarting = false;
      }
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.sim.schedule(ms, 'sleep', resolve));
  }

  private async nemesis(): Promise<void> {
    const { sim, cluster, plan } = this;
    while (!this.workDone && !this.workload.stopped) {
      await this.sleep(5 + sim.random.next() * 100);
      if (this.workDone || this.workload.stopped) return;
      const nemesis: Nemesis = sim.random.pick(plan.nemeses);
      const crashing = nemesis !== 'partition' && nemesis !== 'reset';
      if (crashing && this.crashes >= plan.crashesMax) continue;
      const up = cluster.nodes.filter((n) => n.state === 'up');
      this.faults++;
      switch (nemesis) {
        case 'replica-kill':
        case 'replica-power-loss': {
          if (up.length === 0) continue;
          this.crashes++;
          const node = sim.random.pick(up);
          if (nemesis === 'replica-kill') node.kill('killed (kill -9)');
          else node.powerLoss('lost power');
          const downMs = 5 + sim.random.next() * 100;
          sim.spawn(`${node.address} restart`, async () => {
            await this.sleep(downMs);
            await node.start();
          });
          break;
        }
        case 'engine-crash':
          if (cluster.engine === null) continue;
          this.crashes++;
          cluster.crashEngine('killed (kill -9)');
          this.restartEngineSoon();
          break;
        case 'cluster-power-loss':
          this.crashes++;
          cluster.crashEngine('power loss of every machine');
          for (const node of up) node.powerLoss('lost power with every machine');
          this.restartEngineSoon();
          break;
        case 'partition': {
          // One partition at a time, most shorter than the request timeout, and after each the
          // network stays whole at least twice as long: a network that is never whole tests
          // nothing but the supervisor's patience.
          if (sim.nowMs < this.partitionFreeUntilMs) continue;
          // S09 (docs/engine.md "Quorum start"): with a minimum of 2 write replicas, sometimes one
          // replica is cut off for long and the engine is replaced meanwhile (its host was cut off
          // with that replica: the supervisor moves it). The new engine starts while that member
          // is unreachable, by the quorum rule. Only these plans draw the extra number, so the
          // other seeds keep their paths.
          if (plan.minimumWriteReplicas > 1 && cluster.nodes.length >= 3 && this.crashes < plan.crashesMax && sim.random.next() < 0.3) {
            const isolatedMs = (3 + sim.random.next() * 3) * plan.timeoutMs;
            this.partitionFreeUntilMs = sim.nowMs + 2 * isolatedMs;
            this.crashes++;
            cluster.network.partition(sim.random.pick(cluster.nodes).address, isolatedMs);
            const afterMs = sim.random.next() * 2 * plan.timeoutMs;
            sim.spawn('engine cut off', async () => {
              await this.sleep(afterMs);
              cluster.crashEngine('its host was cut off with one replica: replaced by the supervisor');
              this.restartEngineSoon();
            });
            break;
          }
          const durationMs = 10 + sim.random.next() * 1.5 * plan.timeoutMs;
          this.partitionFreeUntilMs = sim.nowMs + 3 * durationMs;
          cluster.network.partition(sim.random.pick(cluster.nodes).address, durationMs);
          break;
        }
        case 'reset':
          if (up.length > 0) cluster.resetConnection(sim.random.pick(up));
          break;
        default:
          throw new Error(`unknown nemesis ${String(nemesis)}`);
      }
    }
  }

  /** Heal, end the run as planned, start again, and check everything. */
  private async finish(): Promise<void> {
    const { sim, cluster, plan, model } = this;
    await sim.runUntil(() => !cluster.restarting, 'the engine restart to finish');
    cluster.network.healAll();
    for (const node of cluster.nodes) node.disk.faults = noDiskFaults;
    sim.trace(`final: ${plan.finalMode}`);
    if (plan.finalMode === 'engine-crash') cluster.crashEngine('final crash');
    if (plan.finalMode === 'cluster-power-loss') {
      cluster.crashEngine('final power loss');
      for (const node of cluster.nodes) if (node.state === 'up') node.powerLoss('final power loss');
    }
    // Start what is down; replace an engine left without enough rw replicas. A ping first drops
    // replicas whose process died unnoticed, as the engine's pinger would.
    for (let attempt = 0; ; attempt++) {
      if (attempt === 6) {
        this.violations.push({ invariant: 'liveness', message: 'no engine could serve after every fault was healed' });
        return;
      }
      for (const node of cluster.nodes) if (node.state === 'down') await sim.settle(node.start(), `${node.address} to start`);
      if (cluster.engine === null) await sim.settle(cluster.startEngine(), 'the final engine start');
      const engine = cluster.engine;
      if (engine === null) continue;
      await sim.settle(engine.pingAll(), 'a ping of every replica');
      const rw = cluster.rwAddresses().length;
      if (rw < plan.minimumWriteReplicas && rw > 0) this.knownGaps.push(`${rw} rw replicas, fewer than the minimum ${plan.minimumWriteReplicas}: writes and reads (read lease) fail until a rebuild`);
      if (rw > 0) break;
      cluster.crashEngine('no rw replica at the end: replaced');
    }
    const engine = cluster.engine!;
    // The replicas converge once the comparison after the engine's start is over (rule 7).
    await sim.settle(engine.whenStartRepairDone(), 'the comparison of the replicas after start');
    const repair = engine.status().startRepair;
    if (repair !== null && repair.state !== 'done') sim.trace(`start repair ${repair.state}: ${repair.error ?? ''}`);
    const floors = model.floors(0, model.sectors);
    // Below its minimum of write replicas the engine serves no read (engine/read-lease.ts): the
    // rw replicas' own data is still checked against the model below (checkReplicas).
    const belowMinimum = cluster.rwAddresses().length < plan.minimumWriteReplicas;
    const read = belowMinimum ? null : await sim.settle(engine.read(0, plan.sizeBytes), 'the final read');
    if (read === null) {
      sim.trace('final read via the engine skipped: fewer rw replicas than the minimum');
    } else if (!read.ok) {
      this.violations.push({ invariant: 'liveness', message: `the final read failed: ${String(read.error)}` });
    } else {
      this.violations.push(...model.checkRead({ data: read.value, firstSector: 0, floors, endStamp: sim.stamp(), where: 'final read via engine' }));
    }
    await this.checkReplicas(floors);
  }

  private async readFlattened(node: SimReplicaNode): Promise<{ ok: true; value: Uint8Array } | { ok: false; error: unknown } | null> {
    const store = node.runningStore();
    if (store === null) return null;
    return this.sim.settle(store.read(0, this.plan.sizeBytes), `${node.address} flattened read`);
  }

  /** Every replica's flattened data: rw ones against the model and each other, the rest for fabrication. */
  private async checkReplicas(floors: Int32Array): Promise<void> {
    const { sim, cluster, model } = this;
    const rw = new Set(cluster.rwAddresses());
    const images: { address: string; data: Uint8Array; snapshots: string[] }[] = [];
    for (const node of cluster.nodes) {
      let read = await this.readFlattened(node);
      if (read !== null && !read.ok && !rw.has(node.address) && errorCode(read.error) === 'failed') {
        // A stale replica that failed a flush refuses everything until its process is restarted
        // (as a supervisor would): restart it, which also checks that it reopens cleanly.
        node.kill('restarted: its store had failed');
        await sim.settle(node.start(), `${node.address} to restart`);
        read = await this.readFlattened(node);
      }
      if (read === null) continue;
      if (!read.ok) {
        this.violations.push({ invariant: '5 crash atomicity', message: `${node.address}: cannot read its data: ${String(read.error)}` });
        continue;
      }
      const store = node.runningStore()!;
      const isRw = rw.has(node.address);
      // Stale replicas may hold any version ever written, but nothing else.
      const where = `${node.address} (${isRw ? 'rw' : 'stale'}) flattened`;
      this.violations.push(...model.checkRead({ data: read.value, firstSector: 0, floors: isRw ? floors : new Int32Array(model.sectors), endStamp: sim.stamp(), where }));
      if (isRw) images.push({ address: node.address, data: read.value, snapshots: store.chain().snapshots.map((s) => s.name) });
    }
    for (const image of images) {
      const missing = this.workload.ackedSnapshots.filter((name) => !image.snapshots.includes(name));
      if (missing.length > 0) this.violations.push({ invariant: '5 crash atomicity', message: `${image.address} lacks acknowledged snapshots ${missing.join(', ')}` });
    }
    const [first, ...others] = images;
    if (first === undefined) return;
    for (const other of others) {
      const differing: number[] = [];
      for (let s = 0; s < model.sectors; s++) {
        const a = first.data.subarray(s * sectorBytes, (s + 1) * sectorBytes);
        const b = other.data.subarray(s * sectorBytes, (s + 1) * sectorBytes);
        if (!a.every((byte, i) => byte === b[i])) differing.push(s);
      }
      // Strict: after the comparison and repair at start (DESIGN §2.8 rule 7) the rw replicas hold
      // the same data even where a write was in doubt at a crash.
      if (differing.length > 0) {
        const inDoubt = model.isIndeterminate(differing[0]!) ? ' (a write there was in doubt at a crash)' : '';
        this.violations.push({
          invariant: '3 convergence',
          message: `rw replicas ${first.address} and ${other.address} differ at ${differing.length} sectors, e.g. ${differing.slice(0, 8).join(', ')}${inDoubt}; ${model.describe(differing[0]!)}`,
        });
      }
      if (first.snapshots.join() !== other.snapshots.join()) {
        this.knownGaps.push(`rw replicas differ in snapshots: ${first.snapshots.join(',')} vs ${other.snapshots.join(',')}`);
      }
    }
  }
}
