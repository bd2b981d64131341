// Snapshot operations of a whole volume and scrub, on top of the engine's write set: the snapshot
// tree (from the read source's chain), delete (mark removed everywhere), purge (everywhere, while
// I/O continues), revert (every replica, under the barrier, with no client attached), and scrub
// (compare per-chunk checksums of sealed layers across the rw replicas).
import { IoError, ShorthornError } from '../lib/errors.ts';
import { checksumChunkSizeBytes } from '../lib/limits.ts';
import type { ChainInfo, ChecksumState, SnapshotKind } from '../format/replica-chain.ts';
import type { Engine } from './engine.ts';
import { isChainLink, type ChainLink, type ReplicaLink } from './replica-link.ts';
import { allChecksums, RateLimiter } from './rebuild.ts';
import type { Clock } from '../lib/clock.ts';
import { verifyLayerData } from './layer-verify.ts';

export interface SnapshotNode {
  readonly name: string;
  readonly parent: string | null;
  readonly children: readonly string[];
  readonly createdMs: number;
  /** Bytes of data this snapshot holds itself. */
  readonly sizeBytes: number;
  readonly removed: boolean;
  readonly kind: SnapshotKind;
  readonly userCreated: boolean;
  readonly labels: Readonly<Record<string, string>>;
  /** The read source's stored per-chunk checksums of this snapshot: none, pending, computing, computed, corrupt. */
  readonly checksumState: ChecksumState;
  /** When they were computed (Unix ms), or null. */
  readonly checksumComputedMs: number | null;
}

export interface SnapshotTree {
  readonly source: string;
  readonly snapshots: readonly SnapshotNode[];
  /** The writable head: which snapshot it sits on, and its own data. */
  readonly head: { readonly parent: string | null; readonly sizeBytes: number };
}

/** The tree of one replica's chain: every snapshot with its children (the head counts as "volume-head"). */
export function snapshotTree(source: string, chain: ChainInfo): SnapshotTree {
  const children = new Map<string, string[]>();
  for (const s of chain.snapshots) if (s.parent !== null) children.set(s.parent, [...(children.get(s.parent) ?? []), s.name]);
  if (chain.headParent !== null) children.set(chain.headParent, [...(children.get(chain.headParent) ?? []), 'volume-head']);
  return {
    source,
    snapshots: chain.snapshots.map((s) => ({
      name: s.name,
      parent: s.parent,
      children: children.get(s.name) ?? [],
      createdMs: s.createdMs,
      sizeBytes: s.sizeBytes,
      removed: s.removed,
      kind: s.kind,
      userCreated: s.kind === 'user',
      labels: s.labels,
      checksumState: s.checksumState,
      checksumComputedMs: s.checksumComputedMs ?? null,
    })),
    head: { parent: chain.headParent, sizeBytes: chain.headSizeBytes },
  };
}

export async function listSnapshots(engine: Engine): Promise<SnapshotTree> {
  const source = engine.rwLinks()[0];
  if (source === undefined) throw new IoError('io', `Volume ${engine.volumeName} has no rw replica`);
  return snapshotTree(source.address, await source.chain());
}

function chainLink(link: ReplicaLink): ChainLink {
  if (!isChainLink(link)) throw new IoError('not_supported', `Replica ${link.address} does not support chain operations`);
  return link;
}

function checkNotBusy(engine: Engine, what: string): void {
  if (engine.chainBusy !== null) throw new IoError('invalid_argument', `Cannot ${what} while ${engine.chainBusy} runs`);
}

/** Mark a snapshot removed on every replica of the write set; its data goes at the next purge. */
export async function deleteSnapshot(engine: Engine, name: string): Promise<void> {
  // Chain operations wait for the comparison of the replicas after start (start-repair.ts).
  await engine.whenStartRepairDone();
  checkNotBusy(engine, `delete snapshot ${name}`);
  engine.pins.checkDelete(name);
  const links = engine.writeSetLinks().map(chainLink);
  const tree = snapshotTree('', await links[0]!.chain());
  if (!tree.snapshots.some((s) => s.name === name)) throw new IoError('invalid_argument', `No snapshot ${name}`);
  await engine.fanOutChainOp((link) => chainLink(link).markRemoved(name));
}

