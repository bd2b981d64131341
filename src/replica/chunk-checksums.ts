// Per-chunk checksums of sealed layers (checksumChunkSizeBytes each; the digest: chunk-digests.ts),
// kept in `<extent file>.sum` (sealed layers never change; a purge that merges layers writes a new
// extent file, so the old sums are dropped with it). The head's are computed on every request and
// never kept: the head changes with every write (the engine compares heads after an unclean stop,
// holding its range lock over the chunks it asks for).
//
// A sealed layer's sums are computed once, by whichever comes first: the background worker (after
// a snapshot, a purge's merge or a rebuild's install, and at open for layers without a `.sum`),
// paced to a byte rate; or a `checksums` request (rebuild, scrub), which runs at full speed and,
// if the worker is on that layer, lifts its pacing and waits for it. Either way the layer is read
// a chunk at a time, each chunk under the store's chain lock held SHARED (ChecksumPort.withLayer),
// so writes, reads and other layer reads run alongside, and a chain change (snapshot, purge,
// revert) waits at most for one chunk. A purge that removes the layer makes the next chunk's
// withLayer fail: the computation stops and writes nothing. The file is written whole under a
// temporary name, synced, renamed and the directory synced, so a crash leaves either no `.sum` or
// a complete one (open removes the `.tmp`). A `.sum` that fails its checks is reported (state
// 'corrupt', ReplicaError 'corrupt' on requests), never trusted and never silently recomputed:
// recomputing would bless whatever the data holds now.
import { checksumChunkSizeBytes, checksumChunksPerRequestMax } from '../lib/limits.ts';
import type { Clock } from '../lib/clock.ts';
import type { ChecksumState, ChunkChecksum, LayerExtent } from './replica-store.ts';
import { joinPath } from './replica-files.ts';
import { ReplicaError } from './replica-error.ts';
import { checksumEntryBytes, checksumFileComputedSeconds, decodeChecksumFile, encodeChecksumFile, fileHeaderBytes, type ChunkDigest, type LayerRange } from './layer-codec.ts';
import { checksumFileName, readWholeFile, writeNewFile, type DirContext } from './replica-dir.ts';
import { digestChunk, readChunkData, splitByChunk } from './chunk-digests.ts';
import { ChecksumPacer, realSleep, type PaceSleep } from './checksum-pacer.ts';

const emptyDigest = digestChunk({ chunkIndex: 0, pieces: [], dataBytes: 0 }, []);

/** A sealed layer as the checksum keeper sees it. */
export interface SealedLayer {
  readonly name: string;
  readonly extentFile: string;
  readonly dataFile: string;
}

/** What the keeper needs from its store. */
export interface ChecksumPort {
  /** The sealed layers now in the chain, oldest first. */
  layers(): readonly SealedLayer[];
  /**
   * Run `body` with the layer guaranteed to stay in the chain (the chain lock held shared);
   * throws ReplicaError 'not_found' if it has left the chain, 'closed'/'failed' if the store has.
   */
  withLayer<T>(extentFile: string, body: (layer: SealedLayer) => Promise<T>): Promise<T>;
  /** The layer's ranges (inside withLayer). */
  ranges(layer: SealedLayer): Promise<LayerRange[]>;
  /** Bytes of a layer's data file (inside withLayer). */
  read(file: string, offsetBytes: number, lengthBytes: number): Promise<Uint8Array>;
}

export interface LayerChecksumsOptions {
  readonly ctx: DirContext;
  readonly port: ChecksumPort;
  readonly clock: Clock;
  /** Pace of background hashing in bytes of layer data per second; 0: no background hashing. */
  readonly bytesPerSecond: number;
  readonly sleep?: PaceSleep | undefined;
  readonly faultPoint?: ((name: string) => void) | undefined;
  readonly log?: ((message: string) => void) | undefined;
}

interface Job {
  /** True once a request waits for it: pacing off. */
  boosted: boolean;
  done: Promise<void>;
}

export class LayerChecksums {
  private readonly options: LayerChecksumsOptions;
  private readonly ctx: DirContext;
  /** Layers with a `.sum` file → when it was computed (Unix ms, 0 unknown). */
  private readonly stored = new Map<string, number>();
  /** Layers whose `.sum` failed its checks → why. */
  private readonly corrupt = new Map<string, string>();
  /** Layers the background worker gave up on (an I/O error) → why; a request may still compute. */
  private readonly failed = new Map<string, string>();
  private readonly jobs = new Map<string, Job>();
  private readonly abort = new AbortController();
  private worker: Promise<void> | null = null;
  private wakeWorker: (() => void) | null = null;
  private wakePending = false;
  /** Bytes of layer data read for stored checksums since open (status, tests). */
  bytesHashed = 0;

