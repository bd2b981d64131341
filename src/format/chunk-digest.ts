// The piece descriptor of a chunk digest, shared by the replica that stores per-chunk checksums
// (src/replica/chunk-checksums.ts) and the engine's scrub that recomputes them from the replica's
// data (src/engine/layer-verify.ts): both must hash exactly the same bytes, so the definition lives
// once. A chunk's digest is SHA-256 over, for each range of the layer in the chunk in order, this
// 24-byte descriptor followed by the range's bytes when it holds data (docs/replica-format.md).

/** Little-endian u64 offset in the chunk, u64 length, u64 kind (1 data, 2 zero). */
export function chunkPieceDescriptor(offsetInChunkBytes: number, lengthBytes: number, kind: 'data' | 'zero'): Uint8Array {
  const view = new DataView(new ArrayBuffer(24));
  view.setBigUint64(0, BigInt(offsetInChunkBytes), true);
  view.setBigUint64(8, BigInt(lengthBytes), true);
  view.setBigUint64(16, kind === 'data' ? 1n : 2n, true);
  return new Uint8Array(view.buffer);
}
