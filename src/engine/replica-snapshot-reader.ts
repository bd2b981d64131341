// A backup's view of one snapshot of the engine's volume, read straight from a healthy rw replica
// with the operations a rebuild uses (chain_info, layer_extents, read_layer): the snapshot's
// flattened content, resolved once from its ancestry's extents (snapshot-extents.ts), and the
// ranges that may differ from an older snapshot (every extent, data or zero, of the layers between
// the two). It has the shape of src/backup's SnapshotReader (engine/ may not import backup/; bin/
// hands one to the other). The snapshot is pinned while the reader is open, so a purge cannot
// rewrite the layers under it (snapshot-pins.ts). If the replica fails, the reader resolves the
// snapshot again on another rw replica and carries on; when none is left, reads fail.
import { ShorthornError, IoError, toError } from '../lib/errors.ts';
import { requestSizeMaxBytes, snapshotReaderExtentsMax } from '../lib/limits.ts';
import type { LayerExtent, SnapshotInfo } from '../format/replica-chain.ts';
import type { Engine } from './engine.ts';
import { isChainLink, type ChainLink } from './replica-link.ts';
import { ancestryOf, clipResolved, resolveSnapshot, roundOutToBlocks, type BlockRange, type LayerExtents, type ResolvedExtent } from './snapshot-extents.ts';
import { ChainConflictError } from './snapshot-pins.ts';

export class SnapshotNotFoundError extends ShorthornError<'not_found'> {}

interface Source {
  readonly link: ChainLink;
  readonly sizeBytes: number;
  /** The snapshot and its ancestors, newest first. */
  readonly ancestry: readonly SnapshotInfo[];
  /** Each ancestry layer's own extents, in the same order. */
  readonly layers: readonly LayerExtents[];
  readonly map: readonly ResolvedExtent[];
}

export interface OpenSnapshotReaderOptions {
  /** Who pins the snapshot (named in purge and delete refusals), e.g. "backup backup-1". */
  readonly holder: string;
}

export class ReplicaSnapshotReader {
  readonly snapshotName: string;
  readonly createdAtMs: number;
  private readonly engine: Engine;
  private readonly unpin: () => void;
  private source: Source;
  /** Replicas that failed a read: never chosen again by this reader. */
  private readonly failed = new Map<string, string>();
  private switching: Promise<void> | undefined;
  private closed = false;

  private constructor(engine: Engine, source: Source, unpin: () => void) {
    this.engine = engine;
    this.source = source;
    this.unpin = unpin;
    const snapshot = source.ancestry[0]!;
    this.snapshotName = snapshot.name;
    this.createdAtMs = snapshot.createdMs;
  }

  /**
   * Pin `snapshotName` and resolve it on an rw replica. Refused (conflict) while a purge runs;
   * not_found if the read source's chain has no such snapshot.
   */
  static async open(engine: Engine, snapshotName: string, options: OpenSnapshotReaderOptions): Promise<ReplicaSnapshotReader> {
    if (engine.chainBusy === 'purge') {
      throw new ChainConflictError('conflict', `Cannot read snapshot ${snapshotName} while a purge runs; try again when it is done`);
    }
    const unpin = engine.pins.pin(snapshotName, options.holder);
    try {
      const source = await resolveSource(engine, snapshotName, new Map());
      return new ReplicaSnapshotReader(engine, source, unpin);
    } catch (error) {
      unpin();
      throw error;
    }
  }

  /** The replica being read (for status and logs). */
  get sourceAddress(): string {
    return this.source.link.address;
  }

  sizeBytes(): number {
    return this.source.sizeBytes;
  }

  /** Whether `snapshotName` is an ancestor of the snapshot being read (an incremental base). */
  hasSnapshot(snapshotName: string): Promise<boolean> {
    return Promise.resolve(this.source.ancestry.slice(1).some((s) => s.name === snapshotName));
  }

  /**
   * With `since`: every range a layer above `since` (up to and including the snapshot) holds,
   * data or zeros, so trimmed blocks count as changed. Without: every range of the snapshot
   * that holds data. Rounded out to whole blocks.
   */
  changedRanges(since: string | undefined, blockSizeBytes: number): Promise<BlockRange[]> {
    const { ancestry, layers, map, sizeBytes } = this.source;
    if (since === undefined) {
      return Promise.resolve(roundOutToBlocks(map.filter((e) => e.kind === 'data'), blockSizeBytes, sizeBytes));
    }
    const at = ancestry.findIndex((s) => s.name === since);
    if (at < 1) {
      return Promise.reject(new IoError('invalid_argument', `Snapshot ${since} is not an ancestor of ${this.snapshotName}: no incremental base`));
    }
    const extents: LayerExtent[] = layers.slice(0, at).flatMap((l) => l.extents);
    return Promise.resolve(roundOutToBlocks(extents, blockSizeBytes, sizeBytes));
  }

