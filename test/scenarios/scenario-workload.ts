// The scenario workload: a few client threads on one NBD connection issue self-describing writes
// (whole blocks and 512-byte-aligned unaligned ones, some FUA), write-zeroes, trims, flushes and
// reads against a real engine, record every operation in the checker's model (test/sim's
// VolumeModel: per-sector versions, durable and guaranteed floors) and in a history log, and
// check every read as it completes. A connection that drops (engine killed) leaves its writes in
// doubt; the threads then wait for the scenario to attach a client to the next engine.
import { blockSizeBytes } from '../../src/lib/limits.ts';
import { SeededRandom } from '../../src/lib/random.ts';
import { encodeSector, sectorBytes, volumeTagOf } from '../harness/self-describing-sector.ts';
import { waitFor } from '../harness/daemon.ts';
import { VolumeModel, type MutationHandle, type Violation } from '../sim/volume-model.ts';
import { NbdDisconnected, NbdRequestError, type NbdWorkloadClient } from './nbd-workload-client.ts';

const sectorsPerBlock = blockSizeBytes / sectorBytes;

export interface WorkloadMix {
  /** Fractions of operations; the rest are reads. */
  readonly write: number;
  readonly zero: number;
  readonly trim: number;
  readonly flush: number;
  /** Of writes: the fraction that are unaligned (any 512-byte sectors); the rest whole blocks. */
  readonly unaligned: number;
  /** Of unaligned writes: at most this many sectors (1 KiB = 2). */
  readonly unalignedSectorsMax: number;
  /**
   * Of whole-block writes: the fraction that are large, 32–64 blocks (128–256 KiB, as file
   * systems send): a replica frame longer than one 64 KiB socket read, so it crosses the fault
   * proxy in several chunks. Default none (and no extra random draw: other mixes keep their seeds).
   */
  readonly largeWrites?: number;
}

export const defaultMix: WorkloadMix = { write: 0.45, zero: 0.03, trim: 0.05, flush: 0.1, unaligned: 0.4, unalignedSectorsMax: 24 };

export interface HistoryEntry {
  readonly at: number;
  readonly thread: number;
  readonly op: string;
  readonly sector: number;
  readonly sectors: number;
  readonly seq?: number;
  readonly fua?: boolean;
  result: 'pending' | 'ok' | 'error' | 'unknown';
  error?: string;
  doneAt?: number;
}

export interface WorkloadStats {
  issued: number;
  acked: number;
  failed: number;
  unknown: number;
  reads: number;
  flushes: number;
  /** Completion times of acknowledged operations (ms), for latency reports. */
  readonly latenciesMs: number[];
}

export class ScenarioWorkload {
  readonly model: VolumeModel;
  readonly violations: Violation[] = [];
  readonly history: HistoryEntry[] = [];
  readonly stats: WorkloadStats = { issued: 0, acked: 0, failed: 0, unknown: 0, reads: 0, flushes: 0, latenciesMs: [] };
  /** Client errors (NBD error replies), with what failed: scenarios that promise none assert this is empty. */
  readonly clientErrors: string[] = [];
  private readonly random: SeededRandom;
  private mix: WorkloadMix;
  private readonly sectors: number;
  private client: NbdWorkloadClient | null = null;
  /** Tag of the engine incarnation, stamped into every sector written (the model's "epoch"). */
  private era = 1;
  private stampCounter = 0;
  private nextOpId = 1;
  private stopped = false;
  private threads: Promise<void>[] = [];
  private running = 0;
  private readonly startMs = performance.now();

  constructor(options: { seed: number; volumeName: string; sectors: number; mix?: WorkloadMix }) {
    this.random = new SeededRandom(options.seed);
    this.sectors = options.sectors;
    this.mix = options.mix ?? defaultMix;
    this.model = new VolumeModel({ sectors: options.sectors, volumeTag: volumeTagOf(options.volumeName), writer: 1 });
  }

  stamp(): number {
    return ++this.stampCounter;
  }

  /** Start `count` client threads on `client`; they run until stop(). */
  start(client: NbdWorkloadClient, count: number): void {
    this.client = client;
    for (let i = 0; i < count; i++) this.threads.push(this.thread(i));
  }

