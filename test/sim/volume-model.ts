// The checker's model of one volume: for every 512-byte sector, the versions the workload wrote
// there, in order (the workload never has two mutations of one sector in flight, so the order is
// the order of issue), each with what the client was told: pending, acknowledged, failed, or lost
// with a crashed engine. Two floors per sector:
// - durable: the newest version acknowledged before a flush that then completed (or a FUA write);
// - guaranteed: the newest acknowledged version, or the durable one after an engine start that
//   may have forgotten unflushed writes (a chosen replica crashed since the last start).
// A read may return the guaranteed version or any later one issued before the read completed
// (invariant 1); anything that is not a version of that sector at all is fabricated (invariant 2).
import { decodeSector, sectorBytes, type SectorReading } from '../harness/self-describing-sector.ts';

export type VersionStatus = 'pending' | 'acked' | 'failed' | 'lost';

export interface Version {
  /** 0 for zeros (the initial state, write-zeroes, trim), otherwise the write's sequence number. */
  readonly seq: number;
  readonly epoch: number;
  readonly opId: number;
  readonly issuedStamp: number;
  status: VersionStatus;
}

interface SectorHistory {
  readonly versions: Version[];
  guaranteed: number;
  durable: number;
  busy: boolean;
  /** Replicas may legitimately differ here: a write was in flight at a crash or lost by amnesia. */
  indeterminate: boolean;
}

export interface Violation {
  readonly invariant: '1 durability' | '2 no fabrication' | '3 convergence' | '5 crash atomicity' | 'liveness' | 'internal';
  readonly message: string;
}

export interface MutationHandle {
  readonly opId: number;
  readonly firstSector: number;
  readonly versions: readonly Version[];
}

export class VolumeModel {
  readonly sectors: number;
  readonly volumeTag: number;
  readonly writer: number;
  private readonly history: SectorHistory[];
  /** Acknowledged versions not yet known durable: [sector, version index, ack stamp]. */
  private ackedNotDurable: { sector: number; index: number; ackStamp: number }[] = [];
  private nextSeq = 1;

  constructor(options: { sectors: number; volumeTag: number; writer: number }) {
    this.sectors = options.sectors;
    this.volumeTag = options.volumeTag;
    this.writer = options.writer;
    this.history = Array.from({ length: this.sectors }, () => ({
      versions: [{ seq: 0, epoch: 0, opId: 0, issuedStamp: 0, status: 'acked' }],
      guaranteed: 0,
      durable: 0,
      busy: false,
      indeterminate: false,
    }));
  }

  /** Whether sectors [first, first + count) have no mutation in flight. */
  isFree(first: number, count: number): boolean {
    for (let s = first; s < first + count; s++) if (this.history[s]!.busy) return false;
    return true;
  }

  newSeq(): number {
    return this.nextSeq++;
  }

  /** Record a mutation of [first, first + count): `seq` 0 writes zeros. */
  begin(args: { opId: number; firstSector: number; count: number; seq: number; epoch: number; stamp: number }): MutationHandle {
    const versions: Version[] = [];
    for (let s = args.firstSector; s < args.firstSector + args.count; s++) {
      const h = this.history[s]!;
      if (h.busy) throw new Error(`model: sector ${s} already has a mutation in flight`);
      h.busy = true;
      const v: Version = { seq: args.seq, epoch: args.epoch, opId: args.opId, issuedStamp: args.stamp, status: 'pending' };
      h.versions.push(v);
      versions.push(v);
    }
    return { opId: args.opId, firstSector: args.firstSector, versions };
  }

  acked(handle: MutationHandle, args: { stamp: number; fua: boolean }): void {
    handle.versions.forEach((v, i) => {
      const sector = handle.firstSector + i;
      const h = this.history[sector]!;
      v.status = 'acked';
      h.busy = false;
      const index = h.versions.lastIndexOf(v);
      h.guaranteed = Math.max(h.guaranteed, index);
      if (args.fua) h.durable = Math.max(h.durable, index);
      else this.ackedNotDurable.push({ sector, index, ackStamp: args.stamp });
    });
  }

