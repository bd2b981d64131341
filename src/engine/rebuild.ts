// Rebuild of one replica (DESIGN §2.5, §2.8 rule 2): join as 'wo' with a system snapshot taken on
// every replica under the write barrier, then copy the sealed layers up to that snapshot from a
// healthy rw replica into the new one's staging area, only allocated ranges (data, and zero
// ranges as zeros), skipping chunks whose checksums already match (a returning replica copies
// only what changed), install them with one commit on the receiver, verify every chunk's checksum
// against the source, and promote. Writes during the rebuild go to the new replica's head, which
// the install never touches: a copied older layer can never overwrite or resurrect under them.
// If the source fails, the copy starts again from another rw replica; if the new replica fails,
// or no source is left, it goes to 'err' and the rebuild fails.
import { createHash } from 'node:crypto';
import { setTimeout as sleepMs } from 'node:timers/promises';
import type { Clock } from '../lib/clock.ts';
import { IoError, toError } from '../lib/errors.ts';
import { checksumChunkSizeBytes, rebuildInflightMax, rebuildPieceBytes, replicaChecksumChunksPerRequestMax } from '../lib/limits.ts';
import type { ChainInfo, ChunkChecksum, LayerExtent, SnapshotInfo } from '../format/replica-chain.ts';
import type { Engine, RebuildProgress } from './engine.ts';
import { isChainLink, type ChainLink } from './replica-link.ts';
import { verifyLayerData } from './layer-verify.ts';

export const emptyChunkDigest = createHash('sha256').digest('hex');

export interface RebuildOptions {
  readonly engine: Engine;
  readonly target: ChainLink;
  readonly clock: Clock;
  readonly log: (message: string) => void;
  /** Name of the join snapshot (a system snapshot). */
  readonly joinName: string;
  /** Bytes per second the copy may move; 0 or absent: no limit. */
  readonly bandwidthBytesPerSecond?: number;
  /** Called between pieces (tests use it to act at a given progress). */
  readonly onProgress?: (progress: RebuildProgress) => void;
}

/**
 * A replica that missed an expansion (down at the time, or crashed inside its own: scenario S25)
 * is smaller than the volume: expand it before it joins, or the first write past its end, and the
 * copy of every layer at the volume's size, would fail. It is fenced first (expand needs the
 * engine's epoch). Expansion is refused while the rebuild runs (chainBusy), so the size cannot
 * move under us. A larger replica is refused: shrinking is never done.
 */
async function matchVolumeSize(engine: Engine, target: ChainLink, log: (message: string) => void): Promise<void> {
  const { sizeBytes } = await target.chain();
  const volumeSize = engine.sizeBytes();
  if (sizeBytes === volumeSize) return;
  if (sizeBytes > volumeSize) throw new IoError('invalid_argument', `Cannot rebuild ${target.address}: it is ${sizeBytes} bytes, larger than the volume (${volumeSize})`);
  await target.acceptEpoch(engine.status().epoch);
  await target.expand(volumeSize);
  log(`rebuild of ${target.address}: expanded it from ${sizeBytes} to ${volumeSize} bytes first`);
}

/** The source failed (as opposed to the receiving replica): try another source. */
class SourceFailure extends Error {}

interface LayerPlan {
  readonly info: SnapshotInfo;
  readonly reuse: boolean;
  /** Runs of whole chunks to copy from the receiver's own layer of the same name. */
  readonly local: readonly LayerExtent[];
  /** Ranges to send: data pieces (≤ rebuildPieceBytes) and zero ranges. */
  readonly pieces: readonly LayerExtent[];
  /** The source's checksums, when they were needed to plan. */
  sourceSums: readonly ChunkChecksum[] | null;
}

