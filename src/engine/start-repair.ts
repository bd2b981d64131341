// Start after an unclean stop (DESIGN §2.8 rule 7). An engine starts on the members of the newest
// generation: they hold every acknowledged write, but may differ where writes were in flight when
// the last engine died (or were acknowledged and not yet flushed before a power loss). Only the
// heads can differ (a snapshot flushes and runs under the barrier), so the engine asks every
// replica for the per-chunk checksums of its own head, for the chunks some head holds anything in,
// and where any differs from the read source's, it rewrites the source's data over the ranges the
// heads hold in that chunk, on every replica of the write set. Afterwards the heads are equal chunk
// for chunk (allocation and data), and reads may go to any rw replica.
//
// It runs in the background while the volume serves I/O. Until it is done every read goes to the
// source (the first rw replica), so repeated reads of a block never alternate between old and new
// data. Each step holds the engine's range lock over its chunks and the write barrier shared: a
// client write to those blocks waits for the step, so it is neither overwritten by the rewrite nor
// slips in between the comparison and the rewrite, and no snapshot seals a half-repaired head
// (snapshots, rebuilds, delete, purge, revert, expand and scrub wait for the whole repair; chainBusy
// is set meanwhile for anything that does not). It runs after every start, clean or not: there is
// no clean-stop marker, and a pass over heads that agree costs one read of each head's data on its
// own replica, in parallel, with no data on the network (docs/engine.md has the numbers).
import { IoError, toError } from '../lib/errors.ts';
import { checksumChunkSizeBytes } from '../lib/limits.ts';
import type { Clock } from '../lib/clock.ts';
import type { ChunkChecksum, LayerExtent } from '../format/replica-chain.ts';
import type { Engine } from './engine.ts';
import type { ReplicaLink } from './replica-link.ts';
import type { StartRepairProgress } from './start-repair-progress.ts';

/** What a replica link needs to take part: its head's extents and per-chunk checksums. */
export type HeadLink = ReplicaLink & {
  layerExtents(layerName: null, range: LayerExtent): Promise<LayerExtent[]>;
  checksums(snapshotName: null, range: LayerExtent): Promise<readonly ChunkChecksum[]>;
};

export function isHeadLink(link: ReplicaLink): link is HeadLink {
  const methods = link as unknown as Record<string, unknown>;
  return typeof methods['layerExtents'] === 'function' && typeof methods['checksums'] === 'function';
}

export interface StartRepairOptions {
  readonly engine: Engine;
  readonly clock: Clock;
  readonly log: (message: string) => void;
  /** Chunks one step compares while holding the range lock (default 4: 8 MiB of writes wait at most that long). */
  readonly stepChunksMax?: number;
  /** Chunks of volume address space whose head extents are asked for at once (default 1024: 2 GiB). */
  readonly windowChunks?: number;
}

/** A replica failed a request of the repair: it leaves the write set and the pass starts again. */
class ReplicaStepFailure extends Error {
  readonly address: string;
  constructor(address: string, cause: unknown) {
    super(`${address}: ${toError(cause).message}`, { cause });
    this.address = address;
  }
}

/** The source left the write set (a client request failed on it): start again from the next rw replica. */
class SourceGone extends Error {}

/** A replica refused a request of the comparison as malformed (a replica too old to know head checksums). */
class NotUnderstood extends Error {}

const busyReason = 'the comparison of the replicas after start';

/**
 * Compare the rw replicas' heads with the read source's and repair them; then let reads use every
 * rw replica. Never rejects: the outcome is in the returned progress (also engine.startRepair).
 */
