// The digest of one checksum chunk of a layer (docs/replica-format.md): SHA-256 over, for each of
// the layer's ranges in the chunk in order, the piece descriptor (format/chunk-digest.ts) and, for
// data, its bytes. Split out so that the stored checksums (computed a chunk at a time, the layer
// lock taken per chunk) and the head's (computed per request) hash exactly the same bytes.
import { createHash } from 'node:crypto';
import { chunkPieceDescriptor } from '../format/chunk-digest.ts';
import { blockSizeBytes, checksumChunkSizeBytes } from '../lib/limits.ts';
import type { LayerRange } from './layer-codec.ts';

/** A part of one layer range that falls inside one chunk, in volume bytes. */
export interface ChunkPiece {
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  readonly kind: 'data' | 'zero';
}

export interface ChunkPieces {
  readonly chunkIndex: number;
  readonly pieces: readonly ChunkPiece[];
  /** Bytes of data (what must be read) in the chunk. */
  readonly dataBytes: number;
}

/** Group sorted layer ranges by checksum chunk; chunks the layer holds nothing of are left out. */
export function splitByChunk(ranges: readonly LayerRange[]): ChunkPieces[] {
  const out: { chunkIndex: number; pieces: ChunkPiece[]; dataBytes: number }[] = [];
  for (const r of ranges) {
    let from = r.startBlock * blockSizeBytes;
    const to = (r.startBlock + r.blockCount) * blockSizeBytes;
    while (from < to) {
      const chunkIndex = Math.floor(from / checksumChunkSizeBytes);
      const pieceEnd = Math.min(to, (chunkIndex + 1) * checksumChunkSizeBytes);
      let last = out[out.length - 1];
      if (last?.chunkIndex !== chunkIndex) {
        last = { chunkIndex, pieces: [], dataBytes: 0 };
        out.push(last);
      }
      last.pieces.push({ offsetBytes: from, lengthBytes: pieceEnd - from, kind: r.kind });
      if (r.kind === 'data') last.dataBytes += pieceEnd - from;
      from = pieceEnd;
    }
  }
  return out;
}

/** Read a chunk's data pieces, in order (one array per data piece). */
export async function readChunkData(chunk: ChunkPieces, read: (offsetBytes: number, lengthBytes: number) => Promise<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (const piece of chunk.pieces) if (piece.kind === 'data') out.push(await read(piece.offsetBytes, piece.lengthBytes));
  return out;
}

/** SHA-256 of a chunk, given the bytes of its data pieces in order. */
export function digestChunk(chunk: ChunkPieces, data: readonly Uint8Array[]): Uint8Array {
  const hash = createHash('sha256');
  const chunkStart = chunk.chunkIndex * checksumChunkSizeBytes;
  let next = 0;
  for (const piece of chunk.pieces) {
    hash.update(chunkPieceDescriptor(piece.offsetBytes - chunkStart, piece.lengthBytes, piece.kind));
    if (piece.kind === 'data') hash.update(data[next++]!);
  }
  return new Uint8Array(hash.digest());
}