/** Add `target` and rebuild it. Resolves with the finished progress record; rejects if the rebuild failed. */
export async function rebuildReplica(options: RebuildOptions): Promise<RebuildProgress> {
  const { engine, target, clock } = options;
  // The rebuild's join snapshot would seal heads that may still differ after an unclean stop.
  await engine.whenStartRepairDone();
  if (engine.chainBusy !== null) throw new IoError('invalid_argument', `Cannot rebuild ${target.address}: ${engine.chainBusy} is running`);
  const progress: RebuildProgress = {
    address: target.address,
    state: 'planning',
    source: null,
    totalBytes: 0,
    doneBytes: 0,
    skippedBytes: 0,
    rateBytesPerSecond: 0,
    startedMs: clock.nowMs(),
    finishedMs: null,
    error: null,
  };
  engine.chainBusy = `rebuild of ${target.address}`;
  engine.rebuilds.set(target.address, progress);
  try {
    await matchVolumeSize(engine, target, options.log);
    await engine.addReplica(target, { join: { name: options.joinName, kind: 'system', labels: { 'shorthorn.io/rebuild': target.address } } });
    for (;;) {
      const source = engine.rwLinks().find((l) => l.address !== target.address && isChainLink(l));
      if (source === undefined || !isChainLink(source)) throw new IoError('io', `No rw replica left to rebuild ${target.address} from`);
      progress.source = source.address;
      try {
        await copyFrom(options, source, progress);
        break;
      } catch (error) {
        if (!(error instanceof SourceFailure)) throw error;
        options.log(`rebuild of ${target.address}: source ${source.address} failed (${toError(error.cause).message}); trying another`);
        await engine.failReplica(source.address, error.cause);
      }
    }
    progress.state = 'verifying';
    await engine.promoteReplica(target.address);
    progress.state = 'done';
    options.log(`rebuild of ${target.address} done: ${progress.doneBytes} bytes copied, ${progress.skippedBytes} skipped`);
    return progress;
  } catch (error) {
    progress.state = 'failed';
    progress.error = toError(error).message;
    options.log(`rebuild of ${target.address} failed: ${progress.error}`);
    if (engine.modeOf(target.address) !== undefined && engine.modeOf(target.address) !== 'err') {
      await engine.failReplica(target.address, error).catch((failError: unknown) => options.log(`rebuild: ${toError(failError).message}`));
    }
    throw error;
  } finally {
    progress.finishedMs = clock.nowMs();
    engine.chainBusy = null;
  }
}

/** Wrap a source call so that its failure is told apart from the receiver's. */
async function fromSource<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new SourceFailure(toError(error).message, { cause: error });
  }
}

async function copyFrom(options: RebuildOptions, source: ChainLink, progress: RebuildProgress): Promise<void> {
  const { target, clock } = options;
  progress.state = 'planning';
  progress.totalBytes = progress.doneBytes = progress.skippedBytes = 0;
  const sourceChain = await fromSource(() => source.chain());
  const layers = ancestryOf(sourceChain, options.joinName);
  const targetChain = await target.chain();
  const targetHas = new Set(targetChain.snapshots.map((s) => s.name));
  await target.stageReset();
  const plans: LayerPlan[] = [];
  for (const info of layers) {
    const plan = await planLayer({ source, target, info, sizeBytes: sourceChain.sizeBytes, targetHas: targetHas.has(info.name) });
    plans.push(plan);
    progress.totalBytes += plan.pieces.reduce((n, p) => n + (p.kind === 'data' ? p.lengthBytes : 0), 0);
    progress.skippedBytes += plan.reuse ? info.sizeBytes : plan.local.reduce((n, p) => n + p.lengthBytes, 0);
  }
  progress.state = 'copying';
  const limiter = new RateLimiter(options.bandwidthBytesPerSecond ?? 0, clock);
  const startMs = clock.monotonicMs();
  for (const plan of plans) {
    const name = plan.info.name;
    const { parent, createdMs, kind, labels, removed } = plan.info;
    await target.stageLayer({ name, parent, createdMs, kind, labels, removed, reuse: plan.reuse });
    if (plan.reuse) continue;
    for (const run of plan.local) await target.stageExtent(name, run, 'local');
    await pool(plan.pieces, rebuildInflightMax, async (piece) => {
      if (piece.kind === 'zero') {
        await target.stageExtent(name, piece, 'zero');
        return;
      }
      await limiter.take(piece.lengthBytes);
      const data = await fromSource(() => source.readLayer(name, piece.offsetBytes, piece.lengthBytes));
      await target.stageWrite(name, piece.offsetBytes, data);
      progress.doneBytes += piece.lengthBytes;
      const elapsedMs = Math.max(1, clock.monotonicMs() - startMs);
      progress.rateBytesPerSecond = Math.round((progress.doneBytes * 1000) / elapsedMs);
      options.onProgress?.(progress);
    });
  }
  await target.stageInstall();
  // Verify: every chunk of every installed layer hashes as the source's does.
  progress.state = 'verifying';
  for (const plan of plans) {
    // Both sides hash their copy at once (two processes, two cores). The source's sums are not
    // asked for during the copy: the replica computes them under the lock its layer reads take.
    const [expected, got] = await Promise.all([
      plan.sourceSums ?? fromSource(() => allChecksums(source, plan.info.name, sourceChain.sizeBytes)),
      allChecksums(target, plan.info.name, sourceChain.sizeBytes),
    ]);
    const bad = expected.findIndex((c, i) => got[i]?.digest !== c.digest);
    if (bad >= 0 || got.length !== expected.length) {
      throw new IoError('io', `Rebuilt layer ${plan.info.name} on ${target.address} differs from ${source.address} at chunk offset ${expected[bad]?.offsetBytes ?? got.length}`);
    }
  }
}

