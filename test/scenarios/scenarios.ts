// The fault scenarios on real processes (reliability notes §7.3), engine + 3 replicas: what each
// injects and what it expects beyond the invariants every run checks (scenario-run.ts). Times are
// fault durations (how long a partition lasts), never stand-ins for a condition: conditions are
// polled with a deadline (waitFor).
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../harness/daemon.ts';
import { pingIntervalMs, requestTimeoutMs, type ScenarioCluster, type ScenarioReplica } from './scenario-cluster.ts';
import type { ScenarioContext, ScenarioDefinition } from './scenario-run.ts';
import { defaultMix } from './scenario-workload.ts';
import { corruptReadScenario } from './planted-scenarios.ts';
import { identityScenarios } from './identity-scenarios.ts';
import { chainOpScenarios } from './chain-op-scenarios.ts';
import { expandScenarios } from './expand-scenarios.ts';
import { bitrotScenarios } from './bitrot-scenarios.ts';
import { salvageScenarios } from './salvage-scenarios.ts';
import { splitBrainScenarios } from './split-brain-scenarios.ts';
import { engineSwitchScenarios } from './engine-switch-scenarios.ts';
import { nemesisScenarios } from './nemesis-scenarios.ts';
import { clockScenarios } from './clock-scenarios.ts';

/** How long a replica may take to leave the write set after a fault that needs a timeout. */
const errWithinMs = requestTimeoutMs + pingIntervalMs + 1000;

function pick(ctx: ScenarioContext, replicas: readonly ScenarioReplica[]): ScenarioReplica {
  return replicas[ctx.random.int(replicas.length)]!;
}

/** Kill -9 a replica process (its files stay) and restart it on the same port without faults. */
async function restartClean(cluster: ScenarioCluster, replica: ScenarioReplica): Promise<void> {
  await replica.daemon?.kill9();
  replica.daemon = null;
  await cluster.startReplica(replica);
}

/** Wait for the replica to leave the write set; report how long it took. */
async function expectErr(ctx: ScenarioContext, replica: ScenarioReplica, withinMs: number): Promise<void> {
  const tookMs = await ctx.cluster.waitForMode(replica, 'err', withinMs);
  ctx.report(`replica ${replica.index} err after ${tookMs} ms`);
}

/** A disk fault on one replica: it must leave the write set with no client error, then come back by rebuild. */
function diskFaultScenario(args: {
  id: string;
  title: string;
  rules: (ctx: { seed: number }) => object;
  onReadSource?: boolean;
  /** The daemon's log line that proves the fault fired. */
  fired: RegExp;
  /** What to check once the replica has left the write set, before it is restarted. */
  whileErr?: (ctx: ScenarioContext, victim: ScenarioReplica) => Promise<void>;
}): ScenarioDefinition {
  let victimIndex = -1;
  return {
    id: args.id,
    title: args.title,
    faults: ({ seed, index, readSource }) => {
      const chosen = args.onReadSource === true ? readSource : index === seed % 3;
      if (!chosen) return undefined;
      victimIndex = index;
      return args.rules({ seed });
    },
    run: async (ctx) => {
      const victim = ctx.cluster.replicas[victimIndex]!;
      await expectErr(ctx, victim, 60_000);
      await ctx.workload.acknowledged(100);
      ctx.expect(args.fired.test(victim.daemon?.output() ?? ''), `replica ${victim.index}: no log line matches ${String(args.fired)}: the fault never fired`);
      await args.whileErr?.(ctx, victim);
      await restartClean(ctx.cluster, victim);
      const rebuilt = await ctx.cluster.rebuild(victim);
      ctx.report(`replica ${victim.index} rebuilt: ${rebuilt.doneBytes} bytes sent, ${rebuilt.skippedBytes} matched`);
      await ctx.workload.acknowledged(100);
    },
  };
}

