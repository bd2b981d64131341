// Per-chunk checksums of sealed layers (checksumChunkSizeBytes each). A chunk's digest covers the
// layer's OWN content there — its allocation map and its data — because rebuild copies layer by
// layer: SHA-256 over, for each of the layer's ranges in the chunk in order, a 24-byte descriptor
// (offset in the chunk, length, kind: u64 little-endian each; kind 1 = data, 2 = zeros) followed by
// the data bytes for a data range. A chunk the layer holds nothing of hashes the empty string.
// Computed on first request and kept in `<extent file>.sum` (sealed layers never change; a purge
// that merges layers writes a new extent file, so the old sums are dropped with it). The head's
// are computed on every request and never kept: the head changes with every write (the engine
// compares heads after an unclean stop, holding its range lock over the chunks it asks for).
import { createHash } from 'node:crypto';
import { chunkPieceDescriptor } from '../format/chunk-digest.ts';
import { blockSizeBytes, checksumChunkSizeBytes, checksumChunksPerRequestMax } from '../lib/limits.ts';
import type { ChunkChecksum, LayerExtent } from './replica-store.ts';
import { joinPath } from './replica-files.ts';
import { ReplicaError } from './replica-error.ts';
import { checksumEntryBytes, decodeChecksumFile, encodeChecksumFile, fileHeaderBytes, type ChunkDigest, type LayerRange } from './layer-codec.ts';
import { checksumFileName, readWholeFile, writeNewFile, type DirContext } from './replica-dir.ts';
import type { SnapshotRecord } from './replica-meta.ts';

const emptyDigest = createHash('sha256').digest('hex');

export interface ChecksumRequest {
  /** The sealed layer, or null for the head (its ranges() then cover the request's whole chunks). */
  readonly record: SnapshotRecord | null;
  /** The layer's data file. */
  readonly dataFile: string;
  readonly range: LayerExtent;
  readonly volumeSizeBytes: number;
  /** The layer's ranges; a sealed layer's all of them, the head's those in blocks [b0, b1) at least. */
  readonly ranges: (b0: number, b1: number) => Promise<LayerRange[]>;
  readonly read: (file: string, offsetBytes: number, lengthBytes: number) => Promise<Uint8Array>;
}

export class LayerChecksums {
  private readonly ctx: DirContext;
  private readonly computed = new Set<string>();

  constructor(ctx: DirContext) {
    this.ctx = ctx;
  }

  /** Note which layers already have a checksum file. */
  async scan(): Promise<void> {
    for (const name of await this.ctx.files.list(this.ctx.dir)) {
      if (name.endsWith('.extents.sum')) this.computed.add(name.slice(0, -'.sum'.length));
    }
  }

  has(extentFile: string): boolean {
    return this.computed.has(extentFile);
  }

  forget(extentFile: string): void {
    this.computed.delete(extentFile);
  }

  async checksums(request: ChecksumRequest): Promise<ChunkChecksum[]> {
    const { range, volumeSizeBytes } = request;
    const first = Math.floor(range.offsetBytes / checksumChunkSizeBytes);
    const end = Math.ceil((range.offsetBytes + range.lengthBytes) / checksumChunkSizeBytes);
    if (end - first > checksumChunksPerRequestMax) {
      throw new ReplicaError('out_of_range', `${end - first} chunks in one request; at most ${checksumChunksPerRequestMax}`);
    }
    const digests = await this.load(request);
    const out: ChunkChecksum[] = [];
    for (let chunk = first; chunk < end; chunk++) {
      const offsetBytes = chunk * checksumChunkSizeBytes;
      out.push({
        offsetBytes,
        lengthBytes: Math.min(checksumChunkSizeBytes, volumeSizeBytes - offsetBytes),
        digest: digests.get(chunk) ?? emptyDigest,
      });
    }
    return out;
  }

  private async load(request: ChecksumRequest): Promise<Map<number, string>> {
    if (request.record === null) {
      const chunkBlocks = checksumChunkSizeBytes / blockSizeBytes;
      const b0 = Math.floor(request.range.offsetBytes / checksumChunkSizeBytes) * chunkBlocks;
      const b1 = Math.ceil((request.range.offsetBytes + request.range.lengthBytes) / checksumChunkSizeBytes) * chunkBlocks;
      const ranges = await request.ranges(b0, b1);
      return new Map((await computeDigests(request, ranges)).map((c) => [c.chunkIndex, Buffer.from(c.digest).toString('hex')]));
    }
    const name = checksumFileName(request.record.extentFile);
    if (!this.computed.has(request.record.extentFile)) {
      const chunks = await computeDigests(request, await request.ranges(0, Infinity));
      const temp = `${name}.tmp`;
      await writeNewFile(this.ctx, temp, encodeChecksumFile(chunks, checksumChunkSizeBytes));
      await this.ctx.files.rename(joinPath(this.ctx.dir, temp), joinPath(this.ctx.dir, name));
      await this.ctx.files.syncDir(this.ctx.dir);
      this.computed.add(request.record.extentFile);
    }
    const maxBytes = fileHeaderBytes + checksumEntryBytes * Math.ceil(request.volumeSizeBytes / checksumChunkSizeBytes);
    const bytes = await readWholeFile(this.ctx, name, maxBytes);
    const map = new Map<number, string>();
    for (const chunk of decodeChecksumFile(bytes, checksumChunkSizeBytes, joinPath(this.ctx.dir, name))) {
      map.set(chunk.chunkIndex, Buffer.from(chunk.digest).toString('hex'));
    }
    return map;
  }
}

async function computeDigests(request: ChecksumRequest, ranges: readonly LayerRange[]): Promise<ChunkDigest[]> {
  const out: ChunkDigest[] = [];
  let chunk = -1;
  let hash = createHash('sha256');
  const finish = (): void => {
    if (chunk >= 0) out.push({ chunkIndex: chunk, digest: new Uint8Array(hash.digest()) });
  };
  const blockSize = blockSizeBytes;
  for (const r of ranges) {
    let from = r.startBlock * blockSize;
    const to = (r.startBlock + r.blockCount) * blockSize;
    while (from < to) {
      const c = Math.floor(from / checksumChunkSizeBytes);
      const pieceEnd = Math.min(to, (c + 1) * checksumChunkSizeBytes);
      if (c !== chunk) {
        finish();
        chunk = c;
        hash = createHash('sha256');
      }
      hash.update(chunkPieceDescriptor(from - c * checksumChunkSizeBytes, pieceEnd - from, r.kind));
      if (r.kind === 'data') hash.update(await request.read(request.dataFile, from, pieceEnd - from));
      from = pieceEnd;
    }
  }
  finish();
  return out;
}