/** Coalesce removed snapshots on every replica while I/O continues (each replica orders it with its own writes). */
export async function purgeSnapshots(engine: Engine): Promise<void> {
  await engine.whenStartRepairDone();
  checkNotBusy(engine, 'purge');
  // No await between this check and chainBusy below: a backup that pins later sees 'purge' and is refused.
  engine.pins.checkPurge();
  engine.writeSetLinks().forEach(chainLink);
  engine.chainBusy = 'purge';
  try {
    await engine.fanOutChainOp(async (link) => {
      await chainLink(link).purge();
    });
  } finally {
    engine.chainBusy = null;
  }
}

/** Put a new empty head over `name` on every replica, under the write barrier. */
export async function revertVolume(engine: Engine, name: string): Promise<void> {
  await engine.whenStartRepairDone();
  checkNotBusy(engine, `revert to ${name}`);
  const links = engine.writeSetLinks().map(chainLink);
  const tree = snapshotTree('', await links[0]!.chain());
  const target = tree.snapshots.find((s) => s.name === name);
  if (target === undefined) throw new IoError('invalid_argument', `No snapshot ${name}`);
  if (target.removed) throw new IoError('invalid_argument', `Snapshot ${name} is marked removed`);
  await engine.fanOutChainOp((link) => chainLink(link).revert(name), { exclusive: true });
}

export interface ScrubReport {
  readonly replicas: readonly string[];
  readonly layersChecked: number;
  readonly chunksChecked: number;
  /** One entry per chunk where a replica disagrees with the majority (or no majority exists). */
  readonly mismatches: readonly { layer: string; offsetBytes: number; replicas: readonly string[]; majority: boolean }[];
  /** Replicas that disagreed with a majority somewhere (and were marked 'err' when asked). */
  readonly disagreeing: readonly string[];
  readonly markedErr: readonly string[];
  /** False with one rw replica: nothing to compare with, and nothing is ever "repaired" by guessing. */
  readonly comparable: boolean;
  /**
   * Chunks whose data on a replica no longer hashes to the checksum that replica stored when it
   * computed it (layer-verify.ts): corruption found by the replica's own record, with or without
   * other replicas. `healthyElsewhere`: another rw replica's copy of the chunk verified and agrees
   * with the majority (only then is the corrupt one counted in `disagreeing`).
   */
  readonly corrupt: readonly { layer: string; offsetBytes: number; replica: string; healthyElsewhere: boolean }[];
  /** Bytes of layer data read to verify (0 when verifyData is false). */
  readonly bytesVerified: number;
  /**
   * Layers whose stored checksum file on a replica fails its own checks (replica error 'corrupt'):
   * that replica takes no part in the layer's vote or data check, and nothing is marked for it.
   */
  readonly storedChecksumErrors: readonly { layer: string; replica: string; message: string }[];
}

