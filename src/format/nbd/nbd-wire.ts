// Encoders for what an NBD server sends: the greeting, option replies, and simple and structured
// transmission replies. Pure functions from values to bytes (big-endian, as the protocol says).
import { assert } from '../../lib/assert.ts';
import {
  HandshakeFlag,
  ReplyFlag,
  ReplyType,
  exportNameZeroPadBytes,
  nbdMagicBytes,
  optionMagicBytes,
  optionReplyMagicBytes,
  simpleReplyHeaderSizeBytes,
  simpleReplyMagic,
  stringLengthMaxBytes,
  structuredReplyHeaderSizeBytes,
  structuredReplyMagic,
} from './nbd-constants.ts';

const textEncoder = new TextEncoder();

/** A client's request handle (cookie): 8 opaque bytes echoed in every reply. */
export type NbdHandle = Uint8Array;

export function encodeUtf8(text: string): Uint8Array {
  return textEncoder.encode(text);
}

/** Encode a human-readable message, cut to the protocol's string limit on a character boundary. */
export function encodeMessage(text: string, maxBytes = stringLengthMaxBytes): Uint8Array {
  let bytes = textEncoder.encode(text);
  if (bytes.length <= maxBytes) return bytes;
  let end = maxBytes;
  // Back up over UTF-8 continuation bytes so the cut message stays valid UTF-8.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  bytes = bytes.subarray(0, end);
  return bytes;
}

export function setUint64(view: DataView, offset: number, value: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, `u64 field ${value} is not a safe non-negative integer`);
  view.setUint32(offset, Math.floor(value / 0x1_0000_0000));
  view.setUint32(offset + 4, value >>> 0);
}

export function encodeGreeting(): Uint8Array {
  const out = new Uint8Array(18);
  out.set(nbdMagicBytes, 0);
  out.set(optionMagicBytes, 8);
  new DataView(out.buffer).setUint16(16, HandshakeFlag.fixedNewstyle | HandshakeFlag.noZeroes);
  return out;
}

export function encodeOptionReply(option: number, replyType: number, payload?: Uint8Array): Uint8Array {
  const length = payload?.length ?? 0;
  const out = new Uint8Array(20 + length);
  const view = new DataView(out.buffer);
  out.set(optionReplyMagicBytes, 0);
  view.setUint32(8, option);
  view.setUint32(12, replyType);
  view.setUint32(16, length);
  if (payload !== undefined) out.set(payload, 20);
  return out;
}

/** NBD_REP_SERVER payload: a name and an optional description. */
export function encodeServerReplyPayload(name: string, description: string): Uint8Array {
  const nameBytes = encodeMessage(name);
  const descBytes = encodeMessage(description);
  const out = new Uint8Array(4 + nameBytes.length + descBytes.length);
  new DataView(out.buffer).setUint32(0, nameBytes.length);
  out.set(nameBytes, 4);
  out.set(descBytes, 4 + nameBytes.length);
  return out;
}

export function encodeInfoExport(sizeBytes: number, transmissionFlags: number): Uint8Array {
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  view.setUint16(0, 0);
  setUint64(view, 2, sizeBytes);
  view.setUint16(10, transmissionFlags);
  return out;
}

export function encodeInfoString(infoType: number, text: string): Uint8Array {
  const bytes = encodeMessage(text);
  const out = new Uint8Array(2 + bytes.length);
  new DataView(out.buffer).setUint16(0, infoType);
  out.set(bytes, 2);
  return out;
}

export interface BlockSizes {
  readonly minimumBytes: number;
  readonly preferredBytes: number;
  readonly maximumBytes: number;
}

export function encodeInfoBlockSize(sizes: BlockSizes): Uint8Array {
  const out = new Uint8Array(14);
  const view = new DataView(out.buffer);
  view.setUint16(0, 3);
  view.setUint32(2, sizes.minimumBytes);
  view.setUint32(6, sizes.preferredBytes);
  view.setUint32(10, sizes.maximumBytes);
  return out;
}