  /** The engine was replaced: continue on a client of the new one. */
  attach(client: NbdWorkloadClient): void {
    this.era++;
    this.client = client;
  }

  /** Change the operation mix from now on (e.g. only small unaligned writes during a rebuild). */
  setMix(mix: WorkloadMix): void {
    this.mix = mix;
  }

  detach(): void {
    this.client = null;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.threads);
  }

  /** Client threads still looping (0 once stop() has taken effect): an aborted run must leave none. */
  get runningThreads(): number {
    return this.running;
  }

  /** Wait until `count` more operations have been acknowledged. */
  async acknowledged(count: number, timeoutMs = 60000): Promise<void> {
    const target = this.stats.acked + count;
    await waitFor(`${count} acknowledged operations`, () => (this.stats.acked >= target || this.violations.length > 0 ? true : undefined), timeoutMs);
  }

  private async thread(id: number): Promise<void> {
    this.running++;
    try {
      while (!this.stopped) {
        const client = this.client;
        if (client === null) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        this.stats.issued++;
        await this.oneOp(client, id);
      }
    } finally {
      this.running--;
    }
  }

  private log(entry: Omit<HistoryEntry, 'at' | 'result'>): HistoryEntry {
    const full: HistoryEntry = { at: Math.round(performance.now() - this.startMs), result: 'pending', ...entry };
    this.history.push(full);
    return full;
  }

  private async oneOp(client: NbdWorkloadClient, thread: number): Promise<void> {
    const roll = this.random.next();
    const m = this.mix;
    if (roll < m.write) await this.write(client, thread);
    else if (roll < m.write + m.zero) await this.zeroOrTrim(client, thread, 'zero');
    else if (roll < m.write + m.zero + m.trim) await this.zeroOrTrim(client, thread, 'trim');
    else if (roll < m.write + m.zero + m.trim + m.flush) await this.flush(client, thread);
    else await this.read(client, thread, this.pickRange(false));
  }

  /** A sector range: whole blocks, 1–4 long, or (unaligned) 1..unalignedSectorsMax sectors anywhere. */
  private pickRange(unaligned: boolean): [number, number] {
    if (!unaligned) {
      const blocks = this.sectors / sectorsPerBlock;
      const first = this.random.int(blocks);
      return [first * sectorsPerBlock, Math.min(blocks - first, 1 + this.random.int(4)) * sectorsPerBlock];
    }
    const first = this.random.int(this.sectors);
    return [first, Math.min(this.sectors - first, 1 + this.random.int(this.mix.unalignedSectorsMax))];
  }

  /** Whole blocks, 32–64 long (fewer on a volume smaller than that). */
  private pickLargeRange(): [number, number] {
    const blocks = this.sectors / sectorsPerBlock;
    const length = Math.min(blocks, 32 + this.random.int(33));
    const first = this.random.int(blocks - length + 1);
    return [first * sectorsPerBlock, length * sectorsPerBlock];
  }

  private async settle(entry: HistoryEntry, promise: Promise<unknown>): Promise<'ok' | 'error' | 'unknown'> {
    const started = performance.now();
    let outcome: 'ok' | 'error' | 'unknown';
    try {
      await promise;
      outcome = 'ok';
      this.stats.latenciesMs.push(performance.now() - started);
    } catch (error) {
      if (error instanceof NbdDisconnected) {
        outcome = 'unknown';
      } else if (error instanceof NbdRequestError) {
        outcome = 'error';
        this.clientErrors.push(`${entry.op} sectors ${entry.sector}+${entry.sectors}: ${error.message}`);
      } else {
        throw error;
      }
      entry.error = error.message;
    }
    entry.result = outcome;
    entry.doneAt = Math.round(performance.now() - this.startMs);
    return outcome;
  }

  private async mutation(client: NbdWorkloadClient, args: { thread: number; op: string; first: number; count: number; seq: number; fua: boolean; run: () => Promise<void> }): Promise<void> {
    const { model } = this;
    const handle: MutationHandle = model.begin({ opId: this.nextOpId++, firstSector: args.first, count: args.count, seq: args.seq, epoch: this.era, stamp: this.stamp() });
    const entry = this.log({ thread: args.thread, op: args.op, sector: args.first, sectors: args.count, ...(args.seq > 0 ? { seq: args.seq } : {}), ...(args.fua ? { fua: true } : {}) });
    const outcome = await this.settle(entry, args.run());
    if (outcome === 'ok') {
      this.stats.acked++;
      model.acked(handle, { stamp: this.stamp(), fua: args.fua });
    } else if (outcome === 'error') {
      this.stats.failed++;
      model.failed(handle);
    } else {
      this.stats.unknown++;
      model.lost(handle);
      if (this.client === client) this.client = null;
    }
  }

  private async write(client: NbdWorkloadClient, thread: number): Promise<void> {
    const unaligned = this.random.next() < this.mix.unaligned;
    const largeWrites = this.mix.largeWrites ?? 0;
    const large = !unaligned && largeWrites > 0 && this.random.next() < largeWrites;
    const [first, count] = large ? this.pickLargeRange() : this.pickRange(unaligned);
    if (!this.model.isFree(first, count)) return this.read(client, thread, [first, count]);
    const seq = this.model.newSeq();
    const data = new Uint8Array(count * sectorBytes);
    for (let i = 0; i < count; i++) {
      encodeSector(data, i * sectorBytes, { volumeTag: this.model.volumeTag, sector: first + i, writer: this.model.writer, seq, epoch: this.era });
    }
    const fua = this.random.next() < 0.1;
    await this.mutation(client, { thread, op: 'write', first, count, seq, fua, run: () => client.write(first * sectorBytes, data, { fua }) });
  }

  private async zeroOrTrim(client: NbdWorkloadClient, thread: number, kind: 'zero' | 'trim'): Promise<void> {
    const [first, count] = this.pickRange(this.random.next() < 0.5);
    // The engine discards only whole blocks inside a trim; partial blocks at the ends keep their
    // data, so only the inner blocks change in the model (docs/engine.md).
    const innerFirst = kind === 'trim' ? Math.ceil(first / sectorsPerBlock) * sectorsPerBlock : first;
    const innerEnd = kind === 'trim' ? Math.floor((first + count) / sectorsPerBlock) * sectorsPerBlock : first + count;
    const modelled = Math.max(0, innerEnd - innerFirst);
    if (modelled === 0 || !this.model.isFree(innerFirst, modelled)) return this.read(client, thread, [first, count]);
    await this.mutation(client, {
      thread,
      op: kind === 'zero' ? 'write-zeroes' : `trim ${first}+${count}`,
      first: innerFirst,
      count: modelled,
      seq: 0,
      fua: false,
      run: () => (kind === 'zero' ? client.writeZeroes(first * sectorBytes, count * sectorBytes) : client.trim(first * sectorBytes, count * sectorBytes)),
    });
  }

  private async flush(client: NbdWorkloadClient, thread: number): Promise<void> {
    const stamp = this.stamp();
    this.stats.flushes++;
    const entry = this.log({ thread, op: 'flush', sector: 0, sectors: 0 });
    if ((await this.settle(entry, client.flush())) === 'ok') this.model.flushed(stamp);
  }

  private async read(client: NbdWorkloadClient, thread: number, [first, count]: [number, number]): Promise<void> {
    const floors = this.model.floors(first, count);
    this.stats.reads++;
    const entry = this.log({ thread, op: 'read', sector: first, sectors: count });
    let data: Uint8Array | undefined;
    const outcome = await this.settle(
      entry,
      client.read(first * sectorBytes, count * sectorBytes).then((d) => {
        data = d;
      }),
    );
    if (outcome !== 'ok' || data === undefined) return;
    this.violations.push(...this.model.checkRead({ data, firstSector: first, floors, endStamp: this.stamp(), where: `read ${first}+${count} (thread ${thread})` }));
  }
}

/** p50/p99/max of latencies, for scenario reports. */
export function latencySummary(latenciesMs: readonly number[]): string {
  if (latenciesMs.length === 0) return 'no operations';
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return `p50 ${at(0.5).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms, max ${sorted[sorted.length - 1]!.toFixed(1)} ms over ${sorted.length} ops`;
}
