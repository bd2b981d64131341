// Snapshots that something (a backup) is reading layer by layer. A purge coalesces a removed
// snapshot into its child, which renames and rewrites the layers below a snapshot even though its
// content stays the same, so a reader that resolved "block b is in layer L" would then read from
// a layer that is gone. Purge and delete therefore refuse (409) while they would touch a pinned
// snapshot or its ancestry; the caller tries again after the backup.
import { ShorthornError } from '../lib/errors.ts';
import type { ChainInfo } from '../format/replica-chain.ts';
import { ancestryOf } from './snapshot-extents.ts';

/** A chain operation refused because of the engine's state (answered 409 by the control API). */
export class ChainConflictError extends ShorthornError<'conflict'> {}

export class SnapshotPins {
  /** Snapshot name → who holds it (a pin may be held several times: two backups of one snapshot). */
  private readonly holders = new Map<string, string[]>();

  /** Pin `snapshotName` for `holder`; the returned function releases it (once). */
  pin(snapshotName: string, holder: string): () => void {
    this.holders.set(snapshotName, [...(this.holders.get(snapshotName) ?? []), holder]);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const rest = [...(this.holders.get(snapshotName) ?? [])];
      rest.splice(rest.indexOf(holder), 1);
      if (rest.length === 0) this.holders.delete(snapshotName);
      else this.holders.set(snapshotName, rest);
    };
  }

  isPinned(snapshotName: string): boolean {
    return this.holders.has(snapshotName);
  }

  /** Every pinned snapshot with its holders. */
  list(): { snapshotName: string; holders: readonly string[] }[] {
    return [...this.holders].map(([snapshotName, holders]) => ({ snapshotName, holders: [...holders] }));
  }

  /** Refuse deleting a pinned snapshot (a later purge would take it away from its reader). */
  checkDelete(snapshotName: string): void {
    const holders = this.holders.get(snapshotName);
    if (holders !== undefined) {
      throw new ChainConflictError('conflict', `Cannot delete snapshot ${snapshotName}: ${holders.join(', ')} is reading it; try again when it is done`);
    }
  }

  /**
   * Refuse a purge that would change a pinned snapshot's layers: the snapshot itself, or one of
   * its ancestors, is marked removed (purge deletes or coalesces exactly those).
   */
  checkPurge(chain: ChainInfo): void {
    for (const [snapshotName, holders] of this.holders) {
      const removed = (ancestryOf(chain, snapshotName) ?? []).find((s) => s.removed);
      if (removed !== undefined) {
        const which = removed.name === snapshotName ? `snapshot ${snapshotName} is marked removed` : `its ancestor ${removed.name} is marked removed`;
        throw new ChainConflictError('conflict', `Cannot purge now: ${holders.join(', ')} is reading snapshot ${snapshotName} and ${which}; purge again when it is done`);
      }
    }
  }
}
