// A bounded cache of open layer files (read only), so a chain of 1000+ snapshots does not hold
// 1000+ file descriptors, and a hot layer is not reopened per read. Handles in use are never
// closed under their user: eviction skips them, so the cache can briefly exceed its bound.
import type { ReplicaFile, ReplicaFiles } from './replica-files.ts';
import { joinPath } from './replica-files.ts';

interface Entry {
  readonly opening: Promise<ReplicaFile>;
  users: number;
}

export class LayerFileCache {
  private readonly entries = new Map<string, Entry>();
  private readonly files: ReplicaFiles;
  private readonly dir: string;
  private readonly openMax: number;

  constructor(options: { files: ReplicaFiles; dir: string; openMax: number }) {
    this.files = options.files;
    this.dir = options.dir;
    this.openMax = options.openMax;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Run `body` with the open file `name`. */
  async use<T>(name: string, body: (file: ReplicaFile) => Promise<T>): Promise<T> {
    let entry = this.entries.get(name);
    if (entry === undefined) {
      const opening = this.files.open(joinPath(this.dir, name), 'read');
      // The failure is delivered to the awaiting user below; this only keeps Node from calling it
      // unhandled while eviction awaits first.
      opening.catch(() => undefined);
      entry = { opening, users: 1 };
      this.entries.set(name, entry);
    } else {
      // Most recently used last.
      this.entries.delete(name);
      this.entries.set(name, entry);
      entry.users++;
    }
    try {
      await this.evict();
      let file: ReplicaFile;
      try {
        file = await entry.opening;
      } catch (error) {
        if (this.entries.get(name) === entry) this.entries.delete(name);
        throw error;
      }
      return await body(file);
    } finally {
      entry.users--;
    }
  }

  /** Put an already open file in (the old head becoming a sealed layer keeps its handle). */
  async adopt(name: string, file: ReplicaFile): Promise<void> {
    await this.drop(name);
    this.entries.set(name, { opening: Promise.resolve(file), users: 0 });
    await this.evict();
  }

  /** Close and forget `name` (its file is going away). Callers hold the store exclusively. */
  async drop(name: string): Promise<void> {
    const entry = this.entries.get(name);
    if (entry === undefined) return;
    this.entries.delete(name);
    await closeOpened(entry);
  }

  async closeAll(): Promise<void> {
    const entries = [...this.entries.values()];
    this.entries.clear();
    for (const entry of entries) await closeOpened(entry);
  }

  private async evict(): Promise<void> {
    for (const [name, entry] of this.entries) {
      if (this.entries.size <= this.openMax) return;
      if (entry.users > 0) continue;
      this.entries.delete(name);
      await closeOpened(entry);
    }
  }
}

async function closeOpened(entry: Entry): Promise<void> {
  let file: ReplicaFile;
  try {
    file = await entry.opening;
  } catch {
    // The open itself failed; whoever awaited it got that error. Nothing to close.
    return;
  }
  await file.close();
}
