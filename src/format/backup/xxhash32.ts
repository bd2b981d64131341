// xxHash32 (the checksum of the LZ4 frame format: header check byte, block and content checksums).
const prime1 = 0x9e3779b1;
const prime2 = 0x85ebca77;
const prime3 = 0xc2b2ae3d;
const prime4 = 0x27d4eb2f;
const prime5 = 0x165667b1;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function read32(data: Uint8Array, at: number): number {
  return (data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24)) >>> 0;
}

function round(acc: number, lane: number): number {
  return Math.imul(rotl((acc + Math.imul(lane, prime2)) | 0, 13), prime1);
}

/** xxHash32 of `data[start, end)` with `seed`, as an unsigned 32-bit number. */
export function xxhash32(data: Uint8Array, seed = 0, start = 0, end = data.length): number {
  let at = start;
  const length = end - start;
  let h: number;
  if (length >= 16) {
    let v1 = (seed + prime1 + prime2) | 0;
    let v2 = (seed + prime2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - prime1) | 0;
    const limit = end - 16;
    while (at <= limit) {
      v1 = round(v1, read32(data, at));
      v2 = round(v2, read32(data, at + 4));
      v3 = round(v3, read32(data, at + 8));
      v4 = round(v4, read32(data, at + 12));
      at += 16;
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = (seed + prime5) | 0;
  }
  h = (h + length) | 0;
  while (at + 4 <= end) {
    h = Math.imul(rotl((h + Math.imul(read32(data, at), prime3)) | 0, 17), prime4);
    at += 4;
  }
  while (at < end) {
    h = Math.imul(rotl((h + Math.imul(data[at]!, prime5)) | 0, 11), prime1);
    at++;
  }
  h = Math.imul(h ^ (h >>> 15), prime2);
  h = Math.imul(h ^ (h >>> 13), prime3);
  return (h ^ (h >>> 16)) >>> 0;
}
