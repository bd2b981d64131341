// Scenario S30 (reliability notes §7.3): the randomized nemesis soak. For SOAK_SECONDS (default
// 60) it picks a fault every few seconds (5-30 s in runs of 10 minutes or more; 2-8 s in shorter
// ones) from the scenario library and runs it to the end — inject, hold, heal, bring the replica
// back by a rebuild — while the workload and its checker run throughout; faults overlap, but at
// most N-1 replicas are impaired at once and an engine kill waits until the actions in progress
// have ended (nemesis-plan.ts). Every choice comes from the scenario's seed (the replay is very likely, not
// certain, to take the same path: the processes are real). At the end every replica must be rw
// again and the usual checks run (scenario-run.ts).
//   replica faults: kill -9 + restart; SIGSTOP for 2×T_r; link delay 200 ± 100 ms; link blackhole
//   for 3×T_r; connection resets every 100-500 ms for 2×T_r; a disk fault config (write EIO
//   p=0.02, ENOSPC after N writes, or 20 ± 10 ms read latency) on a restart
//   engine: kill -9 and a new engine on the same replicas (the client re-attaches)
//   snapshots: create, and past three delete the oldest but one and purge (refusals by design
//   during a rebuild are fine)
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { SeededRandom } from '../../src/lib/random.ts';
import { waitFor } from '../harness/daemon.ts';
import { pingIntervalMs, requestTimeoutMs, type ScenarioReplica } from './scenario-cluster.ts';
import type { ScenarioContext, ScenarioDefinition } from './scenario-run.ts';
import { chooseAction, nextGapMs, type NemesisAction } from './nemesis-plan.ts';

/** A replica must leave the write set this long after a fault that needs a timeout (generous: loaded CI machines). */
const errWithinMs = 10 * (requestTimeoutMs + pingIntervalMs);
const rebuildAttemptsMax = 3;
const soakSecondsMax = 7 * 24 * 3600;

/** SOAK_SECONDS from the environment (default 60). */
export function soakSecondsFromEnv(): number {
  const text = process.env['SOAK_SECONDS'] ?? '60';
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 10 || value > soakSecondsMax) throw new Error(`SOAK_SECONDS=${text}: a whole number of seconds from 10 to ${soakSecondsMax}`);
  return value;
}

class Nemesis {
  readonly impaired = new Set<number>();
  engineRestarting = false;
  readonly counts = new Map<string, number>();
  private readonly started = performance.now();
  private rebuildChain: Promise<unknown> = Promise.resolve();
  private snapshots = 0;

  private readonly ctx: ScenarioContext;

  constructor(ctx: ScenarioContext) {
    this.ctx = ctx;
  }

  private log(line: string): void {
    this.ctx.report(`t=${((performance.now() - this.started) / 1000).toFixed(1)} s ${line}`);
  }

  private replica(index: number): ScenarioReplica {
    return this.ctx.cluster.replicas[index]!;
  }

  /** Run one action to its end (the caller did the bookkeeping that must happen before any await). */
  async perform(action: NemesisAction, random: SeededRandom): Promise<void> {
    this.counts.set(action.kind, (this.counts.get(action.kind) ?? 0) + 1);
    this.log(`${action.kind}${'replica' in action ? ` replica ${action.replica}` : ''}`);
    if (action.kind === 'snapshot') return this.snapshot();
    if (action.kind === 'engine-kill') return this.engineKill();
    return this.replicaFault(action.kind, this.replica(action.replica), random);
  }

  private async snapshot(): Promise<void> {
    const { cluster } = this.ctx;
    const name = `nemesis-${++this.snapshots}`;
    const created = await cluster.control('POST', '/v1/snapshots', { name });
    this.acceptable(created.status, `snapshot ${name}`, created.json);
    if (this.snapshots > 3) {
      const old = `nemesis-${this.snapshots - 2}`;
      const deleted = await cluster.control('DELETE', `/v1/snapshots/${old}`);
      this.acceptable(deleted.status, `delete ${old}`, deleted.json);
      const purged = await cluster.control('POST', '/v1/snapshots/purge', {});
      this.acceptable(purged.status, 'purge', purged.json);
    }
  }