export async function repairAfterStart(options: StartRepairOptions): Promise<StartRepairProgress> {
  const { engine, clock, log } = options;
  const progress: StartRepairProgress = {
    state: 'comparing',
    source: null,
    replicas: [],
    scannedBytes: 0,
    sizeBytes: engine.sizeBytes(),
    chunksCompared: 0,
    chunksRepaired: 0,
    bytesRepaired: 0,
    passes: 0,
    startedMs: clock.nowMs(),
    finishedMs: null,
    error: null,
  };
  engine.startRepair = progress;
  const ownsBusy = engine.chainBusy === null;
  if (ownsBusy) engine.chainBusy = busyReason;
  try {
    for (;;) {
      const [source, ...others] = engine.rwLinks();
      if (source === undefined) throw new IoError('io', `Volume ${engine.volumeName} has no rw replica`);
      progress.passes++;
      progress.source = source.address;
      progress.replicas = others.map((l) => l.address);
      progress.scannedBytes = 0;
      if (others.length === 0) break;
      if (!isHeadLink(source) || !others.every(isHeadLink)) {
        progress.state = 'not_supported';
        log(`start repair: a replica link cannot report its head's checksums; reads stay on ${source.address}`);
        return progress;
      }
      try {
        await comparePass({ ...options, source, others, progress });
        break;
      } catch (error) {
        if (error instanceof NotUnderstood) {
          // Nothing is known to differ and nothing was dropped: reads simply stay on the source.
          progress.state = 'not_supported';
          log(`start repair: ${error.message}; reads stay on ${source.address}`);
          return progress;
        }
        if (error instanceof SourceGone) {
          log(`start repair: the source ${source.address} left the write set; starting again from the next rw replica`);
        } else if (error instanceof ReplicaStepFailure) {
          log(`start repair: ${error.message}; it leaves the write set and the pass starts again`);
          await engine.failReplica(error.address, error.cause);
        } else {
          throw error;
        }
      }
    }
    progress.state = 'done';
    engine.spreadReads();
    log(
      `start repair done: ${progress.replicas.length} replica(s) compared with ${progress.source ?? '-'}, ` +
        `${progress.chunksCompared} chunks compared, ${progress.chunksRepaired} rewritten (${progress.bytesRepaired} bytes), ${progress.passes} pass(es)`,
    );
  } catch (error) {
    progress.state = 'failed';
    progress.error = toError(error).message;
    log(`start repair failed: ${progress.error}; reads stay on ${progress.source ?? 'the first rw replica'}`);
  } finally {
    progress.finishedMs = clock.nowMs();
    if (ownsBusy && engine.chainBusy === busyReason) engine.chainBusy = null;
  }
  return progress;
}

interface PassArgs extends StartRepairOptions {
  readonly source: HeadLink;
  readonly others: readonly HeadLink[];
  readonly progress: StartRepairProgress;
}

async function comparePass(args: PassArgs): Promise<void> {
  const { engine, progress } = args;
  const sizeBytes = engine.sizeBytes();
  progress.sizeBytes = sizeBytes;
  const windowBytes = (args.windowChunks ?? 1024) * checksumChunkSizeBytes;
  for (let at = 0; at < sizeBytes; at += windowBytes) {
    const window = { offsetBytes: at, lengthBytes: Math.min(windowBytes, sizeBytes - at) };
    // Heads only grow while the repair runs (no snapshot or revert), and what they gained since
    // the start reached every replica alike: chunks no head holds anything in now cannot differ.
    const links = liveLinks(args);
    const lists = await Promise.all(links.map((l) => onLink(l, () => l.layerExtents(null, window))));
    for (const step of chunkSteps(lists.flat(), { sizeBytes, stepChunksMax: args.stepChunksMax ?? 4 })) {
      await engine.withRangeHeld(step.offsetBytes, step.lengthBytes, () => compareStep(args, step));
    }
    progress.scannedBytes = window.offsetBytes + window.lengthBytes;
  }
}

async function compareStep(args: PassArgs, step: LayerExtent): Promise<void> {
  const { progress } = args;
  const links = liveLinks(args);
  const sums = await Promise.all(links.map((l) => onLink(l, () => l.checksums(null, step))));
  const mine = sums[0]!;
  for (let i = 0; i < mine.length; i++) {
    const chunk = mine[i]!;
    progress.chunksCompared++;
    if (sums.every((s) => s.length === mine.length && s[i]!.digest === chunk.digest)) continue;
    progress.bytesRepaired += await rewriteChunk(args, links, chunk);
    progress.chunksRepaired++;
  }
}

/**
 * Write the source's data over every range some head holds in `chunk`, to every replica of the
 * write set, then check that the heads now agree there. Returns the bytes rewritten.
 */