  constructor(options: LayerChecksumsOptions) {
    this.options = options;
    this.ctx = options.ctx;
  }

  /** Note which layers already have a checksum file, and when it was computed (its header). */
  async scan(): Promise<void> {
    for (const name of await this.ctx.files.list(this.ctx.dir)) {
      if (!name.endsWith('.extents.sum')) continue;
      const extentFile = name.slice(0, -'.sum'.length);
      const path = joinPath(this.ctx.dir, name);
      const file = await this.ctx.files.open(path, 'read');
      try {
        const header = new Uint8Array(fileHeaderBytes);
        await file.read(header, 0);
        this.stored.set(extentFile, checksumFileComputedSeconds(header, path) * 1000);
      } catch (error) {
        if (!(error instanceof ReplicaError) || error.code !== 'corrupt') throw error;
        this.corrupt.set(extentFile, error.message);
      } finally {
        await file.close();
      }
    }
  }

  /** Start the background worker (when a rate is set). */
  start(): void {
    if (this.options.bytesPerSecond > 0 && this.worker === null) this.worker = this.runWorker();
  }

  /** The chain changed: there may be new layers to hash. */
  wake(): void {
    this.wakePending = true;
    this.wakeWorker?.();
  }

  /** Stop the worker and wait for every computation to end (a paced one stops at once). */
  async stop(): Promise<void> {
    this.abort.abort();
    this.wake();
    await this.worker;
    await Promise.allSettled([...this.jobs.values()].map((j) => j.done));
  }

  /** A layer left the chain (its files are removed by the caller). */
  forget(extentFile: string): void {
    this.stored.delete(extentFile);
    this.corrupt.delete(extentFile);
    this.failed.delete(extentFile);
  }

  state(extentFile: string): { checksumState: ChecksumState; checksumComputedMs?: number } {
    const computedMs = this.stored.get(extentFile);
    if (computedMs !== undefined) return { checksumState: 'computed', ...(computedMs > 0 ? { checksumComputedMs: computedMs } : {}) };
    if (this.corrupt.has(extentFile)) return { checksumState: 'corrupt' };
    if (this.jobs.has(extentFile)) return { checksumState: 'computing' };
    return { checksumState: this.options.bytesPerSecond > 0 && !this.failed.has(extentFile) ? 'pending' : 'none' };
  }

  /** A sealed layer's checksums over a range: the stored ones, computed first if need be. */
  async checksums(layer: SealedLayer, range: LayerExtent, volumeSizeBytes: number): Promise<ChunkChecksum[]> {
    const { first, end } = chunkSpan(range);
    await this.ensure(layer);
    const digests = await this.options.port.withLayer(layer.extentFile, () => this.readStored(layer, volumeSizeBytes));
    return spanChecksums(first, end, volumeSizeBytes, (chunk) => digests.get(chunk));
  }

  /** The head's checksums over a range, computed now (the caller holds the store's locks). */
  async headChecksums(options: { range: LayerExtent; volumeSizeBytes: number; ranges: LayerRange[]; read: (offsetBytes: number, lengthBytes: number) => Promise<Uint8Array> }): Promise<ChunkChecksum[]> {
    const { first, end } = chunkSpan(options.range);
    const digests = new Map<number, string>();
    for (const chunk of splitByChunk(options.ranges)) {
      if (chunk.chunkIndex >= first && chunk.chunkIndex < end) digests.set(chunk.chunkIndex, hex(digestChunk(chunk, await readChunkData(chunk, options.read))));
    }
    return spanChecksums(first, end, options.volumeSizeBytes, (chunk) => digests.get(chunk));
  }

  /** Make sure the layer's `.sum` exists: at once if stored, else by (or after) a full-speed computation. */
  private async ensure(layer: SealedLayer): Promise<void> {
    if (this.stored.has(layer.extentFile)) return;
    const why = this.corrupt.get(layer.extentFile);
    if (why !== undefined) throw new ReplicaError('corrupt', why);
    const job = this.jobs.get(layer.extentFile) ?? this.startJob(layer);
    job.boosted = true;
    await job.done;
  }

  private startJob(layer: SealedLayer): Job {
    const job: Job = { boosted: false, done: Promise.resolve() };
    job.done = this.compute(layer, job).finally(() => this.jobs.delete(layer.extentFile));
    this.jobs.set(layer.extentFile, job);
    return job;
  }

