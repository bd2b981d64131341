// The client half of NBD, just enough to test a server: encoders for what a client sends and a
// decoder for what a server sends back, both byte-exact and independent of the server code.
import { optionMagicBytes, optionReplyMagicBytes, requestMagic, simpleReplyMagic, structuredReplyMagic } from '../nbd-constants.ts';

const enc = new TextEncoder();

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function clientFlags(flags: number): Uint8Array {
  return u32(flags);
}

export function option(opt: number, payload: Uint8Array = new Uint8Array(0), declaredLength = payload.length): Uint8Array {
  return concat(optionMagicBytes, u32(opt), u32(declaredLength), payload);
}

export function infoPayload(name: string, infos: readonly number[]): Uint8Array {
  const n = enc.encode(name);
  const out = new Uint8Array(4 + n.length + 2 + 2 * infos.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, n.length);
  out.set(n, 4);
  v.setUint16(4 + n.length, infos.length);
  infos.forEach((t, i) => v.setUint16(4 + n.length + 2 + 2 * i, t));
  return out;
}

export function metaContextPayload(name: string, queries: readonly string[]): Uint8Array {
  const n = enc.encode(name);
  return concat(u32(n.length), n, u32(queries.length), ...queries.flatMap((q) => [u32(enc.encode(q).length), enc.encode(q)]));
}

export function request(r: {
  type: number;
  flags?: number;
  handle: bigint;
  offset?: bigint | number;
  length?: number;
  data?: Uint8Array;
  magic?: number;
}): Uint8Array {
  const out = new Uint8Array(28);
  const v = new DataView(out.buffer);
  v.setUint32(0, r.magic ?? requestMagic);
  v.setUint16(4, r.flags ?? 0);
  v.setUint16(6, r.type);
  v.setBigUint64(8, r.handle);
  v.setBigUint64(16, BigInt(r.offset ?? 0));
  v.setUint32(24, r.length ?? r.data?.length ?? 0);
  return r.data === undefined ? out : concat(out, r.data);
}

export type ServerMessage =
  | { kind: 'optionReply'; option: number; type: number; payload: Uint8Array }
  | { kind: 'simple'; error: number; handle: bigint; data: Uint8Array }
  | { kind: 'chunk'; flags: number; type: number; handle: bigint; payload: Uint8Array };

/**
 * Splits a server's byte stream into messages. A simple read reply carries data whose length only
 * the client knows, so the caller passes the expected read length per handle.
 */
export class ServerStreamReader {
  private buffer: Uint8Array = new Uint8Array(0);
  private readonly readLengths = new Map<bigint, number>();

  expectRead(handle: bigint, lengthBytes: number): void {
    this.readLengths.set(handle, lengthBytes);
  }

  push(bytes: Uint8Array): void {
    this.buffer = concat(this.buffer, bytes);
  }

  get pending(): number {
    return this.buffer.length;
  }

  /** Consume `n` raw bytes (the greeting, the EXPORT_NAME reply). */
  raw(n: number): Uint8Array | undefined {
    if (this.buffer.length < n) return undefined;
    const out = this.buffer.slice(0, n);
    this.buffer = this.buffer.slice(n);
    return out;
  }

  /** Whether the next bytes start an option reply (the handshake may be over). */
  atOptionReply(): boolean {
    if (this.buffer.length < 8) return false;
    for (let i = 0; i < 8; i++) if (this.buffer[i] !== optionReplyMagicBytes[i]) return false;
    return true;
  }

  nextOptionReply(): ServerMessage | undefined {
    if (this.buffer.length < 20) return undefined;
    for (let i = 0; i < 8; i++) if (this.buffer[i] !== optionReplyMagicBytes[i]) throw new Error('bad option reply magic');
    const v = new DataView(this.buffer.buffer, this.buffer.byteOffset);
    const length = v.getUint32(16);
    if (this.buffer.length < 20 + length) return undefined;
    const msg: ServerMessage = { kind: 'optionReply', option: v.getUint32(8), type: v.getUint32(12), payload: this.buffer.slice(20, 20 + length) };
    this.buffer = this.buffer.slice(20 + length);
    return msg;
  }

  nextReply(): ServerMessage | undefined {
    if (this.buffer.length < 4) return undefined;
    const v = new DataView(this.buffer.buffer, this.buffer.byteOffset);
    const magic = v.getUint32(0);
    if (magic === simpleReplyMagic) {
      if (this.buffer.length < 16) return undefined;
      const error = v.getUint32(4);
      const handle = v.getBigUint64(8);
      const dataLength = error === 0 ? (this.readLengths.get(handle) ?? 0) : 0;
      if (this.buffer.length < 16 + dataLength) return undefined;
      this.readLengths.delete(handle);
      const msg: ServerMessage = { kind: 'simple', error, handle, data: this.buffer.slice(16, 16 + dataLength) };
      this.buffer = this.buffer.slice(16 + dataLength);
      return msg;
    }
    if (magic === structuredReplyMagic) {
      if (this.buffer.length < 20) return undefined;
      const length = v.getUint32(16);
      if (this.buffer.length < 20 + length) return undefined;
      const msg: ServerMessage = {
        kind: 'chunk',
        flags: v.getUint16(4),
        type: v.getUint16(6),
        handle: v.getBigUint64(8),
        payload: this.buffer.slice(20, 20 + length),
      };
      this.buffer = this.buffer.slice(20 + length);
      return msg;
    }
    throw new Error(`bad reply magic 0x${magic.toString(16)}`);
  }
}

export function u64At(bytes: Uint8Array, at: number): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(at));
}

export function u32At(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(at);
}

export function u16At(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint16(at);
}
