// The replication core of one volume: a BlockDevice that fans every write out to the replicas of
// its write set and acknowledges it only when all of them have it.
//
// Ordering contract (DESIGN §2.8), the reason for most of the code below:
// 1. A write is acknowledged only when every replica still in the write set acknowledged it. A
//    replica that fails leaves the write set (mode 'err') and the new generation with the member
//    list is recorded on every surviving rw replica BEFORE that write, or any later one, is
//    acknowledged. So after any crash, the members of the highest generation hold every
//    acknowledged write.
// 2. A partial-block write becomes a whole-block write here: the block is read from an rw replica
//    under a range lock, merged, and written whole everywhere, so a 'wo' replica never needs data
//    it does not have.
// 3. Flush and FUA reach every replica of the write set before the reply. A failed flush drops
//    that replica for good; we never retry a failed fsync and carry on.
// 4. Snapshots and expansion run under a barrier: new writes wait, in-flight ones drain, the
//    operation reaches every replica, then writes resume.
import { memberId } from '../format/replica-identity.ts';
import { assert } from '../lib/assert.ts';
import type { BlockDevice, BlockDeviceCapabilities, BlockExtent, WriteOptions } from '../lib/block-device.ts';
import type { Clock } from '../lib/clock.ts';
import { IoError, toError } from '../lib/errors.ts';
import { blockSizeBytes, requestSizeMaxBytes, volumeSizeMaxBytes } from '../lib/limits.ts';
import type { SnapshotOptions } from '../format/replica-chain.ts';
import { IoStats, type IoStatsSnapshot } from './io-stats.ts';
import { RangeLock } from './range-lock.ts';
import { ReadLease, readLeaseDefaultMs } from './read-lease.ts';
import { SnapshotPins } from './snapshot-pins.ts';
import type { StartRepairProgress } from './start-repair-progress.ts';
import type { ReplicaLink } from './replica-link.ts';
import type { ReplicaMode } from './replica-mode.ts';
import { WriteBarrier } from './write-barrier.ts';

export interface EngineMember {
  readonly link: ReplicaLink;
  mode: ReplicaMode;
  lastError: string | null;
}

export interface EngineOptions {
  readonly volumeName: string;
  readonly sizeBytes: number;
  readonly epoch: number;
  /** Generation recorded on the rw members when the engine started. */
  readonly generation: number;
  /** Replicas holding every acknowledged write; the first is the read source. */
  readonly members: readonly ReplicaLink[];
  readonly clock: Clock;
  readonly log: (message: string) => void;
  /** Writes fail rather than be acknowledged by fewer rw replicas (Longhorn's behaviour: 1). */
  readonly minimumWriteReplicas?: number;
  /** Salvage starts only: a promotion may bring the write set back up to the minimum (promoteReplica). */
  readonly promoteBelowMinimum?: boolean;
  /** With a minimum above 1: serve reads only while that many rw replicas answered within this long (read-lease.ts). */
  readonly readLeaseMs?: number;
}

export interface EngineStatus {
  readonly volumeName: string;
  readonly sizeBytes: number;
  readonly epoch: number;
  readonly generation: number;
  readonly replicas: readonly { address: string; mode: ReplicaMode; lastError: string | null }[];
  readonly read: IoStatsSnapshot;
  readonly write: IoStatsSnapshot;
  readonly flush: IoStatsSnapshot;
  /** Rebuilds running or finished in this engine's life, by replica address. */
  readonly rebuilds: readonly RebuildProgress[];
  /** The comparison and repair of the replicas after this start (start-repair.ts); null before it began. */
  readonly startRepair: StartRepairProgress | null;
}

/** Progress of one rebuild (rebuild.ts fills it in). */
export interface RebuildProgress {
  readonly address: string;
  state: 'planning' | 'copying' | 'verifying' | 'done' | 'failed';
  source: string | null;
  /** Bytes that must cross the network, bytes that have, and bytes skipped because checksums matched. */
  totalBytes: number;
  doneBytes: number;
  skippedBytes: number;
  rateBytesPerSecond: number;
  startedMs: number;
  finishedMs: number | null;
  error: string | null;
}

type MemberOp = (link: ReplicaLink) => Promise<void>;