async function rewriteChunk(args: PassArgs, links: readonly HeadLink[], chunk: ChunkChecksum): Promise<number> {
  const { engine, source } = args;
  const range = { offsetBytes: chunk.offsetBytes, lengthBytes: chunk.lengthBytes };
  const extents = await Promise.all(links.map((l) => onLink(l, () => l.layerExtents(null, range))));
  let bytes = 0;
  for (const piece of mergeRanges(extents.flat())) {
    const data = await onLink(source, () => source.read(piece.offsetBytes, piece.lengthBytes));
    // Whole-block zeros go as a zero range, so every head records the same kind there.
    const zeros = data.every((b) => b === 0);
    // Through the engine's fan-out: a replica that fails the write leaves the write set as it would for a client write.
    await engine.fanOutChainOp((l) => (zeros ? l.writeZeroes(piece.offsetBytes, piece.lengthBytes) : l.write(piece.offsetBytes, data)));
    bytes += piece.lengthBytes;
  }
  const live = liveLinks(args);
  const after = await Promise.all(live.map((l) => onLink(l, () => l.checksums(null, range))));
  const wrong = live.findIndex((_, i) => after[i]?.[0]?.digest !== after[0]?.[0]?.digest);
  if (wrong > 0) {
    throw new ReplicaStepFailure(live[wrong]!.address, new IoError('io', `its head at ${chunk.offsetBytes} still differs from ${source.address}'s after the rewrite`));
  }
  return bytes;
}

/** The source and the other replicas still rw; the source first. */
function liveLinks(args: PassArgs): HeadLink[] {
  const { engine, source, others } = args;
  if (engine.modeOf(source.address) !== 'rw') throw new SourceGone();
  return [source, ...others.filter((l) => engine.modeOf(l.address) === 'rw')];
}

async function onLink<T>(link: ReplicaLink, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'bad_request') throw new NotUnderstood(`${link.address} refused a request: ${error.message}`);
    throw new ReplicaStepFailure(link.address, error);
  }
}

/** The chunks `extents` touch, as steps of at most stepChunksMax whole chunks (the last clipped to the volume). */
export function chunkSteps(extents: readonly LayerExtent[], options: { sizeBytes: number; stepChunksMax: number }): LayerExtent[] {
  const runs = extents
    .filter((e) => e.lengthBytes > 0)
    .map((e) => [Math.floor(e.offsetBytes / checksumChunkSizeBytes), Math.ceil((e.offsetBytes + e.lengthBytes) / checksumChunkSizeBytes)] as const)
    .sort((a, b) => a[0] - b[0]);
  const steps: LayerExtent[] = [];
  let start = -1;
  let end = -1;
  const emit = (): void => {
    for (let c = start; c < end; c += options.stepChunksMax) {
      const offsetBytes = c * checksumChunkSizeBytes;
      const stepEnd = Math.min(Math.min(end, c + options.stepChunksMax) * checksumChunkSizeBytes, options.sizeBytes);
      steps.push({ offsetBytes, lengthBytes: stepEnd - offsetBytes });
    }
  };
  for (const [c0, c1] of runs) {
    if (c0 <= end) {
      end = Math.max(end, c1);
      continue;
    }
    if (end > start) emit();
    [start, end] = [c0, c1];
  }
  if (end > start) emit();
  return steps;
}

/** Sorted, merged union of ranges (overlapping or adjacent ones become one). */
export function mergeRanges(ranges: readonly LayerExtent[]): LayerExtent[] {
  const sorted = ranges.filter((r) => r.lengthBytes > 0).sort((a, b) => a.offsetBytes - b.offsetBytes);
  const out: { offsetBytes: number; lengthBytes: number }[] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last !== undefined && r.offsetBytes <= last.offsetBytes + last.lengthBytes) {
      last.lengthBytes = Math.max(last.lengthBytes, r.offsetBytes + r.lengthBytes - last.offsetBytes);
    } else {
      out.push({ offsetBytes: r.offsetBytes, lengthBytes: r.lengthBytes });
    }
  }
  return out;
}
