// The block checksum of Longhorn's backup store: the first 64 hex characters (256 bits) of the
// SHA-512 of the uncompressed block. The same function of a volume name places its directory.
// The hash comes in as a port (Web Crypto or node:crypto in the driver) so format/ stays pure.

/** SHA-512 of `data` (64 bytes). */
export type Sha512 = (data: Uint8Array) => Promise<Uint8Array>;

export const checksumHexLength = 64;
const checksumPattern = /^[0-9a-f]{64}$/;

const hexDigits = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += hexDigits[byte]!;
  return out;
}

/** hex(SHA-512(data))[:64]. */
export async function blockChecksum(data: Uint8Array, sha512: Sha512): Promise<string> {
  const digest = await sha512(data);
  return toHex(digest.subarray(0, checksumHexLength / 2));
}

export function isBlockChecksum(value: string): boolean {
  return checksumPattern.test(value);
}

/** Whether every byte of `data` is zero (such blocks are left out of a backup's block map). */
export function isAllZero(data: Uint8Array): boolean {
  // Eight bytes at a time where alignment allows; this runs over every block of every backup.
  const whole = data.byteOffset % 8 === 0 ? Math.floor(data.length / 8) : 0;
  if (whole > 0) {
    const words = new BigUint64Array(data.buffer, data.byteOffset, whole);
    for (const word of words) if (word !== 0n) return false;
  }
  for (let i = whole * 8; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}