export class Engine implements BlockDevice {
  readonly capabilities: BlockDeviceCapabilities = {
    canTrim: true,
    canZeroFast: true,
    canFua: true,
    canFlush: true,
    // Every flush goes to every replica and covers every write acknowledged before it, whichever
    // connection carried it.
    canMultiConn: true,
    canBlockStatus: false,
  };
  readonly volumeName: string;
  private size: number;
  private readonly epoch: number;
  private generation: number;
  private readonly members: EngineMember[];
  private readonly clock: Clock;
  private readonly log: (message: string) => void;
  private readonly minimumWriteReplicas: number;
  private readonly promoteBelowMinimum: boolean;
  private readonly lease: ReadLease;
  private readonly lock = new RangeLock();
  private readonly barrier = new WriteBarrier();
  /** The pending record of a write-set change; acknowledgements wait for it. */
  private membershipChange: Promise<void> = Promise.resolve();
  /** Membership records started and not yet finished: while 0, acknowledgements need not wait. */
  private membershipChangesPending = 0;
  private readonly readStats = new IoStats();
  private readonly writeStats = new IoStats();
  private readonly flushStats = new IoStats();
  private closed = false;
  /**
   * Set for good when a replica refuses a request with `stale_epoch`: a newer engine has taken this
   * volume over. From then on this engine serves nothing and records nothing (see fence()).
   */
  private fencedReason: string | null = null;
  /** Rebuild progress for status, by address (the latest rebuild of each replica). */
  readonly rebuilds = new Map<string, RebuildProgress>();
  /** Why chain operations that would change sealed layers (delete, purge, revert, expand) must wait. */
  chainBusy: string | null = null;
  /** Snapshots a backup is reading: purge and delete refuse to touch them (snapshot-pins.ts). */
  readonly pins = new SnapshotPins();
  /** Progress of the comparison of the replicas after start (start-repair.ts sets and updates it). */
  startRepair: StartRepairProgress | null = null;
  /** Settles when that comparison is over; snapshots and rebuilds wait for it. */
  private startRepairRun: Promise<void> = Promise.resolve();
  /** False until the replicas are known equal: every read goes to the read source (DESIGN §2.8 rule 7). */
  private readsSpread = false;
  private nextReader = 0;

  constructor(options: EngineOptions) {
    assert(options.members.length > 0, 'an engine needs at least one replica');
    assert(
      Number.isSafeInteger(options.sizeBytes) && options.sizeBytes > 0 && options.sizeBytes % blockSizeBytes === 0,
      `volume size ${options.sizeBytes} is not a positive multiple of ${blockSizeBytes}`,
    );
    this.volumeName = options.volumeName;
    this.size = options.sizeBytes;
    this.epoch = options.epoch;
    this.generation = options.generation;
    this.members = options.members.map((link) => ({ link, mode: 'rw', lastError: null }));
    this.clock = options.clock;
    this.log = options.log;
    this.minimumWriteReplicas = options.minimumWriteReplicas ?? 1;
    this.promoteBelowMinimum = options.promoteBelowMinimum ?? false;
    this.lease = new ReadLease({ minimumReplicas: this.minimumWriteReplicas, leaseMs: options.readLeaseMs ?? readLeaseDefaultMs, clock: this.clock });
  }

  sizeBytes(): number {
    return this.size;
  }

  status(): EngineStatus {
    return {
      volumeName: this.volumeName,
      sizeBytes: this.size,
      epoch: this.epoch,
      generation: this.generation,
      replicas: this.members.map((m) => ({ address: m.link.address, mode: m.mode, lastError: m.lastError })),
      read: this.readStats.snapshot(),
      write: this.writeStats.snapshot(),
      flush: this.flushStats.snapshot(),
      rebuilds: [...this.rebuilds.values()].map((r) => ({ ...r })),
      startRepair: this.startRepair === null ? null : { ...this.startRepair, replicas: [...this.startRepair.replicas] },
    };
  }