  /** Hash the layer a chunk at a time, then write its `.sum` atomically (see the file comment). */
  private async compute(layer: SealedLayer, job: Job): Promise<void> {
    const { port } = this.options;
    const pacer = new ChecksumPacer({ bytesPerSecond: this.options.bytesPerSecond, clock: this.options.clock, sleep: this.options.sleep ?? realSleep });
    const chunks = splitByChunk(await port.withLayer(layer.extentFile, (l) => port.ranges(l)));
    const digests: ChunkDigest[] = [];
    for (const chunk of chunks) {
      if (this.abort.signal.aborted && !job.boosted) throw new ReplicaError('closed', `Checksums of ${layer.name}: the store is closing`);
      const data = await port.withLayer(layer.extentFile, (l) => readChunkData(chunk, (offsetBytes, lengthBytes) => port.read(l.dataFile, offsetBytes, lengthBytes)));
      digests.push({ chunkIndex: chunk.chunkIndex, digest: digestChunk(chunk, data) });
      this.bytesHashed += chunk.dataBytes;
      if (!job.boosted) await pacer.take(chunk.dataBytes, this.abort.signal);
    }
    const computedSeconds = Math.floor(this.options.clock.nowMs() / 1000);
    await port.withLayer(layer.extentFile, async () => {
      const name = checksumFileName(layer.extentFile);
      const temp = `${name}.tmp`;
      await writeNewFile(this.ctx, temp, encodeChecksumFile(digests, checksumChunkSizeBytes, computedSeconds));
      this.options.faultPoint?.('checksums:temp-written');
      await this.ctx.files.rename(joinPath(this.ctx.dir, temp), joinPath(this.ctx.dir, name));
      await this.ctx.files.syncDir(this.ctx.dir);
      this.options.faultPoint?.('checksums:renamed');
      this.stored.set(layer.extentFile, computedSeconds * 1000);
    });
  }

  /** One layer at a time, oldest first, until stopped; sleeps (on a promise, not a timer) when all are done. */
  private async runWorker(): Promise<void> {
    while (!this.abort.signal.aborted) {
      this.wakePending = false;
      const layer = this.options.port.layers().find((l) => !this.stored.has(l.extentFile) && !this.corrupt.has(l.extentFile) && !this.failed.has(l.extentFile));
      if (layer === undefined) {
        if (!this.wakePending) await new Promise<void>((resolve) => (this.wakeWorker = resolve));
        this.wakeWorker = null;
        continue;
      }
      const job = this.jobs.get(layer.extentFile) ?? this.startJob(layer);
      try {
        await job.done;
      } catch (error) {
        this.noteWorkerError(layer, error);
      }
    }
  }

  /** A layer that left the chain or a closing store ends a computation quietly; anything else is kept and logged. */
  private noteWorkerError(layer: SealedLayer, error: unknown): void {
    const gone = !this.options.port.layers().some((l) => l.extentFile === layer.extentFile);
    if (gone || this.abort.signal.aborted) return;
    const message = error instanceof Error ? error.message : String(error);
    this.failed.set(layer.extentFile, message);
    this.options.log?.(`background checksums of snapshot ${layer.name} failed: ${message}`);
  }

  private async readStored(layer: SealedLayer, volumeSizeBytes: number): Promise<Map<number, string>> {
    const name = checksumFileName(layer.extentFile);
    const path = joinPath(this.ctx.dir, name);
    const maxBytes = fileHeaderBytes + checksumEntryBytes * Math.ceil(volumeSizeBytes / checksumChunkSizeBytes);
    try {
      const map = new Map<number, string>();
      for (const chunk of decodeChecksumFile(await readWholeFile(this.ctx, name, maxBytes), checksumChunkSizeBytes, path)) map.set(chunk.chunkIndex, hex(chunk.digest));
      return map;
    } catch (error) {
      if (error instanceof ReplicaError && error.code === 'corrupt') {
        this.stored.delete(layer.extentFile);
        this.corrupt.set(layer.extentFile, `stored checksums of snapshot ${layer.name}: ${error.message}`);
        throw new ReplicaError('corrupt', this.corrupt.get(layer.extentFile)!, { cause: error });
      }
      throw error;
    }
  }
}

function chunkSpan(range: LayerExtent): { first: number; end: number } {
  const first = Math.floor(range.offsetBytes / checksumChunkSizeBytes);
  const end = Math.ceil((range.offsetBytes + range.lengthBytes) / checksumChunkSizeBytes);
  if (end - first > checksumChunksPerRequestMax) {
    throw new ReplicaError('out_of_range', `${end - first} chunks in one request; at most ${checksumChunksPerRequestMax}`);
  }
  return { first, end };
}

function spanChecksums(first: number, end: number, volumeSizeBytes: number, digestOf: (chunk: number) => string | undefined): ChunkChecksum[] {
  const out: ChunkChecksum[] = [];
  for (let chunk = first; chunk < end; chunk++) {
    const offsetBytes = chunk * checksumChunkSizeBytes;
    out.push({ offsetBytes, lengthBytes: Math.min(checksumChunkSizeBytes, volumeSizeBytes - offsetBytes), digest: digestOf(chunk) ?? hex(emptyDigest) });
  }
  return out;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
