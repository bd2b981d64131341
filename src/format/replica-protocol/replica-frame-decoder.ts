// Incremental, pull-based frame decoder: push() byte chunks as they arrive in any sizes, then call
// next() until it says 'need_more'. Pulling one frame at a time lets the server stop taking
// frames when its in-flight window is full (and stop reading the socket), so memory stays bounded
// by one frame plus one chunk. A frame's declared length is checked against the maximum before a
// single byte is allocated for it.
import { assert } from '../../lib/assert.ts';
import {
  decodeFrameHeader,
  decodeFramePrefix,
  type HeaderProblem,
  type ReplicaFrame,
  replicaFrameHeaderBytes,
} from './replica-frame.ts';

export type FrameDecodeResult =
  | { readonly kind: 'need_more' }
  | { readonly kind: 'frame'; readonly frame: ReplicaFrame }
  /** Delimited but malformed header: answer its request id with an error and read on. */
  | HeaderProblem
  /** The stream cannot be trusted any more (bad magic, impossible length): close the connection. */
  | { readonly kind: 'fatal'; readonly message: string };

const prefixBytes = 8;

export class ReplicaFrameDecoder {
  private readonly chunks: Uint8Array[] = [];
  /** Bytes of chunks[0] already consumed. */
  private headOffset = 0;
  private buffered = 0;
  private failure: string | undefined;

  /** Bytes received but not yet returned as frames. */
  bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): void {
    if (this.failure !== undefined || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  next(): FrameDecodeResult {
    if (this.failure !== undefined) return { kind: 'fatal', message: this.failure };
    if (this.buffered < prefixBytes) return { kind: 'need_more' };
    const prefix = decodeFramePrefix(this.prefixView());
    if (prefix.kind === 'fatal') {
      this.failure = prefix.message;
      this.chunks.length = 0;
      this.buffered = 0;
      return prefix;
    }
    if (this.buffered < prefix.frameBytes) return { kind: 'need_more' };
    const bytes = this.take(prefix.frameBytes);
    const header = decodeFrameHeader(bytes);
    if (header.kind === 'invalid') return header;
    return { kind: 'frame', frame: { header: header.header, payload: bytes.subarray(replicaFrameHeaderBytes) } };
  }

  /** The first 8 buffered bytes: a view when the first chunk holds them (the usual case), else a copy. */
  private prefixView(): DataView {
    const first = this.chunks[0]!;
    if (first.length - this.headOffset >= prefixBytes) return new DataView(first.buffer, first.byteOffset + this.headOffset, prefixBytes);
    return new DataView(this.peek(prefixBytes).buffer);
  }

  /** A copy of the first `count` buffered bytes, without consuming them. */
  private peek(count: number): Uint8Array {
    const out = new Uint8Array(count);
    let filled = 0;
    let offset = this.headOffset;
    for (const chunk of this.chunks) {
      const part = chunk.subarray(offset, offset + count - filled);
      out.set(part, filled);
      filled += part.length;
      offset = 0;
      if (filled === count) break;
    }
    assert(filled === count, 'peek past the buffered bytes');
    return out;
  }

  /** Consume `count` bytes: a view into the first chunk when it holds them all, else one copy. */
  private take(count: number): Uint8Array {
    assert(count <= this.buffered, 'take past the buffered bytes');
    const first = this.chunks[0];
    assert(first !== undefined, 'buffered bytes without chunks');
    this.buffered -= count;
    if (first.length - this.headOffset >= count) {
      const view = first.subarray(this.headOffset, this.headOffset + count);
      this.headOffset += count;
      if (this.headOffset === first.length) this.dropFirst();
      return view;
    }
    const out = new Uint8Array(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.chunks[0];
      assert(chunk !== undefined, 'ran out of chunks');
      const part = chunk.subarray(this.headOffset, this.headOffset + count - filled);
      out.set(part, filled);
      filled += part.length;
      this.headOffset += part.length;
      if (this.headOffset === chunk.length) this.dropFirst();
    }
    return out;
  }

  private dropFirst(): void {
    this.chunks.shift();
    this.headOffset = 0;
  }
}