  async read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    this.checkRange('read', offsetBytes, lengthBytes);
    const startMs = this.clock.monotonicMs();
    try {
      const data = await this.readFromRw(offsetBytes, lengthBytes);
      this.readStats.record(lengthBytes, this.clock.monotonicMs() - startMs);
      return data;
    } catch (error) {
      this.readStats.recordError();
      throw error;
    }
  }

  async write(offsetBytes: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    this.checkRange('write', offsetBytes, data.length);
    if (data.length === 0) return;
    await this.mutate(offsetBytes, data.length, options, (alignedOffset, alignedLength) =>
      // Whole blocks (nearly every write) go out as they came, sent from the client's buffer.
      alignedOffset === offsetBytes && alignedLength === data.length
        ? this.fanOut((link) => link.write(alignedOffset, data))
        : this.writeMerged({ alignedOffset, alignedLength, offsetBytes, data }),
    );
  }

  private async writeMerged(args: { alignedOffset: number; alignedLength: number; offsetBytes: number; data: Uint8Array }): Promise<void> {
    const whole = await this.mergePartial(args);
    await this.fanOut((link) => link.write(args.alignedOffset, whole));
  }

  async writeZeroes(offsetBytes: number, lengthBytes: number, options?: WriteOptions): Promise<void> {
    this.checkRange('write zeroes', offsetBytes, lengthBytes);
    if (lengthBytes === 0) return;
    await this.mutate(offsetBytes, lengthBytes, options, async (alignedOffset, alignedLength) => {
      const innerStart = roundUp(offsetBytes);
      const innerEnd = roundDown(offsetBytes + lengthBytes);
      if (innerStart >= innerEnd || alignedOffset !== innerStart || alignedOffset + alignedLength !== innerEnd) {
        // Partial blocks at either end: zero them through a merged whole-block write, the rest
        // (if any) as a zero range.
        await this.zeroPartialEnds({ alignedOffset, alignedLength, offsetBytes, lengthBytes, innerStart, innerEnd });
        return;
      }
      await this.fanOutChunked(alignedOffset, alignedLength, (link, offset, length) => link.writeZeroes(offset, length));
    });
  }

  async trim(offsetBytes: number, lengthBytes: number): Promise<void> {
    this.checkRange('trim', offsetBytes, lengthBytes);
    // Only whole blocks are discarded; a client may not assume anything about a trimmed range's
    // contents, so partial blocks at the ends are left as they are.
    const innerStart = roundUp(offsetBytes);
    const innerEnd = Math.min(roundDown(offsetBytes + lengthBytes), this.size);
    if (innerStart >= innerEnd) return;
    await this.mutate(innerStart, innerEnd - innerStart, undefined, async (alignedOffset, alignedLength) => {
      await this.fanOutChunked(alignedOffset, alignedLength, (link, offset, length) => link.trim(offset, length));
    });
  }

  async flush(): Promise<void> {
    this.assertOpen();
    const startMs = this.clock.monotonicMs();
    try {
      await this.fanOut((link) => link.flush());
      this.flushStats.record(0, this.clock.monotonicMs() - startMs);
    } catch (error) {
      this.flushStats.recordError();
      throw error;
    }
  }

  blockStatus(offsetBytes: number, lengthBytes: number): Promise<BlockExtent[]> {
    this.checkRange('block status', offsetBytes, lengthBytes);
    return Promise.resolve([{ offsetBytes, lengthBytes, allocated: true }]);
  }

  /** Take a snapshot on every replica of the write set under the write barrier. */
  async snapshot(options: SnapshotOptions): Promise<void> {
    this.assertOpen();
    // A snapshot would seal heads that may still differ: it waits for the comparison after start.
    await this.startRepairRun;
    await this.barrier.exclusive(async () => {
      await this.fanOut((link) => link.snapshot(options));
    });
    this.log(`snapshot ${options.name} (${options.kind}) taken on ${this.writeSet().length} replicas`);
  }

  async expand(sizeBytes: number): Promise<void> {
    this.assertOpen();
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes % blockSizeBytes !== 0 || sizeBytes > volumeSizeMaxBytes) {
      throw new IoError('invalid_argument', `Cannot expand to ${sizeBytes} bytes: need whole 4096-byte blocks up to ${volumeSizeMaxBytes}`);
    }
    if (sizeBytes < this.size) {
      throw new IoError('invalid_argument', `Cannot shrink volume from ${this.size} to ${sizeBytes} bytes`);
    }
    if (sizeBytes === this.size) return;
    // The comparison after start (start-repair.ts) walks the volume at its size: expand after it.
    await this.startRepairRun;
    if (this.chainBusy !== null) throw new IoError('invalid_argument', `Cannot expand while ${this.chainBusy} runs`);
    await this.barrier.exclusive(async () => {
      await this.fanOut((link) => link.expand(sizeBytes));
      this.size = sizeBytes;
    });
    this.log(`expanded to ${sizeBytes} bytes`);
  }

  /**
   * Add a replica as 'wo': from the moment this resolves it receives every write. It is not a
   * member of the recorded generation until it is promoted (after a rebuild): it first records
   * {current generation, no members} so that, even if every other replica were lost, a start-up
   * never picks it (start-choice.ts skips a replica missing from its own generation's members).
   * With `join`, the same barrier snapshots every replica, the new one included, so that its
   * chain ends with the same snapshot as theirs (DESIGN §2.8 rule 2).
   */
  async addReplica(link: ReplicaLink, options: { join?: SnapshotOptions } = {}): Promise<void> {
    this.assertOpen();
    if (this.members.some((m) => m.link.address === link.address && m.mode !== 'err')) {
      throw new IoError('invalid_argument', `Replica ${link.address} is already in the write set`);
    }
    await link.acceptEpoch(this.epoch);
    await link.setMembership({ generation: this.generation, members: [] });
    await this.barrier.exclusive(async () => {
      const existing = this.members.findIndex((m) => m.link.address === link.address);
      if (existing >= 0) this.members.splice(existing, 1);
      this.members.push({ link, mode: 'wo', lastError: null });
      if (options.join !== undefined) {
        const join = options.join;
        await this.fanOut((l) => l.snapshot(join));
        if (this.members.find((m) => m.link === link)?.mode !== 'wo') throw new IoError('io', `Replica ${link.address} failed the join snapshot`);
      }
    });
    this.log(`replica ${link.address} added as wo${options.join === undefined ? '' : ` (join snapshot ${options.join.name})`}`);
  }

  /** The rw replicas, the read source first. */
  rwLinks(): ReplicaLink[] {
    return this.members.filter((m) => m.mode === 'rw').map((m) => m.link);
  }

  /** The write set (rw and wo), for chain operations that must reach every replica. */
  writeSetLinks(): ReplicaLink[] {
    return this.writeSet().map((m) => m.link);
  }

  modeOf(address: string): ReplicaMode | undefined {
    return this.members.find((m) => m.link.address === address)?.mode;
  }

  /** Run `op` on every replica of the write set; a replica that fails it leaves the write set. */
  async fanOutChainOp(op: (link: ReplicaLink) => Promise<void>, options: { exclusive?: boolean } = {}): Promise<void> {
    this.assertOpen();
    if (options.exclusive === true) await this.barrier.exclusive(() => this.fanOut(op));
    else await this.fanOut(op);
  }

  /** Move a replica to 'err' (a failed rebuild, a scrub that found it wrong) and record the change. */
  async failReplica(address: string, error: unknown): Promise<void> {
    const member = this.members.find((m) => m.link.address === address && m.mode !== 'err');
    if (member === undefined) return;
    if (member.mode === 'rw' && this.rwCount() <= 1) throw new IoError('invalid_argument', `Cannot fail ${address}: it is the last rw replica`);
    await this.fail([{ member, error }]);
  }

  /** Promote a 'wo' replica to 'rw' and record it as a member of a new generation. */
  async promoteReplica(address: string): Promise<void> {
    const member = this.members.find((m) => m.link.address === address && m.mode === 'wo');
    if (member === undefined) throw new IoError('invalid_argument', `No wo replica ${address} to promote`);
    const w = this.minimumWriteReplicas;
    await this.barrier.exclusive(async () => {
      // The quorum start rule (start-choice.ts) lets a new engine start while fewer than w members
      // of the newest generation are missing. Its proof needs: a promotion starts only with >= w
      // rw replicas, and keeps the joiner only if >= w of them recorded its generation; else {r1}
      // plus a rebuilt joiner could acknowledge writes while a new engine runs on {r2, r3}.
      const before = this.members.filter((m) => m.mode === 'rw');
      if (!this.promoteBelowMinimum && before.length < w) {
        throw new IoError('invalid_argument', `Cannot promote ${address}: ${before.length} rw replicas, fewer than the minimum ${w} (a new engine may run on the others; only a salvage may do this)`);
      }
      member.mode = 'rw';
      await this.recordMembership(`replica ${address} promoted to rw`);
      const kept = before.filter((m) => m.mode === 'rw').length;
      if (!this.promoteBelowMinimum && kept < w && member.mode === 'rw') {
        await this.dropMembers([member], `promotion undone: ${kept} of the ${before.length} rw replicas recorded it, fewer than the minimum ${w}`);
        throw new IoError('io', `Promotion of ${address} undone: ${kept} of the ${before.length} rw replicas recorded it, fewer than the minimum ${w}`);
      }
    });
  }

  /** Take a replica out of the write set on request (it is then in mode 'err'). */
  async removeReplica(address: string): Promise<void> {
    const member = this.members.find((m) => m.link.address === address && m.mode !== 'err');
    if (member === undefined) throw new IoError('invalid_argument', `No replica ${address} in the write set`);
    if (member.mode === 'rw' && this.rwCount() <= 1) {
      throw new IoError('invalid_argument', `Cannot remove ${address}: it is the last rw replica`);
    }
    await this.barrier.exclusive(() => this.dropMembers([member], 'removed on request'));
    await member.link.close();
  }

  /** Ping every replica of the write set; a replica that fails leaves it. */
  async pingAll(): Promise<void> {
    await this.fanOut((link) => link.ping()).catch((error: unknown) => {
      // fanOut already dropped the failed replicas and recorded why; a ping has no caller to
      // report to, so only the log keeps the error.
      this.log(`ping: ${toError(error).message}`);
    });
  }

  /**
   * Run the comparison of the replicas after start (start-repair.ts) in the background. `run`
   * reports its outcome in startRepair and never rejects; whenStartRepairDone() waits for it.
   */
  runStartRepair(run: () => Promise<unknown>): void {
    this.startRepairRun = run().then(
      () => undefined,
      (error: unknown) => this.log(`start repair: ${toError(error).message}`),
    );
  }

  whenStartRepairDone(): Promise<void> {
    return this.startRepairRun;
  }

  /** The rw replicas are known to hold the same data: reads may go to any of them from now on. */
  spreadReads(): void {
    this.readsSpread = true;
  }

  /**
   * Run `work` with the blocks of [offsetBytes, offsetBytes + lengthBytes) to itself: client writes
   * to them wait (range lock), and no snapshot or expansion runs (the barrier, shared).
   */
  async withRangeHeld<T>(offsetBytes: number, lengthBytes: number, work: () => Promise<T>): Promise<T> {
    this.assertOpen();
    return this.barrier.shared(async () => {
      const release = await this.lock.acquire(roundDown(offsetBytes), roundUp(offsetBytes + lengthBytes) - roundDown(offsetBytes));
      try {
        return await work();
      } finally {
        release();
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.barrier.exclusive(async () => {
      await Promise.allSettled(this.members.map((m) => m.link.close()));
    });
  }

  // ---- internals ----

  private async mutate(
    offsetBytes: number,
    lengthBytes: number,
    options: WriteOptions | undefined,
    apply: (alignedOffset: number, alignedLength: number) => Promise<void>,
  ): Promise<void> {
    this.assertOpen();
    const startMs = this.clock.monotonicMs();
    const alignedOffset = roundDown(offsetBytes);
    const alignedLength = roundUp(offsetBytes + lengthBytes) - alignedOffset;
    try {
      // Barrier and range lock are entered without waiting when nothing holds them against us
      // (the usual case): no promise or closure for either on a write's path.
      if (this.barrier.tryEnterShared()) {
        try {
          await this.mutateLocked(alignedOffset, alignedLength, options, apply);
        } finally {
          this.barrier.leaveShared();
        }
      } else {
        await this.barrier.shared(() => this.mutateLocked(alignedOffset, alignedLength, options, apply));
      }
      this.writeStats.record(lengthBytes, this.clock.monotonicMs() - startMs);
    } catch (error) {
      this.writeStats.recordError();
      throw error;
    }
  }

  /** Under the barrier (shared): take the blocks' range lock, apply, and flush for FUA. */
  private async mutateLocked(
    alignedOffset: number,
    alignedLength: number,
    options: WriteOptions | undefined,
    apply: (alignedOffset: number, alignedLength: number) => Promise<void>,
  ): Promise<void> {
    const release = this.lock.tryAcquire(alignedOffset, alignedLength) ?? (await this.lock.acquire(alignedOffset, alignedLength));
    try {
      await apply(alignedOffset, alignedLength);
    } finally {
      release();
    }
    if (options?.fua === true) await this.fanOut((link) => link.flush());
  }

  private async mergePartial(args: {
    alignedOffset: number;
    alignedLength: number;
    offsetBytes: number;
    data: Uint8Array;
  }): Promise<Uint8Array> {
    const { alignedOffset, alignedLength, offsetBytes, data } = args;
    const whole = new Uint8Array(alignedLength);
    const headPartial = offsetBytes !== alignedOffset;
    const tailPartial = (offsetBytes + data.length) % blockSizeBytes !== 0;
    // Read only the blocks the new data does not wholly cover: the first and the last.
    if (headPartial) whole.set(await this.readFromRw(alignedOffset, blockSizeBytes), 0);
    const lastBlock = alignedOffset + alignedLength - blockSizeBytes;
    if (tailPartial && (!headPartial || lastBlock !== alignedOffset)) {
      whole.set(await this.readFromRw(lastBlock, blockSizeBytes), alignedLength - blockSizeBytes);
    }
    whole.set(data, offsetBytes - alignedOffset);
    return whole;
  }

  private async zeroPartialEnds(args: {
    alignedOffset: number;
    alignedLength: number;
    offsetBytes: number;
    lengthBytes: number;
    innerStart: number;
    innerEnd: number;
  }): Promise<void> {
    const { alignedOffset, alignedLength, offsetBytes, lengthBytes, innerStart, innerEnd } = args;
    const alignedEnd = alignedOffset + alignedLength;
    if (innerStart >= innerEnd) {
      // The zeroed range lies within one or two blocks: one merged write covers it.
      const merged = await this.mergePartial({ alignedOffset, alignedLength, offsetBytes, data: new Uint8Array(lengthBytes) });
      await this.fanOut((link) => link.write(alignedOffset, merged));
      return;
    }
    if (alignedOffset < innerStart) {
      const merged = await this.mergePartial({
        alignedOffset,
        alignedLength: blockSizeBytes,
        offsetBytes,
        data: new Uint8Array(innerStart - offsetBytes),
      });
      await this.fanOut((link) => link.write(alignedOffset, merged));
    }
    await this.fanOutChunked(innerStart, innerEnd - innerStart, (link, offset, length) => link.writeZeroes(offset, length));
    if (innerEnd < alignedEnd) {
      const merged = await this.mergePartial({
        alignedOffset: innerEnd,
        alignedLength: blockSizeBytes,
        offsetBytes: innerEnd,
        data: new Uint8Array(offsetBytes + lengthBytes - innerEnd),
      });
      await this.fanOut((link) => link.write(innerEnd, merged));
    }
  }

  /**
   * Reads from one rw replica, failing over to the next on error. A read never drops the last rw
   * replica: the client gets the error instead (issue #9: reads that timed out on a loaded machine
   * dropped every healthy replica in turn, and the volume could serve nothing more).
   */
  private async readFromRw(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    for (;;) {
      const source = this.readSource();
      if (source === undefined) throw new IoError('io', `Volume ${this.volumeName} has no rw replica to read from`);
      // The lease costs a w = 1 volume nothing, and a held lease no promise or array per read.
      const leased = this.lease.active;
      if (leased && !this.readLeaseHeld()) await this.holdReadLease();
      const sentMs = leased ? this.clock.monotonicMs() : 0;
      try {
        const data = await source.link.read(offsetBytes, lengthBytes);
        if (leased) this.lease.answered(source.link, sentMs);
        return data;
      } catch (error) {
        if (isStaleEpoch(error)) await this.fail([{ member: source, error }]); // fences and throws
        // No await between this check and fail() moving it to 'err': two reads failing at once
        // cannot both see two rw replicas and drop both.
        if (source.mode === 'rw' && this.rwCount() <= 1) {
          throw new IoError('io', `Cannot read ${lengthBytes} bytes at ${offsetBytes} from ${source.link.address}, the last rw replica: ${toError(error).message}`, { cause: error });
        }
        await this.fail([{ member: source, error }]);
      }
    }
  }

  /**
   * Until the replicas are known equal (start-repair.ts), the first rw replica: repeated reads of a
   * block never alternate between the old and new data of a write that was in flight at a crash
   * (DESIGN §2.8 rule 7). Then the rw replicas in turn.
   */
  private readSource(): EngineMember | undefined {
    if (!this.readsSpread) return this.members.find((m) => m.mode === 'rw');
    const count = this.members.length;
    for (let i = 0; i < count; i++) {
      const at = (this.nextReader + i) % count;
      const member = this.members[at]!;
      if (member.mode === 'rw') {
        this.nextReader = (at + 1) % count;
        return member;
      }
    }
    return undefined;
  }

  /**
   * With w >= 2, a read is served only while w rw replicas answered within the lease (read-lease.ts):
   * else a new engine may already acknowledge writes on the others. A lapsed lease is renewed by
   * pinging the rw replicas once; a stale_epoch answer fences this engine.
   */
  /** Whether w rw replicas answered within the lease: the per-read check, with no allocation. */
  private readLeaseHeld(): boolean {
    const nowMs = this.clock.monotonicMs();
    let fresh = 0;
    for (const m of this.members) if (m.mode === 'rw' && this.lease.isFresh(m.link, nowMs)) fresh++;
    return fresh >= this.minimumWriteReplicas;
  }

  private async holdReadLease(): Promise<void> {
    const rwLinks = (): ReplicaLink[] => this.members.filter((m) => m.mode === 'rw').map((m) => m.link);
    if (this.lease.refusal(rwLinks()) === null) return;
    if (rwLinks().length >= this.minimumWriteReplicas) {
      const stale = (await this.lease.renew(rwLinks())).find(isStaleEpoch);
      if (stale !== undefined) this.fence(`read lease renewal: ${toError(stale).message}`);
      this.assertNotFenced();
    }
    const why = this.lease.refusal(rwLinks());
    if (why === null) return;
    if (this.lease.shouldLogRefusal()) this.log(`reads refused (the next 10 s are not logged): ${why}`);
    throw new IoError('io', `Volume ${this.volumeName}: read refused: ${why}`);
  }

  private writeSet(): EngineMember[] {
    return this.members.filter((m) => m.mode === 'rw' || m.mode === 'wo');
  }

  private rwCount(): number {
    let count = 0;
    for (const m of this.members) if (m.mode === 'rw') count++;
    return count;
  }

  /**
   * Runs op on every replica of the write set. Resolves when every member that is still in the
   * write set has done it and any resulting write-set change is durably recorded.
   */
  private async fanOut(op: MemberOp): Promise<void> {
    const targets = this.writeSet();
    if (targets.length === 0) throw new IoError('io', `Volume ${this.volumeName} has no replica in its write set`);
    const failures: { member: EngineMember; error: unknown }[] = [];
    const sentMs = this.lease.active ? this.clock.monotonicMs() : 0;
    if (targets.length === 1) {
      // One replica (a single-replica volume): the same outcome without allSettled's bookkeeping.
      const member = targets[0]!;
      try {
        await op(member.link);
      } catch (error) {
        failures.push({ member, error });
      }
    } else {
      const results = await Promise.allSettled(targets.map((m) => op(m.link)));
      for (let i = 0; i < results.length; i++) {
        const result = results[i]!;
        if (result.status === 'rejected') failures.push({ member: targets[i]!, error: result.reason });
      }
    }
    // Every replica refused the request itself (not a failure of one replica): they all still
    // hold the same data, so none is dropped and the client gets the error.
    const first = failures[0]?.error;
    if (this.lease.active) for (const m of targets) if (!failures.some((f) => f.member === m)) this.lease.answered(m.link, sentMs);
    if (failures.length === targets.length && isRequestRejection(first)) throw first;
    if (failures.length > 0) await this.fail(failures);
    // A write-set change started by another request must be on disk before we acknowledge.
    if (this.membershipChangesPending > 0) await this.membershipChange;
    this.assertNotFenced();
    const rw = this.rwCount();
    if (rw === 0) throw new IoError('io', `Volume ${this.volumeName}: every replica failed`);
    if (rw < this.minimumWriteReplicas) {
      throw new IoError('io', `Volume ${this.volumeName}: ${rw} rw replicas, fewer than the minimum ${this.minimumWriteReplicas}`);
    }
  }

  /** Zero and trim ranges may be as large as the volume; a replica request is at most requestSizeMaxBytes. */
  private async fanOutChunked(
    offsetBytes: number,
    lengthBytes: number,
    op: (link: ReplicaLink, offsetBytes: number, lengthBytes: number) => Promise<void>,
  ): Promise<void> {
    for (let done = 0; done < lengthBytes; done += requestSizeMaxBytes) {
      const length = Math.min(requestSizeMaxBytes, lengthBytes - done);
      await this.fanOut((link) => op(link, offsetBytes + done, length));
    }
  }

  private async fail(failures: readonly { member: EngineMember; error: unknown }[]): Promise<void> {
    const stale = failures.find((f) => isStaleEpoch(f.error));
    if (stale !== undefined) this.fence(`${stale.member.link.address}: ${toError(stale.error).message}`);
    this.assertNotFenced();
    const live = failures.filter((f) => f.member.mode !== 'err');
    for (const f of live) f.member.lastError = toError(f.error).message;
    if (live.length > 0) {
      const reason = live.map((f) => `${f.member.link.address}: ${toError(f.error).message}`).join('; ');
      await this.dropMembers(live.map((f) => f.member), reason);
    }
    await this.membershipChange;
    this.assertNotFenced();
  }

  /** Move members to 'err' now (no new request goes to them) and record the new write set. */
  private dropMembers(members: readonly EngineMember[], reason: string): Promise<void> {
    let recordNeeded = false;
    for (const member of members) {
      if (member.mode === 'err') continue;
      if (member.mode === 'rw') recordNeeded = true;
      member.mode = 'err';
    }
    if (!recordNeeded) return this.membershipChange;
    const dropped = members.map((m) => m.link.address).join(', ');
    return this.recordMembership(`dropped ${dropped} (${reason})`);
  }

  /**
   * Record {generation + 1, rw members} on every rw member, chained after any earlier change so
   * that generations are written in order. A member that fails to record it is dropped too.
   */
  private recordMembership(why: string): Promise<void> {
    this.membershipChangesPending++;
    const next = this.membershipChange.then(async () => {
      try {
        await this.recordMembershipNow(why);
      } finally {
        this.membershipChangesPending--;
      }
    });
    this.membershipChange = next;
    return next;
  }

  private async recordMembershipNow(why: string): Promise<void> {
    for (;;) {
      const rw = this.members.filter((m) => m.mode === 'rw');
      if (rw.length === 0) {
        this.log(`write set empty after: ${why}`);
        return;
      }
      const generation = this.generation + 1;
      // address#instanceId: a start-up can then tell a member from another replica on its port.
      const members = rw.map((m) => memberId({ address: m.link.address, instanceId: m.link.instanceId ?? null }));
      const results = await Promise.allSettled(rw.map((m) => m.link.setMembership({ generation, members })));
      this.generation = generation;
      const staleAt = results.findIndex((r) => r.status === 'rejected' && isStaleEpoch(r.reason));
      if (staleAt >= 0) {
        this.fence(`${rw[staleAt]!.link.address} refused generation ${generation}: ${toError((results[staleAt] as PromiseRejectedResult).reason).message}`);
        return;
      }
      const failed = rw.filter((_, i) => results[i]?.status === 'rejected');
      if (failed.length === 0) {
        this.log(`generation ${generation}: members ${members.join(', ')} (${why})`);
        return;
      }
      for (const m of failed) {
        m.mode = 'err';
        m.lastError = 'failed to record membership';
      }
      why = `${why}; then dropped ${failed.map((m) => m.link.address).join(', ')} (membership record failed)`;
    }
  }

  private checkRange(what: string, offsetBytes: number, lengthBytes: number): void {
    this.assertOpen();
    if (!Number.isSafeInteger(offsetBytes) || !Number.isSafeInteger(lengthBytes) || offsetBytes < 0 || lengthBytes < 0) {
      throw new IoError('invalid_argument', `Cannot ${what}: bad offset ${offsetBytes} or length ${lengthBytes}`);
    }
    if (lengthBytes > requestSizeMaxBytes && what !== 'trim' && what !== 'write zeroes' && what !== 'block status') {
      throw new IoError('invalid_argument', `Cannot ${what} ${lengthBytes} bytes: the limit is ${requestSizeMaxBytes}`);
    }
    if (offsetBytes + lengthBytes > this.size) {
      throw new IoError('out_of_range', `Cannot ${what}: offset ${offsetBytes} + length ${lengthBytes} exceeds volume size ${this.size}`);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new IoError('closed', `Volume ${this.volumeName}: engine is closed`);
    this.assertNotFenced();
  }

  private assertNotFenced(): void {
    if (this.fencedReason !== null) throw new IoError('io', `Volume ${this.volumeName}: this engine (epoch ${this.epoch}) is fenced by a newer one (${this.fencedReason})`);
  }

  /**
   * A replica answered stale_epoch: some engine with a higher epoch accepted it, so this one no
   * longer owns the volume. Going on with the replicas not yet fenced would be a split brain (S29:
   * a new engine that died while fencing left some replicas fenced, and the old engine dropped
   * them, recorded a generation on the rest and kept acknowledging writes there). So every member
   * goes to 'err' without a membership record — the newer engine's records decide what happens
   * next — and every request from now on fails.
   */
  private fence(reason: string): void {
    if (this.fencedReason !== null) return;
    this.fencedReason = reason;
    for (const member of this.members) {
      member.mode = 'err';
      member.lastError = `fenced: ${reason}`;
    }
    this.log(`fenced by a newer engine, serving nothing more: ${reason}`);
  }
}

/** Errors with which a replica refuses a request as malformed, rather than failing to do it. */
const requestRejectionCodes: ReadonlySet<string> = new Set(['bad_request', 'out_of_range', 'invalid_argument']);

function isStaleEpoch(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === 'stale_epoch';
}

function isRequestRejection(error: unknown): error is Error {
  if (!(error instanceof Error) || !('code' in error)) return false;
  return requestRejectionCodes.has(String(error.code));
}

function roundDown(bytes: number): number {
  return bytes - (bytes % blockSizeBytes);
}

function roundUp(bytes: number): number {
  return roundDown(bytes + blockSizeBytes - 1);
}
