// Decoders for the payloads of the handshake options that carry structure: NBD_OPT_INFO/GO and
// NBD_OPT_LIST/SET_META_CONTEXT. Every length is checked against what is left before it is used;
// a malformed payload is a return value, never an exception.
import { stringLengthMaxBytes } from './nbd-constants.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

export interface InfoRequest {
  readonly exportName: string;
  readonly infoTypes: readonly number[];
}

export interface MetaContextRequest {
  readonly exportName: string;
  readonly queries: readonly string[];
}

class PayloadReader {
  private at = 0;
  private readonly view: DataView;
  private readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get remaining(): number {
    return this.bytes.length - this.at;
  }
  u16(): number | undefined {
    if (this.remaining < 2) return undefined;
    const v = this.view.getUint16(this.at);
    this.at += 2;
    return v;
  }
  u32(): number | undefined {
    if (this.remaining < 4) return undefined;
    const v = this.view.getUint32(this.at);
    this.at += 4;
    return v;
  }
  /** A string of `length` bytes: undefined if it does not fit, is too long, or is not UTF-8. */
  string(length: number): string | undefined {
    if (length > this.remaining || length > stringLengthMaxBytes) return undefined;
    const slice = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    try {
      return utf8.decode(slice);
    } catch (error) {
      if (error instanceof TypeError) return undefined; // invalid UTF-8
      throw error;
    }
  }
}

export function decodeUtf8String(bytes: Uint8Array): string | undefined {
  return new PayloadReader(bytes).string(bytes.length);
}

/** NBD_OPT_INFO / NBD_OPT_GO: u32 name length, name, u16 count, count × u16 info type. */
export function decodeInfoRequest(payload: Uint8Array): Decoded<InfoRequest> {
  const r = new PayloadReader(payload);
  const nameLength = r.u32();
  if (nameLength === undefined) return { ok: false, reason: 'payload shorter than a name length' };
  const exportName = r.string(nameLength);
  if (exportName === undefined) return { ok: false, reason: `bad export name of ${nameLength} bytes` };
  const count = r.u16();
  if (count === undefined) return { ok: false, reason: 'payload has no info request count' };
  if (r.remaining !== count * 2) {
    return { ok: false, reason: `${count} info requests need ${count * 2} bytes, ${r.remaining} follow` };
  }
  const infoTypes: number[] = [];
  for (let i = 0; i < count; i++) infoTypes.push(r.u16() ?? 0);
  return { ok: true, value: { exportName, infoTypes } };
}

/** NBD_OPT_{LIST,SET}_META_CONTEXT: u32 name length, name, u32 count, count × (u32 length, query). */
export function decodeMetaContextRequest(payload: Uint8Array): Decoded<MetaContextRequest> {
  const r = new PayloadReader(payload);
  const nameLength = r.u32();
  if (nameLength === undefined) return { ok: false, reason: 'payload shorter than a name length' };
  const exportName = r.string(nameLength);
  if (exportName === undefined) return { ok: false, reason: `bad export name of ${nameLength} bytes` };
  const count = r.u32();
  if (count === undefined) return { ok: false, reason: 'payload has no query count' };
  // Each query takes at least 4 bytes: refuse a count the payload cannot hold before looping.
  if (count * 4 > r.remaining) return { ok: false, reason: `${count} queries cannot fit in ${r.remaining} bytes` };
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    const length = r.u32();
    if (length === undefined) return { ok: false, reason: `query ${i} has no length` };
    const query = r.string(length);
    if (query === undefined) return { ok: false, reason: `query ${i} of ${length} bytes is malformed` };
    queries.push(query);
  }
  if (r.remaining !== 0) return { ok: false, reason: `${r.remaining} bytes after the last query` };
  return { ok: true, value: { exportName, queries } };
}
