// The simulated client: a few concurrent threads issuing writes (block-aligned and 512-byte
// unaligned, some FUA), write-zeroes, trims, flushes, reads, snapshots and pings to whatever
// engine is alive, recording every operation in the model and checking every read against it.
// A thread whose engine dies abandons its operation (it stays indeterminate) and waits for the
// next engine.
import { blockSizeBytes } from '../../src/lib/limits.ts';
import { encodeSector, sectorBytes } from '../harness/self-describing-sector.ts';
import type { EngineEra, SimCluster } from './sim-cluster.ts';
import type { SimScheduler } from './sim-scheduler.ts';
import type { MutationHandle, Violation, VolumeModel } from './volume-model.ts';

const sectorsPerBlock = blockSizeBytes / sectorBytes;

export interface WorkloadContext {
  readonly sim: SimScheduler;
  readonly cluster: SimCluster;
  readonly model: VolumeModel;
  readonly violations: Violation[];
  /** Called after an operation failed: the supervisor restarts an engine left without replicas. */
  readonly engineTrouble: () => void;
  /** An operation on a live engine that takes longer than this (simulated) is a liveness failure. */
  readonly hangMs: number;
}

type Outcome<T> = { kind: 'ok'; value: T } | { kind: 'error'; error: unknown } | { kind: 'died' } | { kind: 'hung' };

export interface WorkloadStats {
  issued: number;
  acked: number;
  failed: number;
  abandoned: number;
  reads: number;
  flushes: number;
  snapshots: number;
}

export class Workload {
  private readonly ctx: WorkloadContext;
  private readonly opsMax: number;
  readonly stats: WorkloadStats = { issued: 0, acked: 0, failed: 0, abandoned: 0, reads: 0, flushes: 0, snapshots: 0 };
  readonly ackedSnapshots: string[] = [];
  private snapshotCounter = 0;
  private nextOpId = 1;
  /** Set when a liveness failure makes going on pointless. */
  stopped = false;

  constructor(ctx: WorkloadContext, opsMax: number) {
    this.ctx = ctx;
    this.opsMax = opsMax;
  }

  /** One client thread: issue operations until the workload's budget is spent. */
  async thread(id: number): Promise<void> {
    const { sim, cluster } = this.ctx;
    while (this.stats.issued < this.opsMax && !this.stopped) {
      const era = cluster.era;
      if (era === null || !era.alive) {
        await cluster.whenEngineUp();
        continue;
      }
      this.stats.issued++;
      await this.oneOp(era, id);
      // Think time: threads drift apart, so operations overlap in many ways.
      if (sim.random.next() < 0.5) await new Promise<void>((resolve) => sim.schedule(sim.random.next() * 2, 'think', resolve));
    }
  }

  private async call<T>(era: EngineEra, what: string, promise: Promise<T>): Promise<Outcome<T>> {
    const { sim } = this.ctx;
    let hang: (() => void) | undefined;
    const hung = new Promise<'hung'>((resolve) => (hang = () => resolve('hung')));
    const timer = sim.schedule(this.ctx.hangMs, 'hang check', () => hang!());
    const outcome = await Promise.race([
      promise.then(
        (value): Outcome<T> => ({ kind: 'ok', value }),
        (error: unknown): Outcome<T> => ({ kind: 'error', error }),
      ),
      era.died.then((): Outcome<T> => ({ kind: 'died' })),
      hung.then((): Outcome<T> => ({ kind: 'hung' })),
    ]);
    timer.cancel();
    if (outcome.kind === 'hung') {
      this.ctx.violations.push({ invariant: 'liveness', message: `${what} did not complete in ${this.ctx.hangMs} ms on a live engine` });
      this.stopped = true;
    }
    if (outcome.kind === 'error') {
      const error = outcome.error;
      sim.trace(`${what} failed: ${error instanceof Error ? error.message : String(error)}`);
      this.ctx.engineTrouble();
    }
    return outcome;
  }

  private async oneOp(era: EngineEra, thread: number): Promise<void> {
    const { sim, model } = this.ctx;
    const roll = sim.random.next();
    if (roll < 0.42) await this.write(era, thread);
    else if (roll < 0.5) await this.zeroOrTrim(era, 'zero');
    else if (roll < 0.56) await this.zeroOrTrim(era, 'trim');
    else if (roll < 0.68) await this.flush(era);
    else if (roll < 0.95) await this.read(era, this.pickRange(model.sectors));
    else if (roll < 0.98) await this.snapshot(era);
    else await this.ping(era);
  }

  /** A sector range: whole blocks (60%) or any sectors, 1–4 blocks long. */
  private pickRange(sectors: number): [number, number] {
    const random = this.ctx.sim.random;
    if (random.next() < 0.6) {
      const blocks = sectors / sectorsPerBlock;
      const first = random.int(blocks);
      const count = Math.min(blocks - first, 1 + random.int(4));
      return [first * sectorsPerBlock, count * sectorsPerBlock];
    }
    const first = random.int(sectors);
    return [first, Math.min(sectors - first, 1 + random.int(3 * sectorsPerBlock))];
  }

