// Snapshots that something (a backup) is reading layer by layer. A purge coalesces a removed
// snapshot into its child, which renames and rewrites the layers below a snapshot even though its
// content stays the same, so a reader that resolved "block b is in layer L" would then read from
// a layer that is gone. While anything is pinned, purge is refused (409), and so is deleting a
// pinned snapshot; the caller tries again after the backup.
import { ShorthornError } from '../lib/errors.ts';

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
   * Refuse any purge while a snapshot is pinned. A purge of the pinned snapshot or of one of its
   * ancestors would rewrite the layers under the reader; a purge of anything else still holds
   * each replica's chain (the backup's layer reads would wait behind it, past their deadline).
   */
  checkPurge(): void {
    const [first] = this.holders;
    if (first === undefined) return;
    const [snapshotName, holders] = first;
    throw new ChainConflictError('conflict', `Cannot purge while ${holders.join(', ')} reads snapshot ${snapshotName}: a purge rewrites layers under it; purge again when it is done`);
  }
}