  /** 200, or a refusal by design (400/404/409: a rebuild or another chain operation runs, a snapshot already gone). */
  private acceptable(status: number, what: string, json: unknown): void {
    if (status !== 200) this.log(`${what}: HTTP ${status} ${JSON.stringify(json)}`);
    this.ctx.expect(status === 200 || status === 400 || status === 404 || status === 409, `${what}: HTTP ${status} ${JSON.stringify(json)}`);
  }

  private async engineKill(): Promise<void> {
    const { cluster, workload } = this.ctx;
    try {
      await cluster.engine!.kill9();
      await rm(cluster.socket, { force: true });
      await cluster.startEngine();
      workload.attach(await cluster.connect());
    } finally {
      this.engineRestarting = false;
    }
  }

  private async replicaFault(kind: Exclude<NemesisAction['kind'], 'snapshot' | 'engine-kill'>, victim: ScenarioReplica, random: SeededRandom): Promise<void> {
    const { cluster } = this.ctx;
    try {
      switch (kind) {
        case 'kill':
          await victim.daemon!.kill9();
          await cluster.waitForMode(victim, 'err', errWithinMs);
          await sleep(random.int(5000)); // down for a while
          await cluster.startReplica(victim);
          break;
        case 'pause': {
          const pid = victim.daemon!.pid;
          process.kill(pid, 'SIGSTOP');
          try {
            await sleep(2 * requestTimeoutMs);
          } finally {
            process.kill(pid, 'SIGCONT');
          }
          break;
        }
        case 'delay':
          victim.proxy!.delay(200, 100);
          await sleep(5000 + random.int(5000));
          victim.proxy!.heal();
          break;
        case 'blackhole':
          victim.proxy!.blackhole();
          await sleep(3 * requestTimeoutMs);
          victim.proxy!.heal();
          break;
        case 'reset': {
          const until = performance.now() + 2 * requestTimeoutMs;
          while (performance.now() < until) {
            await sleep(100 + random.int(400));
            victim.proxy!.reset();
          }
          victim.proxy!.heal();
          break;
        }
        case 'disk':
          await this.diskFault(victim, random);
          break;
      }
      // Every fault but a delay takes the replica out of the write set; a delay may or may not.
      await this.backInWriteSet(victim, kind !== 'delay');
    } finally {
      this.impaired.delete(victim.index);
    }
  }

  /** Restart the replica with a disk fault config, try to rebuild it (may fail: the fault), then restart it clean. */
  private async diskFault(victim: ScenarioReplica, random: SeededRandom): Promise<void> {
    const { cluster } = this.ctx;
    const rules = [
      { op: 'write', type: 'eio', path: '.data', probability: 0.02 },
      { op: 'write', type: 'enospc', path: '.data', after: 50 + random.int(200) },
      { op: 'read', type: 'latency', delayMs: 20, jitterMs: 10 },
    ];
    const rule = rules[random.int(rules.length)]!;
    await victim.daemon!.kill9();
    await cluster.waitForMode(victim, 'err', errWithinMs);
    await cluster.startReplica(victim, { seed: random.int(1_000_000), rules: [rule] });
    const first = await this.rebuild(victim, 1).then(
      () => 'rebuilt',
      (error: unknown) => `rebuild failed: ${error instanceof Error ? error.message : String(error)}`,
    );
    this.log(`replica ${victim.index} with ${rule.type} on ${rule.op}: ${first}`);
    await sleep(2000 + random.int(4000)); // serve on the faulty disk for a while
    await victim.daemon!.kill9();
    await cluster.startReplica(victim);
  }

  /**
   * Bring the replica back: a fault that must have dropped it is waited for (a replica still rw
   * errWithinMs after such a fault fails the run), then rebuilt; after a delay it rode out
   * (still rw) there is nothing to do.
   */
  private async backInWriteSet(victim: ScenarioReplica, mustDrop: boolean): Promise<void> {
    if (mustDrop) await this.ctx.cluster.waitForMode(victim, 'err', errWithinMs);
    else if ((await this.ctx.cluster.modeOf(victim)) === 'rw') return;
    await this.rebuild(victim, rebuildAttemptsMax);
  }

