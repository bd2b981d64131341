// Scrub of one replica on its own: recompute a sealed layer's per-chunk digests from the data the
// replica holds now (its extents and bytes, read over the replica protocol) exactly as the replica
// computed them when the layer was sealed (the descriptor of src/format/chunk-digest.ts, as
// src/replica/chunk-checksums.ts uses it; docs/replica-format.md),
// and compare with the checksums it has stored. A difference is corruption of that replica's copy
// (a bit flip, a lost write) found without any other replica to compare with; nothing is repaired
// here. Corruption that happened before the stored checksums were computed cannot be seen this way.
import { createHash, type Hash } from 'node:crypto';
import { checksumChunkSizeBytes } from '../lib/limits.ts';
import { chunkPieceDescriptor } from '../format/chunk-digest.ts';
import type { ChunkChecksum } from '../format/replica-chain.ts';
import type { ChainLink } from './replica-link.ts';

/** Offsets of the chunks whose data no longer hashes to the stored checksum, and bytes read. */
export interface LayerVerifyResult {
  readonly corruptOffsets: readonly number[];
  readonly bytesRead: number;
}

export async function verifyLayerData(args: {
  readonly link: ChainLink;
  readonly layer: string;
  readonly sizeBytes: number;
  readonly stored: readonly ChunkChecksum[];
  /** Called before each read with its length (a bandwidth limit waits here). */
  readonly beforeRead?: (lengthBytes: number) => Promise<void>;
}): Promise<LayerVerifyResult> {
  const { link, layer, sizeBytes } = args;
  const extents = await link.layerExtents(layer, { offsetBytes: 0, lengthBytes: sizeBytes });
  const digests = new Map<number, string>();
  let chunk = -1;
  let hash: Hash = createHash('sha256');
  const finish = (): void => {
    if (chunk >= 0) digests.set(chunk, hash.digest('hex'));
  };
  let bytesRead = 0;
  for (const e of extents) {
    const kind = e.kind ?? 'data';
    let from = e.offsetBytes;
    const to = e.offsetBytes + e.lengthBytes;
    while (from < to) {
      const c = Math.floor(from / checksumChunkSizeBytes);
      // One piece per (range, chunk), as the replica cuts them: a descriptor, then its bytes.
      const pieceEnd = Math.min(to, (c + 1) * checksumChunkSizeBytes);
      if (c !== chunk) {
        finish();
        chunk = c;
        hash = createHash('sha256');
      }
      hash.update(chunkPieceDescriptor(from - c * checksumChunkSizeBytes, pieceEnd - from, kind));
      if (kind === 'data') {
        await args.beforeRead?.(pieceEnd - from);
        hash.update(await link.readLayer(layer, from, pieceEnd - from));
        bytesRead += pieceEnd - from;
      }
      from = pieceEnd;
    }
  }
  finish();
  const empty = createHash('sha256').digest('hex');
  const corruptOffsets = args.stored
    .filter((s) => (digests.get(Math.floor(s.offsetBytes / checksumChunkSizeBytes)) ?? empty) !== s.digest)
    .map((s) => s.offsetBytes);
  return { corruptOffsets, bytesRead };
}
