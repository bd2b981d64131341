// Self-describing 4 KiB blocks for crash tests (TESTING.md invariant 2): each block names its
// volume, its own address and the sequence number of the write that made it, and the rest is a
// pseudo-random fill derived from those, ending in a checksum. A block read back is either all
// zeros or parses to (address, seq) and matches the regenerated block byte for byte — anything
// else (torn, misplaced, fabricated) is caught.
import { SeededRandom } from '../../src/lib/random.ts';

export const blockBytes = 4096;
const magic = 'SHBLK001';

function fnv1a(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (const b of bytes) hash = Math.imul(hash ^ b, 0x01000193) >>> 0;
  return hash;
}

export function volumeTag(volumeName: string): number {
  return fnv1a(new TextEncoder().encode(volumeName));
}

export function makeBlock(options: { volumeTag: number; blockIndex: number; seq: number }): Uint8Array {
  const block = new Uint8Array(blockBytes);
  const view = new DataView(block.buffer);
  block.set(new TextEncoder().encode(magic), 0);
  view.setBigUint64(8, BigInt(options.seq));
  view.setBigUint64(16, BigInt(options.blockIndex));
  view.setUint32(24, options.volumeTag);
  new SeededRandom((options.seq * 2654435761 + options.blockIndex) >>> 0).fill(block.subarray(32, blockBytes - 4));
  view.setUint32(blockBytes - 4, fnv1a(block.subarray(0, blockBytes - 4)));
  return block;
}

export type BlockReading = { kind: 'zeros' } | { kind: 'version'; seq: number } | { kind: 'garbage'; reason: string };

/** What a block read back holds, checked against where it was read and which volume it is. */
export function readBlock(block: Uint8Array, expected: { volumeTag: number; blockIndex: number }): BlockReading {
  if (block.every((b) => b === 0)) return { kind: 'zeros' };
  const view = new DataView(block.buffer, block.byteOffset, block.length);
  if (new TextDecoder().decode(block.subarray(0, 8)) !== magic) return { kind: 'garbage', reason: 'no block magic' };
  const seq = Number(view.getBigUint64(8));
  const blockIndex = Number(view.getBigUint64(16));
  if (blockIndex !== expected.blockIndex) return { kind: 'garbage', reason: `block ${blockIndex} found at ${expected.blockIndex}` };
  if (view.getUint32(24) !== expected.volumeTag) return { kind: 'garbage', reason: 'another volume’s block' };
  const regenerated = makeBlock({ volumeTag: expected.volumeTag, blockIndex, seq });
  if (!regenerated.every((b, i) => b === block[i])) return { kind: 'garbage', reason: `torn or corrupt version ${seq}` };
  return { kind: 'version', seq };
}
