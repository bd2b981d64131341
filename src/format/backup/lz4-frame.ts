// The LZ4 frame format (lz4_Frame_format.md v1.6.x): what Longhorn's `lz4` compression method
// writes for each block object (Go pierrec/lz4 v4 defaults: 4 MiB blocks, independent, content
// checksum on, block checksum off). The encoder writes exactly that shape; the decoder reads any
// conforming frame (linked or independent blocks, optional block and content checksums, content
// size, concatenated and skippable frames), except preset dictionaries, which no writer of ours or
// Longhorn's uses. Pure: no Buffer, so it runs anywhere and is tested against the `lz4` tool.
import { BackupError, BackupErrorCode } from './backup-error.ts';
import { xxhash32 } from './xxhash32.ts';

const frameMagic = 0x184d2204;
const skippableMagicMask = 0xfffffff0;
const skippableMagic = 0x184d2a50;
const blockMaxBytesByCode: Readonly<Record<number, number>> = { 4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20 };
/** Version 01, independent blocks, content checksum; no block checksum, size or dictionary. */
const writtenFlags = 0b0110_0100;
/** Block maximum size code 7: 4 MiB, as pierrec/lz4 writes by default. */
const writtenBlockCode = 7;
const writtenBlockMaxBytes = 4 << 20;
const minMatch = 4;
/** The last match must start at least 12 bytes before the end, and the last 5 bytes are literals. */
const matchFindLimit = 12;
const lastLiterals = 5;
const hashLog = 16;
const maxOffset = 65535;

function corrupt(message: string): BackupError {
  return new BackupError(BackupErrorCode.corrupt, `LZ4 frame: ${message}`);
}

function read32(data: Uint8Array, at: number): number {
  return (data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24)) >>> 0;
}

function write32(data: Uint8Array, at: number, value: number): void {
  data[at] = value & 0xff;
  data[at + 1] = (value >>> 8) & 0xff;
  data[at + 2] = (value >>> 16) & 0xff;
  data[at + 3] = (value >>> 24) & 0xff;
}

/** Largest compressed size of an `n`-byte LZ4 block (LZ4_compressBound). */
function blockBound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

const table = new Int32Array(1 << hashLog);

function writeLength(out: Uint8Array, at: number, rest: number): number {
  let n = rest;
  while (n >= 255) {
    out[at++] = 255;
    n -= 255;
  }
  out[at++] = n;
  return at;
}

/** One LZ4 block (the greedy single-hash-table algorithm of LZ4's fast mode). Returns its length. */
function compressBlock(src: Uint8Array, range: { start: number; end: number }, out: Uint8Array, outStart: number): number {
  const { start, end } = range;
  let op = outStart;
  let anchor = start;
  const emit = (literalEnd: number, offset: number, matchLength: number): void => {
    const literalLength = literalEnd - anchor;
    const tokenAt = op++;
    let token = literalLength >= 15 ? 0xf0 : literalLength << 4;
    if (literalLength >= 15) op = writeLength(out, op, literalLength - 15);
    out.set(src.subarray(anchor, literalEnd), op);
    op += literalLength;
    if (matchLength > 0) {
      out[op++] = offset & 0xff;
      out[op++] = offset >>> 8;
      const extra = matchLength - minMatch;
      if (extra >= 15) {
        token |= 15;
        op = writeLength(out, op, extra - 15);
      } else {
        token |= extra;
      }
    }
    out[tokenAt] = token;
  };
  const length = end - start;
  if (length > matchFindLimit) {
    table.fill(-1);
    const findLimit = end - matchFindLimit;
    const matchEnd = end - lastLiterals;
    let ip = start;
    let misses = 0;
    while (ip < findLimit) {
      const sequence = read32(src, ip);
      const hash = Math.imul(sequence, 2654435761) >>> (32 - hashLog);
      let ref = table[hash]!;
      table[hash] = ip;
      if (ref < start || ip - ref > maxOffset || read32(src, ref) !== sequence) {
        misses++;
        // Skip faster through data that does not compress (LZ4's acceleration).
        ip += 1 + (misses >>> 6);
        continue;
      }
      misses = 0;
      let matchStart = ip;
      while (matchStart > anchor && ref > start && src[matchStart - 1] === src[ref - 1]) {
        matchStart--;
        ref--;
      }
      let matchLength = ip - matchStart + minMatch;
      while (matchStart + matchLength < matchEnd && src[matchStart + matchLength] === src[ref + matchLength]) matchLength++;
      emit(matchStart, matchStart - ref, matchLength);
      ip = matchStart + matchLength;
      anchor = ip;
      if (ip - 2 >= start && ip - 2 < findLimit) {
        table[Math.imul(read32(src, ip - 2), 2654435761) >>> (32 - hashLog)] = ip - 2;
      }
    }
  }
  emit(end, 0, 0);
  return op - outStart;
}