export const scenarios: readonly ScenarioDefinition[] = [
  {
    id: 'S00',
    title: 'no faults (baseline of the workload and the checker)',
    run: async (ctx) => {
      await ctx.workload.acknowledged(300);
    },
  },
  {
    id: 'S01',
    title: 'kill -9 one replica during random writes; it returns and is rebuilt',
    run: async (ctx) => {
      const { cluster, workload } = ctx;
      await workload.acknowledged(100 + ctx.random.int(200));
      const victim = pick(ctx, cluster.replicas);
      await victim.daemon!.kill9();
      ctx.report(`killed replica ${victim.index}`);
      await expectErr(ctx, victim, errWithinMs);
      await workload.acknowledged(150);
      await cluster.startReplica(victim);
      const rebuilt = await cluster.rebuild(victim);
      ctx.report(`returning replica ${victim.index}: ${rebuilt.doneBytes} bytes sent, ${rebuilt.skippedBytes} matched`);
      await workload.acknowledged(100);
    },
  },
  {
    id: 'S02',
    title: 'kill -9 the engine mid-write; a new engine starts on the same replicas',
    run: async (ctx) => {
      const { cluster, workload } = ctx;
      for (let round = 0; round < 2; round++) {
        await workload.acknowledged(100 + ctx.random.int(200));
        await cluster.engine!.kill9();
        ctx.report(`engine killed (round ${round + 1})`);
        await rm(cluster.socket, { force: true });
        await cluster.startEngine();
        workload.attach(await cluster.connect());
      }
      await workload.acknowledged(150);
    },
  },
  {
    id: 'S05',
    title: 'a replica crashes at a named point inside a snapshot (fault point → SIGKILL); reopens, rebuilt',
    faults: ({ seed, index }) => (index === seed % 3 ? { seed, crashAtPoints: [['snapshot:extents-written', 'snapshot:head-created', 'snapshot:committed'][seed % 3]!] } : undefined),
    run: async (ctx) => {
      const { cluster, workload } = ctx;
      const victim = cluster.replicas[ctx.seed % 3]!;
      await workload.acknowledged(100 + ctx.random.int(200));
      const snap = await cluster.control('POST', '/v1/snapshots', { name: 'crash-point' });
      ctx.report(`snapshot with replica ${victim.index} crashing inside it: HTTP ${snap.status}`);
      const child = victim.daemon!.child;
      await waitFor(`replica ${victim.index} to crash at its fault point`, () => (child.exitCode !== null || child.signalCode !== null ? true : undefined), 30_000);
      ctx.expect(/fault: crash \(fault point snapshot:/.test(victim.daemon!.output()), `replica ${victim.index} did not crash at its fault point`);
      await expectErr(ctx, victim, errWithinMs);
      await workload.acknowledged(100);
      // It must reopen on its files (old chain or new, never half) and then be rebuilt.
      victim.daemon = null;
      await cluster.startReplica(victim);
      const rebuilt = await cluster.rebuild(victim);
      ctx.report(`replica ${victim.index} reopened after the crash and was rebuilt: ${rebuilt.doneBytes} bytes sent, ${rebuilt.skippedBytes} matched`);
      await workload.acknowledged(100);
    },
  },
  {
    id: 'S06',
    title: 'SIGSTOP one replica for 2×T_r (a zombie), then SIGCONT; it stays out until rebuilt',
    run: async (ctx) => {
      const { cluster, workload } = ctx;
      await workload.acknowledged(100 + ctx.random.int(200));
      const victim = pick(ctx, cluster.replicas);
      const stoppedAt = Date.now();
      process.kill(victim.daemon!.pid, 'SIGSTOP');
      ctx.report(`stopped replica ${victim.index}`);
      await expectErr(ctx, victim, errWithinMs);
      await sleep(Math.max(0, 2 * requestTimeoutMs - (Date.now() - stoppedAt)));
      process.kill(victim.daemon!.pid, 'SIGCONT');
      // It answers again, but whatever it does with the requests it held must not bring it back.
      await workload.acknowledged(150);
      ctx.expect((await cluster.modeOf(victim)) === 'err', `replica ${victim.index} came back without a rebuild`);
      const rebuilt = await cluster.rebuild(victim);
      ctx.report(`replica ${victim.index} rebuilt: ${rebuilt.doneBytes} bytes sent`);
      await workload.acknowledged(100);
    },
  },
  {
    id: 'S07',
    title: 'slow replica: 200 ± 100 ms each way on one link; nobody fails while latency < T_r',
    proxies: true,
    threads: 8,
    // Some writes longer than one socket read: their frames cross the delayed link in pieces,
    // which must arrive in order (the proxy once reordered them: the replica hung up).
    mix: { ...defaultMix, largeWrites: 0.2 },
    run: async (ctx) => {
      const { cluster, workload } = ctx;
      await workload.acknowledged(100);
      const victim = pick(ctx, cluster.replicas);
      victim.proxy!.delay(200, 100);
      ctx.report(`replica ${victim.index} slowed`);
      const before = workload.stats.latenciesMs.length;
      await workload.acknowledged(100, 120_000);
      const status = await cluster.status();
      ctx.expect(status.replicas.every((r) => r.mode === 'rw'), `a replica failed while slow: ${JSON.stringify(status.replicas)}`);
      const slow = workload.stats.latenciesMs.slice(before).sort((a, b) => a - b);
      ctx.report(`while slow: p50 ${slow[Math.floor(slow.length / 2)]?.toFixed(0)} ms, p99 ${slow[Math.floor(slow.length * 0.99)]?.toFixed(0)} ms`);
      victim.proxy!.heal();
      await workload.acknowledged(100);
    },
  },
  {
    id: 'S08',
    title: 'partition engine ↔ one replica for 3×T_r (blackhole), heal, delta rebuild',
    proxies: true,
    run: async (ctx) => {
      const { cluster, workload } = ctx;
      await workload.acknowledged(150 + ctx.random.int(200));
      // A snapshot every replica holds: the returning replica's copy of it must be reused.
      const snap = await cluster.control('POST', '/v1/snapshots', { name: 'before-partition' });
      ctx.expect(snap.status === 200, `snapshot before the partition: ${JSON.stringify(snap.json)}`);
      await workload.acknowledged(50);
      const victim = pick(ctx, cluster.replicas);
      const cutAt = Date.now();
      victim.proxy!.blackhole();
      ctx.report(`replica ${victim.index} cut off`);
      await expectErr(ctx, victim, errWithinMs);
      await sleep(Math.max(0, 3 * requestTimeoutMs - (Date.now() - cutAt)));
      victim.proxy!.heal();
      await workload.acknowledged(100);
      const rebuilt = await cluster.rebuild(victim);
      ctx.report(`replica ${victim.index} rebuilt after the partition: ${rebuilt.doneBytes} bytes sent, ${rebuilt.skippedBytes} matched`);
      ctx.expect(rebuilt.skippedBytes > 0, 'the returning replica reused none of its data');
      await workload.acknowledged(100);
    },
  },
  {
    id: 'S10',
    title: 'connection resets every 100–500 ms on one link, a half-open link on another',
    proxies: true,
    run: async (ctx) => {
      const { cluster, workload } = ctx;
      await workload.acknowledged(100 + ctx.random.int(200));
      const [resetting, halfOpen] = [cluster.replicas[ctx.seed % 3]!, cluster.replicas[(ctx.seed + 1) % 3]!];
      halfOpen.proxy!.halfOpen('toTarget');
      ctx.report(`replica ${resetting.index}: resets; replica ${halfOpen.index}: replies swallowed`);
      const until = Date.now() + 3 * requestTimeoutMs;
      let resets = 0;
      while (Date.now() < until) {
        await sleep(100 + ctx.random.int(400));
        resetting.proxy!.reset();
        resets++;
      }
      await expectErr(ctx, resetting, errWithinMs);
      await expectErr(ctx, halfOpen, errWithinMs);
      resetting.proxy!.heal();
      halfOpen.proxy!.heal();
      ctx.report(`${resets} resets`);
      for (const r of [resetting, halfOpen]) {
        const rebuilt = await cluster.rebuild(r);
        ctx.report(`replica ${r.index} rebuilt: ${rebuilt.doneBytes} bytes sent, ${rebuilt.skippedBytes} matched`);
      }
      await workload.acknowledged(100);
    },
  },
  diskFaultScenario({
    id: 'S11',
    title: 'disk full (ENOSPC on data writes) on one replica; space freed, rebuilt',
    rules: ({ seed }) => ({ seed, rules: [{ op: 'write', type: 'enospc', path: '.data', after: 100 + (seed % 300) }] }),
    fired: /fault: enospc on write/,
  }),
  diskFaultScenario({
    id: 'S12',
    title: 'write EIO with probability 0.01 on one replica',
    rules: ({ seed }) => ({ seed, rules: [{ op: 'write', type: 'eio', path: '.data', probability: 0.01 }] }),
    fired: /fault: eio on write/,
  }),
  diskFaultScenario({
    id: 'S13',
    title: 'fsync EIO once on one replica (fsyncgate: the unsynced data is dropped)',
    rules: ({ seed }) => ({ seed, loseUnsynced: true, rules: [{ op: 'sync', type: 'eio', path: '.data', after: 5 + (seed % 20), count: 1 }] }),
    fired: /fault: sync of .* failed/,
    whileErr: async (ctx, victim) => {
      // It left on the failed flush, and later flushes (which would now "succeed" on its disk)
      // did not bring it back: only a rebuild does.
      const status = await ctx.cluster.status();
      const entry = status.replicas.find((r) => r.address === victim.address);
      ctx.expect(entry?.mode === 'err' && /EIO|failed/i.test(entry.lastError ?? ''), `replica ${victim.index} after the fsync error: ${JSON.stringify(entry)}`);
      ctx.report(`replica ${victim.index} left on: ${entry?.lastError ?? '?'}`);
    },
  }),
  diskFaultScenario({
    id: 'S14',
    title: 'read EIO on the read source over its first 8 MiB; reads fail over',
    onReadSource: true,
    rules: ({ seed }) => ({ seed, rules: [{ op: 'read', type: 'eio', path: '.data', offsetBytes: 0, lengthBytes: 8 * 1024 * 1024, after: 20 + (seed % 50) }] }),
    fired: /fault: eio on read/,
  }),
  diskFaultScenario({
    id: 'S16',
    title: 'torn write then crash on one replica (lose-unsynced on)',
    rules: ({ seed }) => ({ seed, loseUnsynced: true, rules: [{ op: 'write', type: 'torn', path: '.data', after: 100 + (seed % 400), tornBytes: 512 * (1 + (seed % 7)) }] }),
    fired: /fault: crash \(torn write/,
  }),
  {
    id: 'S18',
    title: 'small unaligned writes and trims while a fresh replica rebuilds (#4354)',
    finalRw: 3,
    run: async (ctx) => {
      const { cluster, workload } = ctx;
      await workload.acknowledged(400);
      const victim = pick(ctx, cluster.replicas);
      await victim.daemon!.kill9();
      await expectErr(ctx, victim, errWithinMs);
      const fresh = await cluster.addReplica({ proxy: false, seed: ctx.seed + 10 });
      await cluster.startReplica(fresh);
      workload.setMix({ write: 0.6, zero: 0.02, trim: 0.08, flush: 0.05, unaligned: 1, unalignedSectorsMax: 2 });
      await cluster.startRebuild(fresh, 2 * 1024 * 1024);
      const rebuilt = await cluster.waitForRebuild(fresh);
      ctx.report(`fresh replica rebuilt under unaligned writes: ${rebuilt.doneBytes} bytes`);
      workload.setMix(defaultMix);
      await workload.acknowledged(100);
    },
  },
  {
    id: 'S19',
    title: 'kill -9 the rebuild source at 30–70 % of the copy; the rebuild finishes from another',
    finalRw: 3,
    run: async (ctx) => {
      const { cluster, workload } = ctx;
      await workload.acknowledged(600);
      const victim = pick(ctx, cluster.replicas);
      await victim.daemon!.kill9();
      await expectErr(ctx, victim, errWithinMs);
      const fresh = await cluster.addReplica({ proxy: false, seed: ctx.seed + 10 });
      await cluster.startReplica(fresh);
      await cluster.startRebuild(fresh, 1024 * 1024);
      const fraction = 0.3 + ctx.random.next() * 0.4;
      const progress = await waitFor('rebuild progress', async () => {
        const p = await cluster.rebuildProgress(fresh);
        if (p?.state === 'done' || p?.state === 'failed') throw new Error(`rebuild ended (${p.state}) before ${Math.round(fraction * 100)} %`);
        return p !== undefined && p.state === 'copying' && p.totalBytes > 0 && p.doneBytes >= fraction * p.totalBytes ? p : undefined;
      }, 60_000);
      const source = cluster.replicas.find((r) => r.address === progress.source)!;
      await source.daemon!.kill9();
      ctx.report(`killed the rebuild source (replica ${source.index}) at ${progress.doneBytes}/${progress.totalBytes} bytes`);
      const rebuilt = await cluster.waitForRebuild(fresh);
      ctx.expect(rebuilt.source !== source.address, `the rebuild did not move off the killed source ${source.address}`);
      await cluster.startReplica(source);
      const second = await cluster.rebuild(source);
      ctx.report(`then the killed source returned: ${second.doneBytes} bytes sent, ${second.skippedBytes} matched`);
      await workload.acknowledged(100);
    },
  },
  ...salvageScenarios,
  ...splitBrainScenarios,
  ...identityScenarios,
  ...chainOpScenarios,
  ...expandScenarios,
  ...bitrotScenarios,
  ...engineSwitchScenarios,
  ...nemesisScenarios,
  ...clockScenarios,
];

export function scenarioById(id: string): ScenarioDefinition {
  const found = [...scenarios, corruptReadScenario].find((s) => s.id.toLowerCase() === id.toLowerCase());
  if (found === undefined) throw new Error(`no scenario ${id}; known: ${scenarios.map((s) => s.id).join(', ')}`);
  return found;
}
