// Compression of block objects: lz4 (frame), gzip (one gzip stream, through zlib off the main
// thread) or none. Decompression is bounded by the block size and falls back between gzip and
// lz4 when the object's magic says the other one, as Longhorn does for stores where both exist.
import { gunzip, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { BackupError, BackupErrorCode } from '../format/backup/backup-error.ts';
import type { CompressionMethod } from '../format/backup/compression-method.ts';
import { decodeLz4Frame, encodeLz4Frame, looksLikeLz4Frame } from '../format/backup/lz4-frame.ts';
import { unreachable } from '../lib/assert.ts';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

function looksLikeGzip(data: Uint8Array): boolean {
  return data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b;
}

export async function compressBlock(method: CompressionMethod, data: Uint8Array): Promise<Uint8Array> {
  switch (method) {
    case 'none':
      return data;
    case 'lz4':
      return encodeLz4Frame(data);
    case 'gzip':
      return new Uint8Array(await gzipAsync(data));
    default:
      return unreachable(method, 'compression method');
  }
}

async function decompressAs(method: CompressionMethod, data: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  switch (method) {
    case 'none':
      if (data.length > maxBytes) throw new BackupError(BackupErrorCode.corrupt, `an uncompressed block of ${data.length} bytes is larger than ${maxBytes}`);
      return data;
    case 'lz4':
      return decodeLz4Frame(data, maxBytes);
    case 'gzip':
      try {
        return new Uint8Array(await gunzipAsync(data, { maxOutputLength: maxBytes }));
      } catch (error) {
        throw new BackupError(BackupErrorCode.corrupt, `gzip: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
    default:
      return unreachable(method, 'compression method');
  }
}

/** The block inside an object written with `method` (or, by its magic, with the other one). */
export async function decompressBlock(method: CompressionMethod, data: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  if (method === 'gzip' && !looksLikeGzip(data) && looksLikeLz4Frame(data)) return decompressAs('lz4', data, maxBytes);
  if (method === 'lz4' && !looksLikeLz4Frame(data) && looksLikeGzip(data)) return decompressAs('gzip', data, maxBytes);
  return decompressAs(method, data, maxBytes);
}