/** Compress `data` into one LZ4 frame shaped as Longhorn (pierrec/lz4 v4) writes it. */
export function encodeLz4Frame(data: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(data.length / writtenBlockMaxBytes));
  const out = new Uint8Array(7 + blocks * (4 + blockBound(writtenBlockMaxBytes)) + 8);
  write32(out, 0, frameMagic);
  out[4] = writtenFlags;
  out[5] = writtenBlockCode << 4;
  out[6] = (xxhash32(out, 0, 4, 6) >>> 8) & 0xff;
  let op = 7;
  for (let at = 0; at < data.length; at += writtenBlockMaxBytes) {
    const end = Math.min(data.length, at + writtenBlockMaxBytes);
    const size = compressBlock(data, { start: at, end }, out, op + 4);
    if (size >= end - at) {
      // Incompressible: store the block raw (high bit of the size set).
      write32(out, op, ((end - at) | 0x80000000) >>> 0);
      out.set(data.subarray(at, end), op + 4);
      op += 4 + (end - at);
    } else {
      write32(out, op, size);
      op += 4 + size;
    }
  }
  write32(out, op, 0);
  write32(out, op + 4, xxhash32(data));
  return out.slice(0, op + 8);
}

function decodeBlock(
  src: Uint8Array,
  range: { start: number; end: number },
  out: Uint8Array,
  window: { outStart: number; windowStart: number; outLimit: number },
): number {
  let ip = range.start;
  const end = range.end;
  let op = window.outStart;
  const outLimit = window.outLimit;
  for (;;) {
    if (ip >= end) throw corrupt('a compressed block ends inside a sequence');
    const token = src[ip++]!;
    let literalLength = token >>> 4;
    if (literalLength === 15) {
      let byte: number;
      do {
        if (ip >= end) throw corrupt('a literal length runs past its block');
        byte = src[ip++]!;
        literalLength += byte;
      } while (byte === 255);
    }
    if (ip + literalLength > end) throw corrupt(`${literalLength} literals run past their block`);
    if (op + literalLength > outLimit) throw corrupt(`data decodes past its limit of ${outLimit} bytes`);
    out.set(src.subarray(ip, ip + literalLength), op);
    ip += literalLength;
    op += literalLength;
    if (ip === end) return op;
    if (ip + 2 > end) throw corrupt('a match offset runs past its block');
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || op - offset < window.windowStart) throw corrupt(`match offset ${offset} points before the data`);
    let matchLength = token & 15;
    if (matchLength === 15) {
      let byte: number;
      do {
        if (ip >= end) throw corrupt('a match length runs past its block');
        byte = src[ip++]!;
        matchLength += byte;
      } while (byte === 255);
    }
    matchLength += minMatch;
    if (op + matchLength > outLimit) throw corrupt(`data decodes past its limit of ${outLimit} bytes`);
    let ref = op - offset;
    if (offset >= matchLength && matchLength > 32) {
      out.copyWithin(op, ref, ref + matchLength);
      op += matchLength;
    } else if (matchLength <= 32) {
      // Overlapping matches repeat the bytes just written: copy forwards one byte at a time.
      const stop = op + matchLength;
      while (op < stop) out[op++] = out[ref++]!;
    } else {
      // A long overlapping match repeats a period of `offset` bytes: copy whole periods, doubling.
      let copied = 0;
      while (copied < matchLength) {
        const n = Math.min(matchLength - copied, op + copied - ref);
        out.copyWithin(op + copied, ref, ref + n);
        copied += n;
      }
      op += matchLength;
    }
  }
}

/**
 * Decode one or more concatenated LZ4 frames. `maxOutputBytes` bounds the decoded size and is
 * allocated up front (callers pass the block size they expect), so a hostile frame cannot make
 * us allocate more.
 */