/** The head's ancestry of `chain` up to and including `joinName`, oldest first. */
function ancestryOf(chain: ChainInfo, joinName: string): SnapshotInfo[] {
  const byName = new Map(chain.snapshots.map((s) => [s.name, s]));
  const out: SnapshotInfo[] = [];
  for (let name: string | null = joinName; name !== null; ) {
    const info = byName.get(name);
    if (info === undefined) {
      const error = new IoError('io', `the source's chain lacks snapshot ${name}`);
      throw new SourceFailure(error.message, { cause: error });
    }
    out.push(info);
    name = info.parent;
  }
  return out.reverse();
}

async function planLayer(args: { source: ChainLink; target: ChainLink; info: SnapshotInfo; sizeBytes: number; targetHas: boolean }): Promise<LayerPlan> {
  const { source, target, info, sizeBytes } = args;
  const whole = { offsetBytes: 0, lengthBytes: sizeBytes };
  const extents = await fromSource(() => source.layerExtents(info.name, whole));
  const targetExtents = args.targetHas ? await target.layerExtents(info.name, whole) : [];
  if (targetExtents.length === 0) return { info, reuse: false, local: [], pieces: splitPieces(extents), sourceSums: null };
  // The receiver holds a layer of that name: compare chunk by chunk, copy only what differs.
  const sourceSums = await fromSource(() => allChecksums(source, info.name, sizeBytes));
  const targetSums = await allChecksums(target, info.name, sizeBytes);
  // The receiver's stored checksums say what its layer held when they were computed, not what it
  // holds now: bytes that rotted since (scenario S15) would be kept as "matching" and served
  // later. Re-hash its data, and send again every chunk that no longer matches its own record.
  const { corruptOffsets } = await verifyLayerData({ link: target, layer: info.name, sizeBytes, stored: targetSums });
  const rotten = new Set(corruptOffsets.map((offsetBytes) => Math.floor(offsetBytes / checksumChunkSizeBytes)));
  const differs = new Set<number>();
  const local: LayerExtent[] = [];
  sourceSums.forEach((c, i) => {
    const mine = targetSums[i]?.digest;
    if (mine !== c.digest || rotten.has(i)) differs.add(i);
    else if (c.digest !== emptyChunkDigest) appendRun(local, c.offsetBytes, c.lengthBytes);
  });
  if (differs.size === 0) return { info, reuse: true, local: [], pieces: [], sourceSums };
  const pieces: LayerExtent[] = [];
  for (const e of extents) {
    for (let at = e.offsetBytes; at < e.offsetBytes + e.lengthBytes; ) {
      const chunk = Math.floor(at / checksumChunkSizeBytes);
      const end = Math.min(e.offsetBytes + e.lengthBytes, (chunk + 1) * checksumChunkSizeBytes);
      if (differs.has(chunk)) pieces.push({ offsetBytes: at, lengthBytes: end - at, kind: e.kind ?? 'data' });
      at = end;
    }
  }
  return { info, reuse: false, local, pieces: splitPieces(mergeAdjacent(pieces)), sourceSums };
}

