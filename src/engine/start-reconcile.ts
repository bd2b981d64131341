// After an unclean stop, the replicas chosen to start (start-choice.ts) may disagree on their
// chain: the engine died in the middle of a snapshot, delete, purge or expand that it had sent
// to every replica, and some finished it while others never got it (an engine and a replica on
// one node that lost power, the others still up). Each replica applies each operation atomically;
// this makes the SET of them agree again before any I/O is served, so that the operation is
// wholly done or wholly absent for the volume (TESTING.md invariant 5). Pure: the plan says what
// to do, engine-start.ts does it.
//
// Roll forward where the finished state is known from the replicas that reached it:
// - size: the largest of the requested size and every replica's (an expand is never undone);
// - a snapshot one replica has on top of its head and another lacks entirely (same parent): take
//   it there too, with the same name, kind, labels and creation time (a rebuild's join snapshot
//   is one of these);
// - a snapshot marked removed on one replica and not on another: mark it there too;
// - removed snapshots one replica has purged and another still holds: purge there too.
// Anything else (a revert that reached some replicas: the same snapshots, another head parent;
// two different histories) cannot be told apart from a normal state, so the replicas that differ
// from the reference (the one most others agree with; the read source on a tie) leave the write
// set and are rebuilt from it.
import type { ChainInfo, SnapshotInfo, SnapshotOptions } from '../format/replica-chain.ts';

export interface StartReport {
  readonly address: string;
  readonly chain: ChainInfo;
}

export type StartRepair =
  | { readonly kind: 'expand'; readonly address: string; readonly sizeBytes: number }
  | { readonly kind: 'snapshot'; readonly address: string; readonly snapshot: SnapshotOptions }
  | { readonly kind: 'mark-removed'; readonly address: string; readonly name: string }
  | { readonly kind: 'purge'; readonly address: string };

export interface StartReconcilePlan {
  /** The size to serve: never below any replica's. */
  readonly sizeBytes: number;
  /** In this order, per replica. */
  readonly repairs: readonly StartRepair[];
  /** Replicas whose chain cannot be brought to the reference's: they leave the write set. */
  readonly dropped: readonly { readonly address: string; readonly reason: string }[];
}

const names = (chain: ChainInfo): Set<string> => new Set(chain.snapshots.map((s) => s.name));

/** The snapshots a volume's data depends on: the head's ancestry without removed ones, newest first. */
function liveAncestry(chain: ChainInfo, removed: ReadonlySet<string>): string[] {
  const byName = new Map(chain.snapshots.map((s) => [s.name, s]));
  const out: string[] = [];
  for (let name = chain.headParent; name !== null; ) {
    const s = byName.get(name);
    if (s === undefined) break;
    if (!removed.has(name)) out.push(name);
    name = s.parent;
  }
  return out;
}

/** Names not removed (on either replica compared), sorted: a delete or a purge never changes them. */
function liveNames(chain: ChainInfo, removed: ReadonlySet<string>): string {
  return chain.snapshots.filter((s) => !removed.has(s.name)).map((s) => s.name).sort().join('\n');
}

const removedNames = (chain: ChainInfo): string[] => chain.snapshots.filter((s) => s.removed).map((s) => s.name);

type Relation = { kind: 'same' } | { kind: 'lacks-top'; snapshot: SnapshotInfo } | { kind: 'other' };

/** How `other`'s chain relates to `ref`'s, ignoring removed marks and purges. */
function relate(ref: ChainInfo, other: ChainInfo): Relation {
  const removed = new Set([...removedNames(ref), ...removedNames(other)]);
  const sameLive =
    liveNames(ref, removed) === liveNames(other, removed) &&
    liveAncestry(ref, removed).join('\n') === liveAncestry(other, removed).join('\n') &&
    ref.headParent === other.headParent;
  if (sameLive) return { kind: 'same' };
  const top = ref.snapshots.find((s) => s.name === ref.headParent);
  const otherNames = names(other);
  if (top !== undefined && !otherNames.has(top.name) && top.parent === other.headParent) {
    const refLive = ref.snapshots.filter((s) => s.name !== top.name && !removed.has(s.name)).map((s) => s.name).sort().join('\n');
    if (refLive === liveNames(other, removed)) return { kind: 'lacks-top', snapshot: top };
  }
  return { kind: 'other' };
}

export function planStartReconcile(reports: readonly StartReport[], requestedSizeBytes: number): StartReconcilePlan {
  const sizeBytes = Math.max(requestedSizeBytes, ...reports.map((r) => r.chain.sizeBytes));
  const repairs: StartRepair[] = [];
  for (const r of reports) if (r.chain.sizeBytes < sizeBytes) repairs.push({ kind: 'expand', address: r.address, sizeBytes });
  if (reports.length === 0) return { sizeBytes, repairs, dropped: [] };

  // The reference: the chain the most others are the same as or one snapshot behind; a replica
  // ahead by a snapshot wins over one behind, so the snapshot is rolled forward, not lost.
  let ref = reports[0]!;
  let best = -1;
  for (const candidate of reports) {
    const fits = reports.filter((o) => relate(candidate.chain, o.chain).kind !== 'other').length;
    if (fits > best) {
      best = fits;
      ref = candidate;
    }
  }
  const dropped: { address: string; reason: string }[] = [];
  const kept: StartReport[] = [];
  for (const o of reports) {
    const relation = relate(ref.chain, o.chain);
    switch (relation.kind) {
      case 'same':
        kept.push(o);
        break;
      case 'lacks-top': {
        const s = relation.snapshot;
        repairs.push({ kind: 'snapshot', address: o.address, snapshot: { name: s.name, kind: s.kind, labels: s.labels, createdMs: s.createdMs } });
        kept.push(o);
        break;
      }
      case 'other':
        dropped.push({
          address: o.address,
          reason: `its chain (head on ${o.chain.headParent ?? 'nothing'}; ${[...names(o.chain)].join(',') || 'no snapshots'}) differs from ${ref.address}'s (head on ${ref.chain.headParent ?? 'nothing'}; ${[...names(ref.chain)].join(',') || 'no snapshots'})`,
        });
        break;
      default: {
        const never: never = relation;
        throw new Error(`unknown relation ${String(never)}`);
      }
    }
  }
  // Removed marks: a delete that reached some replicas is finished on all.
  const removedAnywhere = new Set(kept.flatMap((r) => r.chain.snapshots.filter((s) => s.removed).map((s) => s.name)));
  for (const r of kept) {
    for (const s of r.chain.snapshots) if (!s.removed && removedAnywhere.has(s.name)) repairs.push({ kind: 'mark-removed', address: r.address, name: s.name });
  }
  // A purge that reached some replicas: a removed snapshot gone from one is purged everywhere.
  const all = kept.map((r) => names(r.chain));
  for (const [i, r] of kept.entries()) {
    const purgedElsewhere = [...removedAnywhere].some((name) => all[i]!.has(name) && all.some((other) => !other.has(name)));
    if (purgedElsewhere) repairs.push({ kind: 'purge', address: r.address });
  }
  return { sizeBytes, repairs, dropped };
}