export function decodeLz4Frame(data: Uint8Array, maxOutputBytes: number): Uint8Array {
  const out = new Uint8Array(maxOutputBytes);
  let ip = 0;
  let op = 0;
  let frames = 0;
  const need = (n: number, what: string): void => {
    if (ip + n > data.length) throw corrupt(`truncated: ${what} needs ${n} bytes at ${ip}, ${data.length - ip} left`);
  };
  while (ip < data.length) {
    need(4, 'a magic number');
    const magic = read32(data, ip);
    if (((magic & skippableMagicMask) >>> 0) === skippableMagic) {
      need(8, 'a skippable frame header');
      const size = read32(data, ip + 4);
      ip += 8;
      need(size, 'a skippable frame');
      ip += size;
      continue;
    }
    if (magic !== frameMagic) throw corrupt(`bad magic number 0x${magic.toString(16)} at ${ip}`);
    need(7, 'a frame descriptor');
    const flags = data[ip + 4]!;
    const bd = data[ip + 5]!;
    if (flags >>> 6 !== 1) throw corrupt(`unsupported frame version ${flags >>> 6}`);
    if ((flags & 0b10) !== 0 || (bd & 0b1000_1111) !== 0) throw corrupt('reserved bits are set in the frame descriptor');
    if ((flags & 1) !== 0) throw corrupt('preset dictionaries are not supported');
    const independent = (flags & 0b10_0000) !== 0;
    const hasBlockChecksum = (flags & 0b1_0000) !== 0;
    const hasContentSize = (flags & 0b1000) !== 0;
    const hasContentChecksum = (flags & 0b100) !== 0;
    const blockMaxBytes = blockMaxBytesByCode[(bd >>> 4) & 7];
    if (blockMaxBytes === undefined) throw corrupt(`invalid block maximum size code ${(bd >>> 4) & 7}`);
    const descriptorEnd = ip + 6 + (hasContentSize ? 8 : 0);
    need(descriptorEnd + 1 - ip, 'a frame descriptor');
    const check = (xxhash32(data, 0, ip + 4, descriptorEnd) >>> 8) & 0xff;
    if (check !== data[descriptorEnd]) throw corrupt('frame descriptor checksum mismatch');
    let contentSize: number | undefined;
    if (hasContentSize) {
      contentSize = read32(data, ip + 6) + read32(data, ip + 10) * 2 ** 32;
      if (contentSize > maxOutputBytes - op) throw corrupt(`content size ${contentSize} is over the limit of ${maxOutputBytes} bytes`);
    }
    ip = descriptorEnd + 1;
    const frameStart = op;
    for (;;) {
      need(4, 'a block size');
      const word = read32(data, ip);
      ip += 4;
      if (word === 0) break;
      const length = word & 0x7fffffff;
      const raw = word >>> 31 === 1;
      if (length > blockMaxBytes + (raw ? 0 : 16)) throw corrupt(`block of ${length} bytes is larger than the frame's ${blockMaxBytes}`);
      need(length + (hasBlockChecksum ? 4 : 0), 'a block');
      if (hasBlockChecksum && xxhash32(data, 0, ip, ip + length) !== read32(data, ip + length)) {
        throw corrupt('block checksum mismatch');
      }
      const outLimit = Math.min(maxOutputBytes, op + blockMaxBytes);
      if (raw) {
        if (op + length > outLimit) throw corrupt(`data decodes past its limit of ${outLimit} bytes`);
        out.set(data.subarray(ip, ip + length), op);
        op += length;
      } else {
        op = decodeBlock(data, { start: ip, end: ip + length }, out, {
          outStart: op,
          windowStart: independent ? op : frameStart,
          outLimit,
        });
      }
      ip += length + (hasBlockChecksum ? 4 : 0);
    }
    if (hasContentChecksum) {
      need(4, 'a content checksum');
      if (xxhash32(out, 0, frameStart, op) !== read32(data, ip)) throw corrupt('content checksum mismatch');
      ip += 4;
    }
    if (contentSize !== undefined && op - frameStart !== contentSize) {
      throw corrupt(`frame holds ${op - frameStart} bytes, its header says ${contentSize}`);
    }
    frames++;
  }
  if (frames === 0) throw corrupt('no frame in the data');
  return op < out.length / 2 ? out.slice(0, op) : out.subarray(0, op);
}

/** Whether `data` starts like an LZ4 frame (for the gzip/lz4 fallback Longhorn also does). */
export function looksLikeLz4Frame(data: Uint8Array): boolean {
  return data.length >= 4 && read32(data, 0) === frameMagic;
}
