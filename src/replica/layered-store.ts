// The replica store: a chain (tree) of layers in one directory — a writable head over sealed
// snapshots — as sparse files, with one resolved in-memory index "block range → layer" for the
// head's ancestry, so a read costs the same at any chain depth (docs/replica-format.md).
//
// Invariants:
// - The index maps a block to the newest layer in the head's ancestry that holds it (value
//   slot × 2, or slot × 2 + 1 where that layer records zeros); unmapped blocks read as zeros.
// - The head's journal only names ranges whose data was fdatasync'ed first; ranges written since
//   the last flush are in memory (HeadJournal.pending) and may be lost by a crash, never half-shown.
// - Every chain change commits with one atomic replace of replica.meta; files a crash leaves
//   unreferenced are removed on open; a durable purge intent is rolled forward on open.
// - Lock order: chainLock, then gate, then rangeLock. Data operations hold the gate shared;
//   commits that swap layers hold it exclusively. Chain changes hold chainLock exclusively; reads
//   of one layer (rebuild source, backup, checksums) hold it shared, a request or a chunk at a
//   time, so they run alongside each other and alongside writes.
import type { Clock } from '../lib/clock.ts';
import { blockSizeBytes, checksumChunkSizeBytes, journalCompactBytes, metadataSizeMaxBytes, replicaOpenLayerFilesMax, requestSizeMaxBytes, snapshotCountMax } from '../lib/limits.ts';
import type { ChainInfo, LayerExtent, ReplicaStore, SnapshotOptions, ChunkChecksum } from './replica-store.ts';
import { joinPath, type ReplicaFile, type ReplicaFiles } from './replica-files.ts';
import { ReplicaError, ioFailure } from './replica-error.ts';
import { AsyncMutex, RangeLock, RwGate } from './async-locks.ts';
import { AsyncRwLock } from './async-rw-lock.ts';
import { ExtentMap } from './extent-map.ts';
import { HeadJournal } from './head-journal.ts';
import { LayerFileCache } from './layer-file-cache.ts';
import { clipRanges, type LayerRange } from './layer-codec.ts';
import { checkVolumeSize, isValidName, type ReplicaMeta, type SnapshotRecord } from './replica-meta.ts';
import { checkMembership, checkSnapshotOptions, describeChain, initialReplicaMeta } from './store-arguments.ts';
import { createHeadFiles, layerFileName, loadExtents, metaOutcomeOf, readMeta, removeUnreferenced, writeExtents, writeMeta, type DirContext } from './replica-dir.ts';
import { completeCoalesce, planPurgeStep, prepareCoalesce } from './purge-step.ts';
import { LayerChecksums, type ChecksumPort } from './chunk-checksums.ts';
import type { PaceSleep } from './checksum-pacer.ts';
import { LayerReceiver } from './layer-receiver.ts';
import { planInstall, type InstallLayer } from './install-plan.ts';

/**
 * Named points inside multi-step operations where a test may simulate a crash: the hook throws,
 * the test crashes the memory files and reopens. Production passes nothing.
 */
export type FaultPointHook = (name: string) => void;

export interface OpenReplicaStoreOptions {
  /** The replica directory (created by createReplicaStore). */
  readonly dir: string;
  readonly files: ReplicaFiles;
  readonly clock: Clock;
  readonly faultPoint?: FaultPointHook;
  /** Bound of the cache of open layer files (default: limits.replicaOpenLayerFilesMax). */
  readonly openLayerFilesMax?: number;
  /** Journal length that triggers a compaction check (default: limits.journalCompactBytes). */
  readonly journalCompactBytes?: number;
  /** Background hashing of sealed layers, bytes of data per second (default 0: off; chunk-checksums.ts). */
  readonly checksumBytesPerSecond?: number;
  /** How background hashing waits out its pace (tests: a ManualClock's advance). */
  readonly checksumSleep?: PaceSleep;
  readonly log?: (message: string) => void;
}

export interface CreateReplicaStoreOptions extends OpenReplicaStoreOptions {
  readonly volumeName: string;
  /** Whole blocks (limits.blockSizeBytes), at most limits.volumeSizeMaxBytes. */
  readonly sizeBytes: number;
}

type StoreState = 'open' | 'failed' | 'closed';

/** What one open store knows about a layer besides the metadata: its index slot. */
interface LayerSlot {
  readonly slot: number;
  dataFile: string;
}

const dataValue = (slot: number): number => slot * 2;
const zeroValue = (slot: number): number => slot * 2 + 1;
const slotOf = (value: number): number => Math.floor(value / 2);

