// Crash checking for the replica store on memory files. Every 512-byte sector written carries its
// own address, a version and a CRC (self-describing), so after a crash each sector proves what it
// is: the version durable at the last flush, one written since (unflushed writes may or may not
// survive, sector by sector), or zeros where zeros were allowed — never anything else.
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import type { Random } from '../../lib/random.ts';
import type { ReplicaStore } from '../replica-store.ts';

export const sectorBytes = 512;
const magic = 0x53485254;

export function encodeSector(sector: number, version: number): Uint8Array {
  const bytes = new Uint8Array(sectorBytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, magic, true);
  view.setFloat64(4, sector, true);
  view.setUint32(12, version, true);
  for (let i = 16; i < sectorBytes - 4; i++) bytes[i] = (sector * 31 + version * 17 + i) & 0xff;
  view.setUint32(sectorBytes - 4, crc32(bytes.subarray(0, sectorBytes - 4)), true);
  return bytes;
}

/** Version a sector holds (0 for all zeros), or an error string for bytes nobody wrote. */
export function decodeSector(bytes: Uint8Array, sector: number): number | string {
  if (bytes.every((b) => b === 0)) return 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, sectorBytes);
  if (view.getUint32(0, true) !== magic) return 'garbage (bad magic)';
  if (view.getUint32(sectorBytes - 4, true) !== crc32(bytes.subarray(0, sectorBytes - 4))) return 'garbage (bad checksum)';
  const at = view.getFloat64(4, true);
  if (at !== sector) return `data of sector ${at} found at sector ${sector}`;
  return view.getUint32(12, true);
}

/** Per-sector versions: what the store must show, and what a crash may legitimately leave. */
export class SectorModel {
  current: Int32Array;
  durable: Int32Array;
  /** Versions written since the last durability point, per sector (undefined: none). */
  since: (number[] | undefined)[];
  readonly images = new Map<string, Int32Array>();
  private version = 0;

  constructor(sizeBytes: number) {
    const n = sizeBytes / sectorBytes;
    this.current = new Int32Array(n);
    this.durable = new Int32Array(n);
    this.since = new Array<number[] | undefined>(n);
  }

  get sectors(): number {
    return this.current.length;
  }

  /** Bytes for a write of whole sectors at `firstSector`, recorded as not yet durable. */
  write(firstSector: number, count: number): Uint8Array {
    const data = new Uint8Array(count * sectorBytes);
    const version = ++this.version;
    for (let i = 0; i < count; i++) {
      data.set(encodeSector(firstSector + i, version), i * sectorBytes);
      this.note(firstSector + i, version);
    }
    return data;
  }

  zero(firstSector: number, count: number): void {
    for (let i = 0; i < count; i++) this.note(firstSector + i, 0);
  }

  private note(sector: number, version: number): void {
    this.current[sector] = version;
    (this.since[sector] ??= []).push(version);
  }

  /** A flush (or an operation that flushes) completed: what is current is durable. */
  flushed(): void {
    this.durable = this.current.slice();
    this.since = new Array<number[] | undefined>(this.sectors);
  }

  snapshot(name: string): void {
    this.flushed();
    this.images.set(name, this.current.slice());
  }

  /** The head became `name`'s image, durably (revert committed). */
  reverted(name: string): void {
    const image = this.images.get(name)!;
    this.current = new Int32Array(this.sectors);
    this.current.set(image.subarray(0, Math.min(image.length, this.sectors)));
    this.flushed();
  }

  expanded(sizeBytes: number): void {
    const grow = <T extends Int32Array>(a: T): Int32Array => {
      const next = new Int32Array(sizeBytes / sectorBytes);
      next.set(a);
      return next;
    };
    this.current = grow(this.current);
    this.durable = grow(this.durable);
    this.since.length = sizeBytes / sectorBytes;
  }

  /** After a crash and reopen: every sector holds its durable version or one written since. */
  async expectPlausible(store: ReplicaStore, where: string): Promise<void> {
    const problems = await this.mismatches(store, (sector, version) => version === this.durable[sector] || (this.since[sector]?.includes(version) ?? false));
    assert.deepEqual(problems, [], `${where}: sectors that are neither durable nor written since`);
  }

  /** Every sector equals `image` (a committed revert). */
  async matchesImage(store: ReplicaStore, image: Int32Array): Promise<boolean> {
    const problems = await this.mismatches(store, (sector, version) => version === (image[sector] ?? 0));
    return problems.length === 0;
  }

  /** After a crash: adopt what the store shows as the new durable state (it was checked). */
  async adopt(store: ReplicaStore): Promise<void> {
    const bytes = await store.read(0, this.sectors * sectorBytes);
    for (let s = 0; s < this.sectors; s++) {
      const v = decodeSector(bytes.subarray(s * sectorBytes, (s + 1) * sectorBytes), s);
      assert.equal(typeof v, 'number');
      this.current[s] = v as number;
    }
    this.flushed();
  }

  private async mismatches(store: ReplicaStore, ok: (sector: number, version: number) => boolean): Promise<string[]> {
    const bytes = await store.read(0, this.sectors * sectorBytes);
    const problems: string[] = [];
    for (let s = 0; s < this.sectors && problems.length < 5; s++) {
      const v = decodeSector(bytes.subarray(s * sectorBytes, (s + 1) * sectorBytes), s);
      if (typeof v === 'string') problems.push(`sector ${s}: ${v}`);
      else if (!ok(s, v)) problems.push(`sector ${s}: version ${v} (durable ${this.durable[s]}, since [${this.since[s]?.join(',') ?? ''}])`);
    }
    return problems;
  }
}

/** A random sector-aligned range inside the volume: block-aligned or not, 1..3 blocks long. */
export function randomSectorRange(random: Random, sectors: number): [number, number] {
  const aligned = random.next() < 0.6;
  const first = aligned ? random.int(sectors / 8) * 8 : random.int(sectors);
  const count = Math.min(sectors - first, aligned ? 8 * (1 + random.int(3)) : 1 + random.int(24));
  return [first, count];
}
