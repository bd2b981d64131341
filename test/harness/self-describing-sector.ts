// Self-describing 512-byte sectors (the sector-sized sibling of self-describing-block.ts), for
// workloads with unaligned writes: each sector names its volume, its own address, the writer,
// the write's sequence number and the engine epoch it was written under, then a fill derived from
// those, then a checksum. A sector read back is all zeros or decodes to exactly what some write
// sent to that address of that volume; anything else (torn, misplaced, fabricated) is caught.

export const sectorBytes = 512;
const magic = 0x53485331; // "SHS1"
const headerBytes = 28;

export interface SectorStamp {
  readonly writer: number;
  readonly seq: number;
  readonly epoch: number;
}

export function volumeTagOf(volumeName: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < volumeName.length; i++) hash = Math.imul(hash ^ volumeName.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

function checksum(bytes: Uint8Array, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < end; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  return hash >>> 0;
}

/** Write the sector for `stamp` at `sector` into `target` at `at`. */
export function encodeSector(target: Uint8Array, at: number, args: { volumeTag: number; sector: number } & SectorStamp): void {
  const bytes = target.subarray(at, at + sectorBytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, sectorBytes);
  view.setUint32(0, magic, true);
  view.setUint32(4, args.volumeTag, true);
  view.setFloat64(8, args.sector, true);
  view.setUint32(16, args.writer, true);
  view.setUint32(20, args.seq, true);
  view.setUint32(24, args.epoch, true);
  // xorshift32 from the identity: cheap, and different for every (sector, seq).
  let x = (Math.imul(args.seq, 0x9e3779b1) ^ Math.imul(args.sector + 1, 0x85ebca6b) ^ args.writer) >>> 0 || 1;
  for (let i = headerBytes; i < sectorBytes - 4; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  view.setUint32(sectorBytes - 4, checksum(bytes, sectorBytes - 4), true);
}

export type SectorReading =
  | { readonly kind: 'zeros' }
  | ({ readonly kind: 'stamp' } & SectorStamp)
  | { readonly kind: 'garbage'; readonly reason: string };

/** What a sector read back at `sector` holds. */
export function decodeSector(bytes: Uint8Array, args: { volumeTag: number; sector: number }): SectorReading {
  let zero = true;
  for (let i = 0; i < sectorBytes; i++) {
    if (bytes[i] !== 0) {
      zero = false;
      break;
    }
  }
  if (zero) return { kind: 'zeros' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, sectorBytes);
  if (view.getUint32(0, true) !== magic) return { kind: 'garbage', reason: 'no sector magic' };
  if (view.getUint32(sectorBytes - 4, true) !== checksum(bytes, sectorBytes - 4)) return { kind: 'garbage', reason: 'bad checksum (torn or corrupt)' };
  if (view.getUint32(4, true) !== args.volumeTag) return { kind: 'garbage', reason: 'another volume’s sector' };
  const at = view.getFloat64(8, true);
  if (at !== args.sector) return { kind: 'garbage', reason: `sector ${at} found at ${args.sector}` };
  const stamp = { writer: view.getUint32(16, true), seq: view.getUint32(20, true), epoch: view.getUint32(24, true) };
  // The fill must be exactly what the writer made (a checksum collision would not survive this).
  const regenerated = new Uint8Array(sectorBytes);
  encodeSector(regenerated, 0, { volumeTag: args.volumeTag, sector: args.sector, ...stamp });
  for (let i = 0; i < sectorBytes; i++) if (regenerated[i] !== bytes[i]) return { kind: 'garbage', reason: 'fill does not match its header' };
  return { kind: 'stamp', ...stamp };
}