/** Create a new replica in `dir` (made if missing). Throws ReplicaError 'already_exists' if it holds one. */
export async function createReplicaStore(options: CreateReplicaStoreOptions): Promise<LayeredReplicaStore> {
  const { dir, files, volumeName, sizeBytes } = options;
  if (!isValidName(volumeName)) throw new ReplicaError('invalid_argument', `Invalid volume name ${JSON.stringify(volumeName)}`);
  checkVolumeSize(sizeBytes);
  const ctx: DirContext = { files, dir };
  try {
    await files.mkdir(dir);
    if ((await files.list(dir)).includes('replica.meta')) {
      throw new ReplicaError('already_exists', `${dir} already holds a replica`);
    }
    const meta = initialReplicaMeta(volumeName, sizeBytes, options.clock.nowMs());
    await createHeadFiles(ctx, { ...meta.head, sizeBytes, blockSizeBytes });
    await files.syncDir(dir);
    await writeMeta(ctx, meta);
  } catch (error) {
    throw ioFailure(`Cannot create a replica in ${dir}`, error);
  }
  return openReplicaStore(options);
}

/** Open the replica in `dir`. Throws ReplicaError 'not_found' if there is none, 'corrupt' or
 * 'unsupported_version' if its files cannot be trusted. */
export async function openReplicaStore(options: OpenReplicaStoreOptions): Promise<LayeredReplicaStore> {
  const ctx: DirContext = { files: options.files, dir: options.dir };
  let meta = await readMeta(ctx, metadataSizeMaxBytes);
  try {
    await removeUnreferenced(ctx, meta);
    if (meta.pending !== null) {
      meta = await completeCoalesce(ctx, meta, options.faultPoint);
      await removeUnreferenced(ctx, meta);
    }
    const store = new LayeredReplicaStore(options, meta);
    await store.load();
    return store;
  } catch (error) {
    throw ioFailure(`Cannot open the replica in ${options.dir}`, error);
  }
}

export class LayeredReplicaStore implements ReplicaStore {
  readonly volumeName: string;
  private readonly ctx: DirContext;
  private readonly clock: Clock;
  private readonly faultPoint: FaultPointHook | undefined;
  private meta: ReplicaMeta;
  private state: StoreState = 'open';
  private failure: Error | undefined;
  private index = new ExtentMap();
  private readonly slots = new Map<number, LayerSlot>();
  private readonly slotByName = new Map<string, number>();
  private nextSlot = 1;
  private headSlot = 0;
  private headData: ReplicaFile | undefined;
  private journal: HeadJournal | undefined;
  private nextFileId: number;
  private readonly cache: LayerFileCache;
  private readonly checksumFiles: LayerChecksums;
  private readonly chainLock = new AsyncRwLock();
  private readonly flushMutex = new AsyncMutex();
  private readonly gate = new RwGate();
  private readonly rangeLock = new RangeLock();
  readonly receiver: LayerReceiver; // rebuild, receiving side: staged layers go in by installReceived()
  /** Files a finished operation could not remove; the next open removes them. */
  cleanupFailures = 0;
  private readonly journalCompactBytes: number;
  /** Journal length at which to consider compacting next. */
  private compactCheckBytes: number;

  constructor(options: OpenReplicaStoreOptions, meta: ReplicaMeta) {
    this.ctx = { files: options.files, dir: options.dir };
    this.clock = options.clock;
    this.faultPoint = options.faultPoint;
    this.meta = meta;
    this.volumeName = meta.volumeName;
    this.nextFileId = meta.nextFileId;
    this.cache = new LayerFileCache({ files: options.files, dir: options.dir, openMax: options.openLayerFilesMax ?? replicaOpenLayerFilesMax });
    const { checksumSleep: sleep, faultPoint, log } = options;
    this.checksumFiles = new LayerChecksums({ ctx: this.ctx, port: this.checksumPort(), clock: options.clock, bytesPerSecond: options.checksumBytesPerSecond ?? 0, sleep, faultPoint, log });
    this.journalCompactBytes = options.journalCompactBytes ?? journalCompactBytes;
    this.compactCheckBytes = this.journalCompactBytes;
    this.receiver = new LayerReceiver(this, { ...this.ctx, allocateFileId: () => this.nextFileId++ });
  }

  /** Open the head, replay its journal and build the index (called once, by openReplicaStore). */
  async load(): Promise<void> {
    for (const s of this.meta.snapshots) this.addSlot(s.name, s.dataFile);
    this.headSlot = this.addSlot(null, this.meta.head.dataFile);
    await this.checksumFiles.scan();
    await this.rebuildIndex(this.meta.head.parent);
    await this.openHead();
    this.checksumFiles.start();
  }

  sizeBytes(): number {
    return this.meta.sizeBytes;
  }

  // ---- data path -------------------------------------------------------------------------

