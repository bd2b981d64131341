// A volume in memory with named snapshots, for backup tests: writes go to the head; a snapshot
// freezes the head (copy on write, per 64 KiB chunk) and remembers which chunks were written
// since the previous snapshot, which is what a replica's extent maps tell a real SnapshotReader.
import type { BlockRange, SnapshotReader } from '../snapshot-reader.ts';

const chunkBytes = 64 * 1024;

interface Snapshot {
  readonly name: string;
  readonly chunks: ReadonlyMap<number, Uint8Array>;
  writtenSince: Set<number>;
  readonly createdAtMs: number;
}

export class MemorySnapshotVolume {
  readonly size: number;
  private head = new Map<number, Uint8Array>();
  private written = new Set<number>();
  private readonly snapshots: Snapshot[] = [];
  /** Bytes read through readers, to check that incremental backups read only what changed. */
  bytesRead = 0;

  constructor(sizeBytes: number) {
    this.size = sizeBytes;
  }

  write(offsetBytes: number, data: Uint8Array): void {
    if (offsetBytes < 0 || offsetBytes + data.length > this.size) throw new RangeError(`write ${offsetBytes}+${data.length} outside ${this.size}`);
    let at = 0;
    while (at < data.length) {
      const index = Math.floor((offsetBytes + at) / chunkBytes);
      const within = (offsetBytes + at) % chunkBytes;
      const n = Math.min(chunkBytes - within, data.length - at);
      const chunk = new Uint8Array(chunkBytes);
      const old = this.head.get(index);
      if (old !== undefined) chunk.set(old);
      chunk.set(data.subarray(at, at + n), within);
      this.head.set(index, chunk);
      this.written.add(index);
      at += n;
    }
  }

  snapshot(name: string, createdAtMs = Date.UTC(2026, 0, 1) + this.snapshots.length * 1000): void {
    this.snapshots.push({ name, chunks: new Map(this.head), writtenSince: this.written, createdAtMs });
    this.written = new Set();
  }

  /** Remove a snapshot; its changes fold into the next one, as a purge coalesces layers. */
  deleteSnapshot(name: string): void {
    const index = this.snapshots.findIndex((s) => s.name === name);
    if (index < 0) throw new Error(`no snapshot ${name}`);
    const [removed] = this.snapshots.splice(index, 1);
    const next = this.snapshots[index];
    for (const chunk of removed!.writtenSince) (next?.writtenSince ?? this.written).add(chunk);
  }

  /** The whole image of a snapshot (for bit-for-bit comparisons). */
  image(name: string): Uint8Array {
    const snapshot = this.find(name);
    const out = new Uint8Array(this.size);
    for (const [index, chunk] of snapshot.chunks) out.set(chunk.subarray(0, Math.min(chunkBytes, this.size - index * chunkBytes)), index * chunkBytes);
    return out;
  }

  private find(name: string): Snapshot {
    const snapshot = this.snapshots.find((s) => s.name === name);
    if (snapshot === undefined) throw new Error(`no snapshot ${name}`);
    return snapshot;
  }

  reader(name: string): SnapshotReader {
    const snapshot = this.find(name);
    const position = this.snapshots.indexOf(snapshot);
    return {
      snapshotName: name,
      createdAtMs: snapshot.createdAtMs,
      sizeBytes: () => this.size,
      hasSnapshot: (other) => Promise.resolve(this.snapshots.slice(0, position).some((s) => s.name === other)),
      changedRanges: (since, blockSizeBytes) => {
        const chunks = new Set<number>();
        if (since === undefined) {
          for (const index of snapshot.chunks.keys()) chunks.add(index);
        } else {
          const from = this.snapshots.findIndex((s) => s.name === since);
          if (from < 0 || from >= position) return Promise.reject(new Error(`snapshot ${since} is not below ${name}`));
          for (const s of this.snapshots.slice(from + 1, position + 1)) for (const index of s.writtenSince) chunks.add(index);
        }
        const blocks = new Set([...chunks].map((index) => Math.floor((index * chunkBytes) / blockSizeBytes)));
        const ranges: BlockRange[] = [...blocks].sort((a, b) => a - b).map((b) => ({ offsetBytes: b * blockSizeBytes, lengthBytes: blockSizeBytes }));
        return Promise.resolve(ranges);
      },
      read: (offsetBytes, lengthBytes) => {
        this.bytesRead += lengthBytes;
        const out = new Uint8Array(lengthBytes);
        for (let at = 0; at < lengthBytes; ) {
          const index = Math.floor((offsetBytes + at) / chunkBytes);
          const within = (offsetBytes + at) % chunkBytes;
          const n = Math.min(chunkBytes - within, lengthBytes - at);
          const chunk = snapshot.chunks.get(index);
          if (chunk !== undefined) out.set(chunk.subarray(within, within + n), at);
          at += n;
        }
        return Promise.resolve(out);
      },
    };
  }
}