export function encodeMetaContextPayload(contextId: number, name: string): Uint8Array {
  const nameBytes = encodeUtf8(name);
  const out = new Uint8Array(4 + nameBytes.length);
  new DataView(out.buffer).setUint32(0, contextId);
  out.set(nameBytes, 4);
  return out;
}

/** The reply to NBD_OPT_EXPORT_NAME: size, transmission flags and, unless agreed otherwise, zeroes. */
export function encodeExportNameReply(sizeBytes: number, transmissionFlags: number, noZeroes: boolean): Uint8Array {
  const out = new Uint8Array(10 + (noZeroes ? 0 : exportNameZeroPadBytes));
  const view = new DataView(out.buffer);
  setUint64(view, 0, sizeBytes);
  view.setUint16(8, transmissionFlags);
  return out;
}

export function encodeSimpleReply(handle: NbdHandle, errno: number): Uint8Array {
  const out = new Uint8Array(simpleReplyHeaderSizeBytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, simpleReplyMagic);
  view.setUint32(4, errno);
  out.set(handle, 8);
  return out;
}

function structuredHeader(
  out: Uint8Array,
  fields: { flags: number; type: number; handle: NbdHandle; payloadBytes: number },
): DataView {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(0, structuredReplyMagic);
  view.setUint16(4, fields.flags);
  view.setUint16(6, fields.type);
  out.set(fields.handle, 8);
  view.setUint32(16, fields.payloadBytes);
  return view;
}

/** NBD_REPLY_TYPE_NONE with DONE: success of a command that returns nothing. */
export function encodeStructuredDone(handle: NbdHandle): Uint8Array {
  const out = new Uint8Array(structuredReplyHeaderSizeBytes);
  structuredHeader(out, { flags: ReplyFlag.done, type: ReplyType.none, handle, payloadBytes: 0 });
  return out;
}

/**
 * The header (and offset) of a final NBD_REPLY_TYPE_OFFSET_DATA chunk; the data follows as its own
 * buffer so that reads are never copied.
 */
export function encodeOffsetDataHeader(handle: NbdHandle, offsetBytes: number, dataBytes: number): Uint8Array {
  const out = new Uint8Array(structuredReplyHeaderSizeBytes + 8);
  const view = structuredHeader(out, {
    flags: ReplyFlag.done,
    type: ReplyType.offsetData,
    handle,
    payloadBytes: 8 + dataBytes,
  });
  setUint64(view, structuredReplyHeaderSizeBytes, offsetBytes);
  return out;
}

export function encodeStructuredError(handle: NbdHandle, errno: number, message: string): Uint8Array {
  const text = encodeMessage(message);
  const out = new Uint8Array(structuredReplyHeaderSizeBytes + 6 + text.length);
  const view = structuredHeader(out, {
    flags: ReplyFlag.done,
    type: ReplyType.error,
    handle,
    payloadBytes: 6 + text.length,
  });
  view.setUint32(structuredReplyHeaderSizeBytes, errno);
  view.setUint16(structuredReplyHeaderSizeBytes + 4, text.length);
  out.set(text, structuredReplyHeaderSizeBytes + 6);
  return out;
}

export interface StatusDescriptor {
  readonly lengthBytes: number;
  readonly flags: number;
}

export function encodeBlockStatus(handle: NbdHandle, contextId: number, descriptors: readonly StatusDescriptor[]): Uint8Array {
  assert(descriptors.length > 0, 'a block status reply needs at least one descriptor');
  const payloadBytes = 4 + 8 * descriptors.length;
  const out = new Uint8Array(structuredReplyHeaderSizeBytes + payloadBytes);
  const view = structuredHeader(out, { flags: ReplyFlag.done, type: ReplyType.blockStatus, handle, payloadBytes });
  view.setUint32(structuredReplyHeaderSizeBytes, contextId);
  let at = structuredReplyHeaderSizeBytes + 4;
  for (const d of descriptors) {
    assert(d.lengthBytes > 0 && d.lengthBytes <= 0xffffffff, `descriptor length ${d.lengthBytes}`);
    view.setUint32(at, d.lengthBytes);
    view.setUint32(at + 4, d.flags);
    at += 8;
  }
  return out;
}