  private async mutation(
    era: EngineEra,
    args: { what: string; first: number; count: number; seq: number; fua: boolean; run: () => Promise<void> },
  ): Promise<void> {
    const { sim, model } = this.ctx;
    const opId = this.nextOpId++;
    const handle: MutationHandle = model.begin({ opId, firstSector: args.first, count: args.count, seq: args.seq, epoch: era.epoch, stamp: sim.stamp() });
    const what = `op ${opId} ${args.what} sectors ${args.first}+${args.count}${args.fua ? ' fua' : ''}`;
    sim.trace(what);
    const outcome = await this.call(era, what, args.run());
    switch (outcome.kind) {
      case 'ok':
        this.stats.acked++;
        model.acked(handle, { stamp: sim.stamp(), fua: args.fua });
        sim.trace(`op ${opId} acked`);
        return;
      case 'error':
        this.stats.failed++;
        model.failed(handle);
        return;
      case 'died':
      case 'hung':
        this.stats.abandoned++;
        model.lost(handle);
        return;
    }
  }

  private async write(era: EngineEra, thread: number): Promise<void> {
    const { sim, model } = this.ctx;
    const [first, count] = this.pickRange(model.sectors);
    if (!model.isFree(first, count)) return this.read(era, [first, count]);
    const seq = model.newSeq();
    const data = new Uint8Array(count * sectorBytes);
    for (let i = 0; i < count; i++) {
      encodeSector(data, i * sectorBytes, { volumeTag: model.volumeTag, sector: first + i, writer: model.writer, seq, epoch: era.epoch });
    }
    const fua = sim.random.next() < 0.1;
    await this.mutation(era, {
      what: `write seq ${seq} (thread ${thread})`,
      first,
      count,
      seq,
      fua,
      run: () => era.engine.write(first * sectorBytes, data, fua ? { fua: true } : undefined),
    });
  }

  private async zeroOrTrim(era: EngineEra, kind: 'zero' | 'trim'): Promise<void> {
    const { model } = this.ctx;
    const [first, count] = this.pickRange(model.sectors);
    // The engine discards only the whole blocks inside a trim (docs/engine.md); the sectors of a
    // partial block at either end keep their data, so only the inner blocks change in the model.
    const innerFirst = kind === 'trim' ? Math.ceil(first / sectorsPerBlock) * sectorsPerBlock : first;
    const innerEnd = kind === 'trim' ? Math.floor((first + count) / sectorsPerBlock) * sectorsPerBlock : first + count;
    const modelled = Math.max(0, innerEnd - innerFirst);
    if (!model.isFree(innerFirst, modelled)) return this.read(era, [first, count]);
    const engine = era.engine;
    await this.mutation(era, {
      what: kind === 'zero' ? 'write-zeroes' : `trim (${first}+${count})`,
      first: innerFirst,
      count: modelled,
      seq: 0,
      fua: false,
      run: () => (kind === 'zero' ? engine.writeZeroes(first * sectorBytes, count * sectorBytes) : engine.trim(first * sectorBytes, count * sectorBytes)),
    });
  }

  private async flush(era: EngineEra): Promise<void> {
    const { sim, model } = this.ctx;
    const stamp = sim.stamp();
    this.stats.flushes++;
    sim.trace(`flush at stamp ${stamp}`);
    const outcome = await this.call(era, 'flush', era.engine.flush());
    if (outcome.kind === 'ok') {
      model.flushed(stamp);
      sim.trace(`flush at stamp ${stamp} done`);
    }
  }

  private async read(era: EngineEra, [first, count]: [number, number]): Promise<void> {
    const { sim, model } = this.ctx;
    const floors = model.floors(first, count);
    this.stats.reads++;
    const outcome = await this.call(era, `read sectors ${first}+${count}`, era.engine.read(first * sectorBytes, count * sectorBytes));
    if (outcome.kind !== 'ok') return;
    const problems = model.checkRead({ data: outcome.value, firstSector: first, floors, endStamp: sim.stamp(), where: `read ${first}+${count} via engine epoch ${era.epoch}` });
    this.ctx.violations.push(...problems);
  }

  private async snapshot(era: EngineEra): Promise<void> {
    const name = `snap-${++this.snapshotCounter}`;
    this.stats.snapshots++;
    this.ctx.sim.trace(`snapshot ${name}`);
    const outcome = await this.call(era, `snapshot ${name}`, era.engine.snapshot({ name, kind: 'user' }));
    if (outcome.kind === 'ok') this.ackedSnapshots.push(name);
  }

  private async ping(era: EngineEra): Promise<void> {
    await this.call(era, 'ping', era.engine.pingAll());
  }
}