/** Compare every chunk of every sealed layer common to the rw replicas; optionally fail the minority. */
export async function scrubVolume(
  engine: Engine,
  options: { markErr: boolean; verifyData?: boolean; bandwidthBytesPerSecond?: number; clock?: Clock },
): Promise<ScrubReport> {
  await engine.whenStartRepairDone();
  checkNotBusy(engine, 'scrub');
  const allLinks = engine.rwLinks().map(chainLink);
  if (allLinks.length === 0) throw new IoError('io', `Volume ${engine.volumeName} has no rw replica`);
  engine.chainBusy = 'scrub';
  try {
    const chains = await Promise.all(allLinks.map((l) => l.chain()));
    const common = chains[0]!.snapshots.map((s) => s.name).filter((n) => chains.every((c) => c.snapshots.some((s) => s.name === n)));
    const mismatches: { layer: string; offsetBytes: number; replicas: string[]; majority: boolean }[] = [];
    const disagreeing = new Set<string>();
    let chunksChecked = 0;
    const corrupt: { layer: string; offsetBytes: number; replica: string; healthyElsewhere: boolean }[] = [];
    let bytesVerified = 0;
    const storedChecksumErrors: { layer: string; replica: string; message: string }[] = [];
    // One budget for every replica's reads: the data check of a live volume is paced as a whole.
    const limiter = options.clock === undefined ? null : new RateLimiter(options.bandwidthBytesPerSecond ?? 0, options.clock);
    const beforeRead = limiter === null ? undefined : (lengthBytes: number): Promise<void> => limiter.take(lengthBytes);
    for (const layer of common) {
      const sizeBytes = chains[0]!.sizeBytes;
      // A replica whose stored sums are damaged is reported and left out of this layer, never trusted.
      const found = await Promise.all(
        allLinks.map((l) =>
          allChecksums(l, layer, sizeBytes).catch((error: unknown) => {
            if (!(error instanceof ShorthornError) || error.code !== 'corrupt') throw error;
            storedChecksumErrors.push({ layer, replica: l.address, message: error.message });
            return null;
          }),
        ),
      );
      const links = allLinks.filter((_, r) => found[r] !== null);
      const sums = found.filter((s) => s !== null);
      if (links.length === 0) continue;
      const chunks = sums[0]!.length;
      const majorityDigest = new Map<number, string>();
      for (let i = 0; i < chunks; i++) {
        chunksChecked++;
        const votes = new Map<string, string[]>();
        sums.forEach((s, r) => votes.set(s[i]?.digest ?? '', [...(votes.get(s[i]?.digest ?? '') ?? []), links[r]!.address]));
        const ranked = [...votes.entries()].sort((a, b) => b[1].length - a[1].length);
        const majority = ranked[0]![1].length * 2 > links.length;
        if (majority) majorityDigest.set(i, ranked[0]![0]);
        if (votes.size === 1) continue;
        const minority = majority ? ranked.slice(1).flatMap((v) => v[1]) : ranked.flatMap((v) => v[1]);
        if (majority) minority.forEach((a) => disagreeing.add(a));
        mismatches.push({ layer, offsetBytes: sums[0]![i]!.offsetBytes, replicas: minority, majority });
      }
      if (options.verifyData === false) continue;
      // Each replica's data against its own stored checksums: the only check one replica can do alone.
      const verified = await Promise.all(
        links.map((link, r) => verifyLayerData({ link, layer, sizeBytes, stored: sums[r]!, ...(beforeRead === undefined ? {} : { beforeRead }) })),
      );
      bytesVerified += verified.reduce((n, v) => n + v.bytesRead, 0);
      verified.forEach((v, r) => {
        for (const offsetBytes of v.corruptOffsets) {
          const i = Math.floor(offsetBytes / checksumChunkSizeBytes);
          // A healthy copy elsewhere: another replica whose data verified there and whose digest is the majority's.
          const healthyElsewhere = links.some(
            (_, o) => o !== r && !verified[o]!.corruptOffsets.includes(offsetBytes) && majorityDigest.get(i) === sums[o]![i]?.digest,
          );
          corrupt.push({ layer, offsetBytes, replica: links[r]!.address, healthyElsewhere });
          if (healthyElsewhere) disagreeing.add(links[r]!.address);
        }
      });
    }
    const markedErr: string[] = [];
    if (options.markErr) {
      for (const address of disagreeing) {
        await engine.failReplica(address, new IoError('io', 'scrub: checksums disagree with the majority'));
        markedErr.push(address);
      }
    }
    return {
      replicas: allLinks.map((l) => l.address),
      layersChecked: common.length,
      chunksChecked,
      mismatches,
      disagreeing: [...disagreeing],
      markedErr,
      comparable: allLinks.length > 1,
      corrupt,
      bytesVerified,
      storedChecksumErrors,
    };
  } finally {
    engine.chainBusy = null;
  }
}