  failed(handle: MutationHandle): void {
    handle.versions.forEach((v, i) => {
      v.status = 'failed';
      const h = this.history[handle.firstSector + i]!;
      h.busy = false;
      h.indeterminate = true;
    });
  }

  /** The engine died with this mutation in flight: it may or may not have happened, anywhere. */
  lost(handle: MutationHandle): void {
    handle.versions.forEach((v, i) => {
      if (v.status !== 'pending') return;
      v.status = 'lost';
      const h = this.history[handle.firstSector + i]!;
      h.busy = false;
      h.indeterminate = true;
    });
  }

  /** A flush issued at `issuedStamp` completed: everything acknowledged before it is durable. */
  flushed(issuedStamp: number): void {
    const rest: typeof this.ackedNotDurable = [];
    for (const entry of this.ackedNotDurable) {
      if (entry.ackStamp < issuedStamp) {
        const h = this.history[entry.sector]!;
        h.durable = Math.max(h.durable, entry.index);
      } else {
        rest.push(entry);
      }
    }
    this.ackedNotDurable = rest;
  }

  /**
   * An engine started on replicas of which one crashed since the last start: acknowledged writes
   * that were never flushed may be gone. What is guaranteed falls back to what is durable.
   */
  amnesia(): void {
    for (const entry of this.ackedNotDurable) this.history[entry.sector]!.indeterminate = true;
    this.ackedNotDurable = [];
    for (const h of this.history) h.guaranteed = h.durable;
  }

  /** The floors to check a read against, taken when the read is issued. */
  floors(first: number, count: number): Int32Array {
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) out[i] = this.history[first + i]!.guaranteed;
    return out;
  }

  isIndeterminate(sector: number): boolean {
    return this.history[sector]!.indeterminate;
  }

  /**
   * Check the bytes of sectors [first, first + floors.length) as read: each must decode to a
   * version at or after its floor that was issued before `endStamp`.
   */
  checkRead(args: { data: Uint8Array; firstSector: number; floors: Int32Array; endStamp: number; where: string }): Violation[] {
    const problems: Violation[] = [];
    for (let i = 0; i < args.floors.length && problems.length < 4; i++) {
      const sector = args.firstSector + i;
      const reading = decodeSector(args.data.subarray(i * sectorBytes, (i + 1) * sectorBytes), { volumeTag: this.volumeTag, sector });
      const problem = this.judge(sector, reading, args.floors[i]!, args.endStamp);
      if (problem !== null) problems.push({ invariant: problem.invariant, message: `${args.where}: sector ${sector}: ${problem.message}` });
    }
    return problems;
  }

  /** Describe a sector's history (for failure messages). */
  describe(sector: number): string {
    const h = this.history[sector]!;
    const list = h.versions.map((v, i) => `${i}:${v.seq === 0 ? 'zeros' : `seq ${v.seq}`}(${v.status}, op ${v.opId})`).join(' ');
    return `guaranteed ${h.guaranteed}, durable ${h.durable}; versions ${list}`;
  }

  private judge(sector: number, reading: SectorReading, floor: number, endStamp: number): { invariant: Violation['invariant']; message: string } | null {
    if (reading.kind === 'garbage') return { invariant: '2 no fabrication', message: `garbage (${reading.reason}); ${this.describe(sector)}` };
    const versions = this.history[sector]!.versions;
    const seq = reading.kind === 'zeros' ? 0 : reading.seq;
    const matches = (v: Version): boolean => v.seq === seq && (reading.kind === 'zeros' || (reading.epoch === v.epoch && reading.writer === this.writer));
    for (let i = floor; i < versions.length; i++) {
      const v = versions[i]!;
      if (v.issuedStamp < endStamp && matches(v)) return null;
    }
    const what = seq === 0 ? 'zeros' : `seq ${seq}`;
    if (versions.some(matches)) {
      return { invariant: '1 durability', message: `read ${what}, older than the version it must show (${floor}); ${this.describe(sector)}` };
    }
    return { invariant: '2 no fabrication', message: `read ${what}, never written there; ${this.describe(sector)}` };
  }
}