  read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    this.checkIo(offsetBytes, lengthBytes);
    return this.gate.runShared(async () => {
      this.checkUsable();
      return this.readResolved(offsetBytes, lengthBytes);
    });
  }

  write(offsetBytes: number, data: Uint8Array): Promise<void> {
    this.checkIo(offsetBytes, data.length);
    if (data.length === 0) return Promise.resolve();
    return this.mutate(offsetBytes, data.length, async (b0, b1) => {
      const aligned = offsetBytes % blockSizeBytes === 0 && data.length % blockSizeBytes === 0;
      const blocks = aligned ? data : await this.mergePartial(offsetBytes, data, b0, b1);
      await this.writeHeadBlocks(b0, blocks);
    });
  }

  writeZeroes(offsetBytes: number, lengthBytes: number): Promise<void> {
    this.checkIo(offsetBytes, lengthBytes);
    if (lengthBytes === 0) return Promise.resolve();
    return this.mutate(offsetBytes, lengthBytes, async (b0, b1) => {
      const end = offsetBytes + lengthBytes;
      const c0 = Math.ceil(offsetBytes / blockSizeBytes);
      const c1 = Math.floor(end / blockSizeBytes);
      // Whole blocks become a zero range of the head (hiding every older layer); a partial block
      // at either edge is a read-modify-write of zeros into its data.
      if (c0 < c1) this.noteHeadRange({ startBlock: c0, blockCount: c1 - c0, kind: 'zero' });
      const edges = new Set<number>();
      if (offsetBytes % blockSizeBytes !== 0) edges.add(b0);
      if (end % blockSizeBytes !== 0) edges.add(b1 - 1);
      for (const block of edges) {
        const blockStart = block * blockSizeBytes;
        const bytes = await this.readResolved(blockStart, blockSizeBytes);
        bytes.fill(0, Math.max(offsetBytes, blockStart) - blockStart, Math.min(end, blockStart + blockSizeBytes) - blockStart);
        await this.writeHeadBlocks(block, bytes);
      }
    });
  }

  /** Discard reads as zeros afterwards (like writeZeroes). Space is not given back: Node cannot
   * punch holes, so the head file keeps its blocks until the layer is deleted. */
  trim(offsetBytes: number, lengthBytes: number): Promise<void> {
    return this.writeZeroes(offsetBytes, lengthBytes);
  }

  async flush(): Promise<void> {
    await this.gate.runShared(async () => {
      this.checkUsable();
      await this.flushHead();
    });
    if (this.journal !== undefined && this.journal.sizeBytes >= this.compactCheckBytes) await this.compactJournal();
  }

  /**
   * Rewrite a long head journal as one record per journalRecordEntriesMax of the head's current
   * ranges: a new journal file, synced, then one metadata commit switches to it. Runs with the
   * store to itself after a flush, so the index holds exactly what is durable.
   */
  private compactJournal(): Promise<void> {
    return this.chainLock.exclusive(() =>
      this.gate.runExclusive(async () => {
        this.checkUsable();
        await this.flushHead();
        const ranges = this.headRanges(0, Infinity);
        const journal = this.journal!;
        if (journal.sizeBytes < 4 * HeadJournal.compactedBytes(ranges.length)) {
          this.compactCheckBytes = Math.max(this.journalCompactBytes, 2 * journal.sizeBytes);
          return;
        }
        const journalFile = layerFileName(this.nextFileId++, 'journal');
        const file = await this.ctx.files.open(joinPath(this.ctx.dir, journalFile), 'create');
        try {
          await HeadJournal.writeCompacted(file, ranges, blockSizeBytes);
        } finally {
          await file.close();
        }
        await this.ctx.files.syncDir(this.ctx.dir);
        this.fault('compact:written');
        const old = this.meta.head.journalFile;
        await this.commit({ ...this.meta, head: { ...this.meta.head, journalFile } });
        this.fault('compact:committed');
        await journal.close();
        const handle = await this.ctx.files.open(joinPath(this.ctx.dir, journalFile), 'write');
        const what = joinPath(this.ctx.dir, journalFile);
        this.journal = new HeadJournal(handle, await HeadJournal.replay(handle, { blockSizeBytes, volumeBlocks: this.meta.sizeBytes / blockSizeBytes, what }, () => undefined));
        this.compactCheckBytes = Math.max(this.journalCompactBytes, 4 * this.journal.sizeBytes);
        await this.removeFiles([old]);
      }),
    );
  }

  // ---- chain operations ---------------------------------------------------------------------

  snapshot(options: SnapshotOptions): Promise<void> {
    const { name, kind, labels, createdMs } = checkSnapshotOptions(options, this.clock.nowMs());
    return this.chainLock.exclusive(() =>
      this.gate.runExclusive(async () => {
        this.checkUsable();
        if (this.slotByName.has(name)) throw new ReplicaError('already_exists', `Snapshot ${name} already exists`);
        if (this.meta.snapshots.length >= snapshotCountMax) {
          throw new ReplicaError('too_many_snapshots', `The chain holds ${this.meta.snapshots.length} snapshots, the most allowed`);
        }
        await this.flushHead();
        this.fault('snapshot:flushed');
        const extentFile = layerFileName(this.nextFileId++, 'extents');
        await writeExtents(this.ctx, extentFile, this.headRanges(0, Infinity), blockSizeBytes);
        this.fault('snapshot:extents-written');
        const head = { dataFile: layerFileName(this.nextFileId++, 'data'), journalFile: layerFileName(this.nextFileId++, 'journal'), parent: name };
        await createHeadFiles(this.ctx, { ...head, sizeBytes: this.meta.sizeBytes, blockSizeBytes });
        await this.ctx.files.syncDir(this.ctx.dir);
        this.fault('snapshot:head-created');
        const sealed: SnapshotRecord = {
          name,
          parent: this.meta.head.parent,
          createdMs,
          kind,
          labels,
          removed: false,
          dataFile: this.meta.head.dataFile,
          extentFile,
          dataBlocks: this.index.blocksWithValue(dataValue(this.headSlot)),
        };
        const oldJournalFile = this.meta.head.journalFile;
        await this.commit({ ...this.meta, head, snapshots: [...this.meta.snapshots, sealed] });
        this.fault('snapshot:committed');
        // The old head's slot becomes the snapshot's; its open data file moves to the cache.
        this.slotByName.set(name, this.headSlot);
        await this.cache.adopt(sealed.dataFile, this.headData!);
        await this.journal!.close();
        this.headData = undefined;
        this.journal = undefined;
        this.headSlot = this.addSlot(null, head.dataFile);
        await this.openHead();
        await this.removeFiles([oldJournalFile]);
        this.checksumFiles.wake();
      }),
    );
  }

  chain(): ChainInfo {
    return describeChain(this.meta, this.index.blocksWithValue(dataValue(this.headSlot)) * blockSizeBytes, (extentFile) => this.checksumFiles.state(extentFile));
  }

  markRemoved(snapshotName: string): Promise<void> {
    return this.chainLock.exclusive(async () => {
      this.checkUsable();
      const record = this.snapshotRecord(snapshotName);
      if (record.removed) return;
      const snapshots = this.meta.snapshots.map((s) => (s.name === snapshotName ? { ...s, removed: true } : s));
      await this.commit({ ...this.meta, snapshots });
    });
  }

  purge(): Promise<string[]> {
    return this.chainLock.exclusive(async () => {
      this.checkUsable();
      const purged: string[] = [];
      for (;;) {
        const step = planPurgeStep(this.meta);
        if (step === null) {
          this.checksumFiles.wake(); // a merged layer has a new extent file, without sums
          return purged;
        }
        if (step.kind === 'delete') {
          const record = this.snapshotRecord(step.name);
          await this.gate.runExclusive(async () => {
            await this.commit({ ...this.meta, snapshots: this.meta.snapshots.filter((s) => s.name !== step.name) });
            this.fault('purge:deleted');
            await this.cache.drop(record.dataFile);
            this.dropSlot(step.name);
            this.checksumFiles.forget(record.extentFile);
          });
          await this.removeFiles([record.dataFile, record.extentFile, `${record.extentFile}.sum`]);
        } else {
          const limits = { blockSizeBytes, volumeBlocks: this.meta.sizeBytes / blockSizeBytes };
          const pending = await prepareCoalesce(this.ctx, this.meta, { parent: step.parent, child: step.child, limits, extentFile: layerFileName(this.nextFileId++, 'extents') });
          this.fault('purge:extents-written');
          await this.commit({ ...this.meta, nextFileId: this.nextFileId, pending });
          this.fault('purge:intent-recorded');
          await this.finishCoalesce();
        }
        purged.push(step.kind === 'delete' ? step.name : step.parent);
      }
    });
  }

  revert(snapshotName: string): Promise<void> {
    return this.chainLock.exclusive(() =>
      this.gate.runExclusive(async () => {
        this.checkUsable();
        const target = this.snapshotRecord(snapshotName);
        if (target.removed) throw new ReplicaError('conflict', `Cannot revert to ${snapshotName}: it is marked removed`);
        const old = this.meta.head;
        const head = { dataFile: layerFileName(this.nextFileId++, 'data'), journalFile: layerFileName(this.nextFileId++, 'journal'), parent: snapshotName };
        await createHeadFiles(this.ctx, { ...head, sizeBytes: this.meta.sizeBytes, blockSizeBytes });
        await this.ctx.files.syncDir(this.ctx.dir);
        this.fault('revert:head-created');
        await this.commit({ ...this.meta, head });
        this.fault('revert:committed');
        await this.headData!.close();
        await this.journal!.close();
        this.headData = undefined;
        this.journal = undefined;
        this.slots.delete(this.headSlot);
        this.headSlot = this.addSlot(null, head.dataFile);
        await this.rebuildIndex(snapshotName);
        await this.openHead();
        await this.removeFiles([old.dataFile, old.journalFile]);
      }),
    );
  }

  expand(sizeBytes: number): Promise<void> {
    checkVolumeSize(sizeBytes);
    return this.chainLock.exclusive(() =>
      this.gate.runExclusive(async () => {
        this.checkUsable();
        if (sizeBytes === this.meta.sizeBytes) return;
        if (sizeBytes < this.meta.sizeBytes) {
          throw new ReplicaError('invalid_argument', `Cannot shrink the volume from ${this.meta.sizeBytes} to ${sizeBytes} bytes`);
        }
        await this.flushHead();
        await this.headData!.truncate(sizeBytes);
        await this.headData!.sync();
        this.fault('expand:head-extended');
        await this.commit({ ...this.meta, sizeBytes });
        this.fault('expand:committed');
      }),
    );
  }

  async checksums(snapshotName: string | null, range: LayerExtent): Promise<ChunkChecksum[]> {
    this.checkRange(range.offsetBytes, range.lengthBytes, Infinity);
    if (snapshotName !== null) {
      // No lock held while the sums are computed: the keeper takes the chain lock shared per chunk.
      const record = await this.chainLock.shared(() => {
        this.checkUsable();
        return Promise.resolve(this.snapshotRecord(snapshotName));
      });
      return this.checksumFiles.checksums(record, range, this.meta.sizeBytes);
    }
    return this.chainLock.shared(() =>
      this.gate.runShared(async () => {
        this.checkUsable();
        const chunkBlocks = checksumChunkSizeBytes / blockSizeBytes;
        const b0 = Math.floor(range.offsetBytes / checksumChunkSizeBytes) * chunkBlocks;
        const b1 = Math.ceil((range.offsetBytes + range.lengthBytes) / checksumChunkSizeBytes) * chunkBlocks;
        return this.checksumFiles.headChecksums({
          range, volumeSizeBytes: this.meta.sizeBytes, ranges: this.headRanges(b0, b1), read: (offset, length) => this.readFileRange(this.meta.head.dataFile, offset, length),
        });
      }),
    );
  }

  /** Background hashing's view of the chain (chunk-checksums.ts): a sealed layer at a time, the chain lock shared. */
  private checksumPort(): ChecksumPort {
    return {
      layers: () => this.meta.snapshots,
      withLayer: (extentFile, body) => this.chainLock.shared(async () => {
        this.checkUsable();
        const record = this.meta.snapshots.find((s) => s.extentFile === extentFile);
        return record === undefined ? Promise.reject(new ReplicaError('not_found', `Layer ${extentFile} is no longer in the chain`)) : body(record);
      }),
      ranges: (layer) => this.sealedRanges(layer),
      read: (file, offset, length) => this.readFileRange(file, offset, length),
    };
  }

  layerExtents(layerName: string | null, range: LayerExtent): Promise<LayerExtent[]> {
    this.checkRange(range.offsetBytes, range.lengthBytes, Infinity);
    return this.chainLock.shared(() =>
      this.gate.runShared(async () => {
        this.checkUsable();
        const b0 = Math.floor(range.offsetBytes / blockSizeBytes);
        const b1 = Math.ceil((range.offsetBytes + range.lengthBytes) / blockSizeBytes);
        const ranges = layerName === null ? this.headRanges(b0, b1) : clipRanges(await this.sealedRanges(this.snapshotRecord(layerName)), b0, b1);
        return ranges.map((r) => ({ offsetBytes: r.startBlock * blockSizeBytes, lengthBytes: r.blockCount * blockSizeBytes, kind: r.kind }));
      }),
    );
  }

  readLayer(layerName: string | null, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    this.checkIo(offsetBytes, lengthBytes);
    return this.chainLock.shared(() =>
      this.gate.runShared(async () => {
        this.checkUsable();
        const out = new Uint8Array(lengthBytes);
        const b0 = Math.floor(offsetBytes / blockSizeBytes);
        const b1 = Math.ceil((offsetBytes + lengthBytes) / blockSizeBytes);
        const record = layerName === null ? undefined : this.snapshotRecord(layerName);
        const ranges = record === undefined ? this.headRanges(b0, b1) : clipRanges(await this.sealedRanges(record), b0, b1);
        const file = record === undefined ? this.meta.head.dataFile : record.dataFile;
        await Promise.all(
          ranges.filter((r) => r.kind === 'data').map((r) => this.readPiece(out, offsetBytes, { startBlock: r.startBlock, blockCount: r.blockCount, file })),
        );
        return out;
      }),
    );
  }

  /** Rebuild: make `layers` the head's ancestry up to the join snapshot, in one commit (install-plan.ts). */
  installReceived(layers: readonly InstallLayer[]): Promise<void> {
    return this.chainLock.exclusive(() =>
      this.gate.runExclusive(async () => {
        this.checkUsable();
        const plan = planInstall(this.meta, layers);
        const head = this.headRanges(0, Infinity);
        await this.commit(plan.meta);
        await Promise.all(plan.obsolete.map((o) => this.cache.drop(o.dataFile)));
        plan.obsolete.forEach((o) => [this.dropSlot(o.name), this.checksumFiles.forget(o.extentFile)]);
        for (const s of this.meta.snapshots) if (!this.slotByName.has(s.name)) this.addSlot(s.name, s.dataFile);
        // The head's own ranges (writes and trims during the rebuild) go back on top of the new ancestry.
        await this.rebuildIndex(this.meta.head.parent);
        for (const r of head) this.index.set(r.startBlock, r.blockCount, r.kind === 'data' ? dataValue(this.headSlot) : zeroValue(this.headSlot));
        await this.removeFiles(plan.obsolete.flatMap((o) => [o.dataFile, o.extentFile, `${o.extentFile}.sum`]));
        this.checksumFiles.wake();
      }),
    );
  }

  acceptEpoch(epoch: number): Promise<void> {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new ReplicaError('invalid_argument', `Invalid epoch ${epoch}`);
    return this.chainLock.exclusive(async () => {
      this.checkUsable();
      if (epoch < this.meta.epoch) {
        throw new ReplicaError('stale_epoch', `Epoch ${epoch} is older than the accepted epoch ${this.meta.epoch}`);
      }
      if (epoch === this.meta.epoch) return;
      await this.commit({ ...this.meta, epoch });
    });
  }

  setMembership(membership: { generation: number; members: readonly string[] }): Promise<void> {
    checkMembership(membership);
    const { generation } = membership;
    return this.chainLock.exclusive(async () => {
      this.checkUsable();
      if (generation < this.meta.generation) {
        throw new ReplicaError('conflict', `Generation ${generation} is older than the recorded generation ${this.meta.generation}`);
      }
      await this.commit({ ...this.meta, generation, members: [...membership.members] });
    });
  }

  async close(): Promise<void> {
    await this.checksumFiles.stop();
    return this.chainLock.exclusive(() =>
      this.gate.runExclusive(async () => {
        if (this.state === 'closed') return;
        try {
          if (this.state === 'open') await this.flushHead();
        } finally {
          this.state = 'closed';
          await this.headData?.close();
          await this.journal?.close();
          await this.cache.closeAll();
          this.index = new ExtentMap();
        }
      }),
    );
  }

  /** Bytes the resolved index occupies (for the benchmark and for status). */
  indexMemoryBytes(): number {
    return this.index.memoryBytes();
  }

  /** Ranges in the resolved index (for the benchmark and for status). */
  indexExtentCount(): number {
    return this.index.extentCount;
  }

  // ---- internals ----------------------------------------------------------------------------

  private fault(name: string): void {
    this.faultPoint?.(name);
  }

  private addSlot(name: string | null, dataFile: string): number {
    const slot = this.nextSlot++;
    this.slots.set(slot, { slot, dataFile });
    if (name !== null) this.slotByName.set(name, slot);
    return slot;
  }

  private dropSlot(name: string): void {
    const slot = this.slotByName.get(name);
    if (slot === undefined) return;
    this.slotByName.delete(name);
    this.slots.delete(slot);
  }

  private snapshotRecord(name: string): SnapshotRecord {
    const record = this.meta.snapshots.find((s) => s.name === name);
    if (record === undefined) throw new ReplicaError('not_found', `No snapshot named ${JSON.stringify(name).slice(0, 80)}`);
    return record;
  }

  private checkUsable(): void {
    if (this.state === 'closed') throw new ReplicaError('closed', `The replica in ${this.ctx.dir} is closed`);
    if (this.state === 'failed') {
      throw new ReplicaError('failed', `The replica in ${this.ctx.dir} failed (${this.failure?.message ?? 'unknown'}); rebuild it`, { cause: this.failure });
    }
  }

  private checkRange(offsetBytes: number, lengthBytes: number, maxBytes: number): void {
    if (!Number.isSafeInteger(offsetBytes) || !Number.isSafeInteger(lengthBytes) || offsetBytes < 0 || lengthBytes < 0) {
      throw new ReplicaError('invalid_argument', `Invalid range: offset ${offsetBytes}, length ${lengthBytes}`);
    }
    if (lengthBytes > maxBytes) throw new ReplicaError('out_of_range', `Length ${lengthBytes} exceeds the request maximum ${maxBytes}`);
    if (offsetBytes + lengthBytes > this.meta.sizeBytes) {
      throw new ReplicaError('out_of_range', `Range ${offsetBytes}+${lengthBytes} exceeds the volume size ${this.meta.sizeBytes}`);
    }
  }

  private checkIo(offsetBytes: number, lengthBytes: number): void {
    this.checkRange(offsetBytes, lengthBytes, requestSizeMaxBytes);
  }

  /** Fail for good after an error that leaves durability unknown (DESIGN §2.8 rule 1). */
  private fail(error: unknown): never {
    const cause = error instanceof Error ? error : new Error(String(error));
    if (this.state === 'open') {
      this.state = 'failed';
      this.failure = cause;
    }
    throw ioFailure(`Replica ${this.ctx.dir} failed`, error);
  }

  /** Run a data mutation on blocks [b0, b1) under the shared gate and the range lock. */
  private mutate(offsetBytes: number, lengthBytes: number, body: (b0: number, b1: number) => Promise<void>): Promise<void> {
    const b0 = Math.floor(offsetBytes / blockSizeBytes);
    const b1 = Math.ceil((offsetBytes + lengthBytes) / blockSizeBytes);
    return this.gate.runShared(async () => {
      this.checkUsable();
      await this.rangeLock.run(b0, b1, () => body(b0, b1));
      if (this.journal!.mustFlush) await this.flushHead();
    });
  }

  /** Whole blocks [b0, b1) holding `data` at `offsetBytes`, the partial edges read from the chain. */
  private async mergePartial(offsetBytes: number, data: Uint8Array, b0: number, b1: number): Promise<Uint8Array> {
    const blocks = new Uint8Array((b1 - b0) * blockSizeBytes);
    const base = b0 * blockSizeBytes;
    if (offsetBytes % blockSizeBytes !== 0) blocks.set(await this.readResolved(base, blockSizeBytes), 0);
    if ((offsetBytes + data.length) % blockSizeBytes !== 0 && (b1 - 1 > b0 || offsetBytes % blockSizeBytes === 0)) {
      blocks.set(await this.readResolved((b1 - 1) * blockSizeBytes, blockSizeBytes), (b1 - 1 - b0) * blockSizeBytes);
    }
    blocks.set(data, offsetBytes - base);
    return blocks;
  }

  private async writeHeadBlocks(startBlock: number, blocks: Uint8Array): Promise<void> {
    try {
      await this.headData!.write(blocks, startBlock * blockSizeBytes);
    } catch (error) {
      // A failed write fails only this request; the range is not recorded, so its old mapping
      // (and any bytes the failed write left in the head file) stay as the engine last saw them.
      throw ioFailure(`Cannot write ${blocks.length} bytes at ${startBlock * blockSizeBytes}`, error);
    }
    this.noteHeadRange({ startBlock, blockCount: blocks.length / blockSizeBytes, kind: 'data' });
  }

  private noteHeadRange(range: LayerRange): void {
    this.index.set(range.startBlock, range.blockCount, range.kind === 'data' ? dataValue(this.headSlot) : zeroValue(this.headSlot));
    this.journal!.push(range);
  }

  /** fdatasync the head's data, then append and sync the journal (the durability point). */
  private flushHead(): Promise<void> {
    return this.flushMutex.run(async () => {
      this.checkUsable();
      const journal = this.journal!;
      if (journal.pendingCount === 0) return;
      const ranges = journal.takePending();
      try {
        await this.headData!.sync();
        await journal.append(ranges);
      } catch (error) {
        this.fail(error);
      }
    });
  }

  /** Read through the index (the caller holds the gate). */
  private async readResolved(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    const out = new Uint8Array(lengthBytes);
    const b0 = Math.floor(offsetBytes / blockSizeBytes);
    const b1 = Math.ceil((offsetBytes + lengthBytes) / blockSizeBytes);
    const pieces: { startBlock: number; blockCount: number; file: string }[] = [];
    this.index.forEachIn(b0, b1, (startBlock, blockCount, value) => {
      if (value % 2 === 1) return; // zeros: the buffer already is
      const slot = this.slots.get(slotOf(value));
      if (slot === undefined) throw new ReplicaError('corrupt', `Index names layer slot ${slotOf(value)}, which is not open`);
      pieces.push({ startBlock, blockCount, file: slot.dataFile });
    });
    await (pieces.length === 1 ? this.readPiece(out, offsetBytes, pieces[0]!) : Promise.all(pieces.map((p) => this.readPiece(out, offsetBytes, p))));
    return out;
  }

  /** Copy the part of blocks [startBlock, +blockCount) of `file` that falls in `out` (at offsetBytes). */
  private async readPiece(out: Uint8Array, offsetBytes: number, piece: { startBlock: number; blockCount: number; file: string }): Promise<void> {
    const from = Math.max(piece.startBlock * blockSizeBytes, offsetBytes);
    const to = Math.min((piece.startBlock + piece.blockCount) * blockSizeBytes, offsetBytes + out.length);
    if (to <= from) return;
    const target = out.subarray(from - offsetBytes, to - offsetBytes);
    const got = await this.readFileInto(piece.file, target, from);
    if (got < target.length) {
      throw new ReplicaError('corrupt', `${piece.file} ends inside a range it holds (read ${got} of ${target.length} bytes at ${from})`);
    }
  }

  private async readFileInto(file: string, target: Uint8Array, positionBytes: number): Promise<number> {
    try {
      if (file === this.meta.head.dataFile && this.headData !== undefined) return await this.headData.read(target, positionBytes);
      return await this.cache.use(file, (f) => f.read(target, positionBytes));
    } catch (error) {
      throw ioFailure(`Cannot read ${target.length} bytes at ${positionBytes} of ${file}`, error);
    }
  }

  private async readFileRange(file: string, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    const out = new Uint8Array(lengthBytes);
    const got = await this.readFileInto(file, out, offsetBytes);
    if (got < lengthBytes) throw new ReplicaError('corrupt', `${file} ends inside a range it holds`);
    return out;
  }

  /** The head's own ranges within [b0, b1), from the index. */
  private headRanges(b0: number, b1: number): LayerRange[] {
    const out: LayerRange[] = [];
    const data = dataValue(this.headSlot);
    const zero = zeroValue(this.headSlot);
    this.index.forEachIn(b0, Math.min(b1, this.meta.sizeBytes / blockSizeBytes), (startBlock, blockCount, value) => {
      if (value === data || value === zero) out.push({ startBlock, blockCount, kind: value === data ? 'data' : 'zero' });
    });
    return out;
  }

  private sealedRanges(record: { readonly extentFile: string }): Promise<LayerRange[]> {
    return loadExtents(this.ctx, record.extentFile, { blockSizeBytes, volumeBlocks: this.meta.sizeBytes / blockSizeBytes });
  }

  /** Resolve the index for a head over `parent`: apply its ancestry oldest first. */
  private async rebuildIndex(parent: string | null): Promise<void> {
    const ancestry: SnapshotRecord[] = [];
    for (let name = parent; name !== null; ) {
      const record = this.snapshotRecord(name);
      ancestry.push(record);
      name = record.parent;
    }
    const index = new ExtentMap();
    for (const record of ancestry.reverse()) {
      const slot = this.slotByName.get(record.name)!;
      for (const r of await this.sealedRanges(record)) index.set(r.startBlock, r.blockCount, r.kind === 'data' ? dataValue(slot) : zeroValue(slot));
    }
    this.index = index;
  }

  /** Open the head's data file and journal, replaying the journal into the index. */
  private async openHead(): Promise<void> {
    const { dataFile, journalFile } = this.meta.head;
    const files = this.ctx.files;
    this.headData = await files.open(joinPath(this.ctx.dir, dataFile), 'write');
    const journalHandle = await files.open(joinPath(this.ctx.dir, journalFile), 'write');
    const data = dataValue(this.headSlot);
    const zero = zeroValue(this.headSlot);
    const replay = await HeadJournal.replay(
      journalHandle,
      { blockSizeBytes, volumeBlocks: this.meta.sizeBytes / blockSizeBytes, what: joinPath(this.ctx.dir, journalFile) },
      (r) => this.index.set(r.startBlock, r.blockCount, r.kind === 'data' ? data : zero),
    );
    this.journal = new HeadJournal(journalHandle, replay);
  }

  /** Commit new metadata; an unknown outcome (rename done, directory sync failed) fails the store. */
  private async commit(meta: ReplicaMeta): Promise<void> {
    const next = { ...meta, nextFileId: Math.max(meta.nextFileId, this.nextFileId) };
    try {
      await writeMeta(this.ctx, next);
    } catch (error) {
      if (metaOutcomeOf(error) === 'unchanged') throw error;
      this.fail(error);
    }
    this.meta = next;
  }

  /** Run the copy and commit of the coalesce recorded in meta.pending, then update memory. */
  private async finishCoalesce(): Promise<void> {
    const pending = this.meta.pending!;
    const parent = this.snapshotRecord(pending.parent);
    const child = this.snapshotRecord(pending.child);
    const committed = await completeCoalesce(this.ctx, this.meta, this.faultPoint, (meta) => this.commit(meta));
    const merged = committed.snapshots.find((s) => s.name === child.name)!;
    await this.gate.runExclusive(async () => {
      const parentSlot = this.slotByName.get(parent.name)!;
      const childSlot = this.slotByName.get(child.name)!;
      this.index.replaceValue(dataValue(parentSlot), dataValue(childSlot));
      this.index.replaceValue(zeroValue(parentSlot), zeroValue(childSlot));
      this.slots.get(childSlot)!.dataFile = merged.dataFile;
      this.dropSlot(parent.name);
      await this.cache.drop(parent.dataFile);
      await this.cache.drop(child.dataFile);
    });
    const unused: string[] = [parent.dataFile, child.dataFile].filter((f) => f !== merged.dataFile);
    await this.removeFiles([...unused, parent.extentFile, child.extentFile, `${parent.extentFile}.sum`, `${child.extentFile}.sum`]);
    this.checksumFiles.forget(parent.extentFile);
    this.checksumFiles.forget(child.extentFile);
  }

  /** Remove files the committed metadata no longer refers to. */
  private async removeFiles(names: readonly string[]): Promise<void> {
    for (const name of names) {
      try {
        await this.ctx.files.remove(joinPath(this.ctx.dir, name));
      } catch {
        // The operation is committed; an unreferenced file is garbage the next open removes.
        this.cleanupFailures++;
      }
    }
  }
}