  async read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offsetBytes) || !Number.isSafeInteger(lengthBytes) || offsetBytes < 0 || lengthBytes < 0 || lengthBytes > requestSizeMaxBytes) {
      throw new IoError('invalid_argument', `Cannot read ${lengthBytes} bytes at ${offsetBytes} of snapshot ${this.snapshotName}: at most ${requestSizeMaxBytes} bytes at a non-negative offset`);
    }
    if (offsetBytes + lengthBytes > this.source.sizeBytes) {
      throw new IoError('out_of_range', `Cannot read ${lengthBytes} bytes at ${offsetBytes} of snapshot ${this.snapshotName}: it is ${this.source.sizeBytes} bytes`);
    }
    for (;;) {
      if (this.closed) throw new IoError('closed', `The reader of snapshot ${this.snapshotName} is closed`);
      const source = this.source;
      try {
        return await readResolved(source, offsetBytes, lengthBytes);
      } catch (error) {
        await this.failOver(source, error);
      }
    }
  }

  /** Release the pin. Reads after this fail. */
  close(): void {
    this.closed = true;
    this.unpin();
  }

  /** Move to another rw replica after `from` failed a read; throws when none is left. */
  private async failOver(from: Source, error: unknown): Promise<void> {
    if (this.source !== from) return;
    if (this.switching === undefined) {
      this.failed.set(from.link.address, toError(error).message);
      this.switching = resolveSource(this.engine, this.snapshotName, this.failed)
        .then((next) => {
          this.source = next;
        })
        .finally(() => {
          this.switching = undefined;
        });
    }
    await this.switching;
  }
}

/** Resolve the snapshot on the first rw replica not in `failed` (failures are added to it). */
async function resolveSource(engine: Engine, snapshotName: string, failed: Map<string, string>): Promise<Source> {
  let missing: string | undefined;
  for (const link of engine.rwLinks()) {
    if (failed.has(link.address) || !isChainLink(link)) continue;
    try {
      const chain = await link.chain();
      const ancestry = ancestryOf(chain, snapshotName);
      if (ancestry === undefined) {
        // Snapshots on a branch left by a revert may exist on some replicas only (a rebuild
        // copies the head's ancestry): look at the others before saying it does not exist.
        missing ??= link.address;
        continue;
      }
      const layers: LayerExtents[] = [];
      let count = 0;
      for (const info of ancestry) {
        const extents = await link.layerExtents(info.name, { offsetBytes: 0, lengthBytes: chain.sizeBytes });
        count += extents.length;
        if (count > snapshotReaderExtentsMax) {
          throw new IoError('invalid_argument', `Snapshot ${snapshotName} is spread over more than ${snapshotReaderExtentsMax} extents in ${ancestry.length} layers: too many to back up in one pass`);
        }
        layers.push({ layer: info.name, extents });
      }
      return { link, sizeBytes: chain.sizeBytes, ancestry, layers, map: resolveSnapshot(layers) };
    } catch (error) {
      if (error instanceof IoError && error.code === 'invalid_argument') throw error;
      failed.set(link.address, toError(error).message);
    }
  }
  if (failed.size === 0 && missing !== undefined) {
    throw new SnapshotNotFoundError('not_found', `Volume ${engine.volumeName} has no snapshot ${snapshotName}`);
  }
  const why = [...failed].map(([address, message]) => `${address}: ${message}`).join('; ');
  throw new IoError('io', `Cannot read snapshot ${snapshotName} of volume ${engine.volumeName}: no rw replica left to read it from${why === '' ? '' : ` (${why})`}`);
}

/** One range of the snapshot: each layer involved is read once over the span it covers here. */
async function readResolved(source: Source, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
  const out = new Uint8Array(lengthBytes);
  const byLayer = new Map<string, ResolvedExtent[]>();
  for (const piece of clipResolved(source.map, offsetBytes, lengthBytes)) {
    if (piece.kind === 'data') byLayer.set(piece.layer, [...(byLayer.get(piece.layer) ?? []), piece]);
  }
  await Promise.all(
    [...byLayer].map(async ([layer, pieces]) => {
      const start = pieces[0]!.offsetBytes;
      const last = pieces.at(-1)!;
      const data = await source.link.readLayer(layer, start, last.offsetBytes + last.lengthBytes - start);
      for (const p of pieces) {
        out.set(data.subarray(p.offsetBytes - start, p.offsetBytes - start + p.lengthBytes), p.offsetBytes - offsetBytes);
      }
    }),
  );
  return out;
}