  /** One rebuild at a time (the engine runs one); retried while another chain operation runs or after a failure. */
  private rebuild(victim: ScenarioReplica, attempts: number): Promise<void> {
    const run = async (): Promise<void> => {
      for (let attempt = 1; ; attempt++) {
        try {
          await waitFor(`the rebuild of replica ${victim.index} to be accepted`, async () => {
            const { status, json } = await this.ctx.cluster.control('POST', '/v1/rebuilds', { address: victim.address });
            if (status === 202) return true;
            if (status === 409 && /while|already/.test(JSON.stringify(json))) {
              if ((await this.ctx.cluster.modeOf(victim)) === 'rw') return true;
              return undefined;
            }
            throw new Error(`rebuild of replica ${victim.index}: HTTP ${status} ${JSON.stringify(json)}`);
          }, 120_000);
          if ((await this.ctx.cluster.modeOf(victim)) !== 'rw') {
            const done = await this.ctx.cluster.waitForRebuild(victim);
            this.log(`replica ${victim.index} rebuilt: ${done.doneBytes} bytes sent, ${done.skippedBytes} matched`);
          }
          return;
        } catch (error) {
          if (attempt >= attempts) throw error;
          this.log(`replica ${victim.index}: ${error instanceof Error ? error.message : String(error)}; again`);
        }
      }
    };
    const result = this.rebuildChain.then(run);
    this.rebuildChain = result.catch(() => undefined);
    return result;
  }

  async soak(soakSeconds: number): Promise<void> {
    const { ctx } = this;
    const deadline = performance.now() + soakSeconds * 1000;
    const running = new Set<Promise<void>>();
    const failures: string[] = [];
    while (performance.now() < deadline && failures.length === 0 && ctx.workload.violations.length === 0) {
      await sleep(Math.min(nextGapMs(ctx.random, soakSeconds), Math.max(0, deadline - performance.now())));
      if (performance.now() >= deadline) break;
      const action = chooseAction(ctx.random, { replicaCount: ctx.cluster.replicas.length, impaired: this.impaired, engineRestarting: this.engineRestarting });
      if (action === null) continue;
      // An engine kill comes once everything in progress has ended (nemesis-plan.ts).
      if (action.kind === 'engine-kill') await Promise.all(running);
      if (failures.length > 0) break;
      // Bookkeeping before any await, so that the next choice sees it.
      if ('replica' in action) this.impaired.add(action.replica);
      if (action.kind === 'engine-kill') this.engineRestarting = true;
      // Each action draws from its own generator, so that how long other actions take does not
      // shift its choices (the loop's own draws still depend on what is impaired when it looks).
      const actionRandom = new SeededRandom(ctx.random.int(2 ** 31));
      const done: Promise<void> = this.perform(action, actionRandom)
        .catch((error: unknown) => void failures.push(`${action.kind}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`))
        .finally(() => running.delete(done));
      running.add(done);
    }
    await Promise.all(running);
    ctx.report(`nemesis: ${[...this.counts].map(([k, n]) => `${k} ${n}`).join(', ')}`);
    if (failures.length > 0) throw new Error(`nemesis actions failed:\n${failures.join('\n')}`);
  }
}

export function nemesisScenario(soakSeconds: number): ScenarioDefinition {
  return {
    id: 'S30',
    title: `randomized nemesis soak for ${soakSeconds} s (replica kill, pause, link delay/blackhole/reset, disk faults, engine kill, snapshots; at most N-1 replicas impaired)`,
    proxies: true,
    run: async (ctx) => {
      await ctx.workload.acknowledged(100);
      await new Nemesis(ctx).soak(soakSeconds);
      await ctx.workload.acknowledged(100);
    },
  };
}

export const nemesisScenarios: readonly ScenarioDefinition[] = [nemesisScenario(soakSecondsFromEnv())];