function appendRun(runs: LayerExtent[], offsetBytes: number, lengthBytes: number): void {
  const last = runs.at(-1);
  if (last !== undefined && last.offsetBytes + last.lengthBytes === offsetBytes && last.lengthBytes < rebuildPieceBytes * 8) {
    runs[runs.length - 1] = { offsetBytes: last.offsetBytes, lengthBytes: last.lengthBytes + lengthBytes };
  } else {
    runs.push({ offsetBytes, lengthBytes });
  }
}

function mergeAdjacent(extents: readonly LayerExtent[]): LayerExtent[] {
  const out: LayerExtent[] = [];
  for (const e of extents) {
    const last = out.at(-1);
    if (last !== undefined && last.kind === e.kind && last.offsetBytes + last.lengthBytes === e.offsetBytes) {
      out[out.length - 1] = { ...last, lengthBytes: last.lengthBytes + e.lengthBytes };
    } else {
      out.push(e);
    }
  }
  return out;
}

/** Data extents cut into pieces of at most rebuildPieceBytes; zero extents stay whole. */
function splitPieces(extents: readonly LayerExtent[]): LayerExtent[] {
  const out: LayerExtent[] = [];
  for (const e of extents) {
    const kind = e.kind ?? 'data';
    if (kind === 'zero') {
      out.push({ offsetBytes: e.offsetBytes, lengthBytes: e.lengthBytes, kind });
      continue;
    }
    for (let done = 0; done < e.lengthBytes; done += rebuildPieceBytes) {
      out.push({ offsetBytes: e.offsetBytes + done, lengthBytes: Math.min(rebuildPieceBytes, e.lengthBytes - done), kind });
    }
  }
  return out;
}

/** Every chunk checksum of one layer, in requests of at most replicaChecksumChunksPerRequestMax chunks. */
export async function allChecksums(link: ChainLink, layerName: string, sizeBytes: number): Promise<ChunkChecksum[]> {
  const out: ChunkChecksum[] = [];
  const step = replicaChecksumChunksPerRequestMax * checksumChunkSizeBytes;
  for (let offsetBytes = 0; offsetBytes < sizeBytes; offsetBytes += step) {
    out.push(...(await link.checksums(layerName, { offsetBytes, lengthBytes: Math.min(step, sizeBytes - offsetBytes) })));
  }
  return out;
}

/** Run `work` over `items` with at most `limit` at once; the first failure stops new work and is thrown. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (failure === null && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, () => worker()));
  if (failure !== null) throw (failure as { error: unknown }).error;
}

/** A token bucket over bytes: take() waits until the average rate stays under the limit (rebuild, scrub). */
export class RateLimiter {
  private readonly bytesPerSecond: number;
  private readonly clock: Clock;
  private readonly startMs: number;
  private taken = 0;

  constructor(bytesPerSecond: number, clock: Clock) {
    this.bytesPerSecond = bytesPerSecond;
    this.clock = clock;
    this.startMs = clock.monotonicMs();
  }

  async take(bytes: number): Promise<void> {
    if (this.bytesPerSecond <= 0) return;
    this.taken += bytes;
    // The moment by which `taken` bytes may have moved at the limit; wait for it (a pacing delay,
    // not a wait for a condition).
    const dueMs = this.startMs + (this.taken * 1000) / this.bytesPerSecond;
    const waitMs = dueMs - this.clock.monotonicMs();
    if (waitMs > 0) await sleepMs(waitMs);
  }
}
