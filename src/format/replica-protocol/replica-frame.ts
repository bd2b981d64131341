// One frame of the replica protocol: a fixed 104-byte big-endian header and a payload. Requests
// and replies share the layout (a flag tells them apart), so one decoder serves both ends.
// The layout, byte by byte, is in docs/replica-protocol.md.
import { nameLengthMax, replicaFrameSizeMaxBytes } from '../../lib/limits.ts';
import { assert } from '../../lib/assert.ts';

/** "SHRP": every frame starts with it; anything else is a stream we cannot trust. */
export const replicaFrameMagic = 0x53485250;
export const replicaProtocolVersion = 1;
export const replicaFrameHeaderBytes = 104;
/** Offset of the volume name field; it holds up to 64 bytes, zero-padded. */
const volumeNameFieldOffset = 40;
const volumeNameFieldBytes = 64;

export const replicaFrameFlags = {
  /** Set on every reply; clear on every request. */
  reply: 0x01,
} as const;

/** The header, with 64-bit fields already checked into numbers. */
export interface ReplicaFrameHeader {
  readonly version: number;
  /** Wire number of the operation (see replica-ops.ts); unknown numbers are kept for the error reply. */
  readonly opCode: number;
  readonly flags: number;
  readonly requestId: number;
  readonly epoch: number;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  /** 0 in requests and successful replies; an error code (replica-ops.ts) in error replies. */
  readonly status: number;
  readonly volumeName: string;
}

export interface ReplicaFrame {
  readonly header: ReplicaFrameHeader;
  readonly payload: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

// Every frame of a connection carries the same volume name: its bytes (encoding) and its string
// (decoding) are kept from the last frame, so the hot path neither encodes nor decodes text.
let lastEncodedName = '';
let lastEncodedNameBytes = encoder.encode('');
const lastDecodedNameBytes = new Uint8Array(volumeNameFieldBytes);
let lastDecodedNameLength = -1;
let lastDecodedName = '';

function nameBytesOf(name: string): Uint8Array {
  if (name !== lastEncodedName) {
    lastEncodedNameBytes = encoder.encode(name);
    lastEncodedName = name;
  }
  return lastEncodedNameBytes;
}

/** A 64-bit big-endian field as a number, or undefined when it is above 2^53 - 1. */
function readU53(view: DataView, at: number): number | undefined {
  const high = view.getUint32(at);
  if (high > 0x1fffff) return undefined;
  return high * 0x100000000 + view.getUint32(at + 4);
}

function writeU53(view: DataView, at: number, value: number): void {
  view.setUint32(at, Math.floor(value / 0x100000000));
  view.setUint32(at + 4, value >>> 0);
}

function isU32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xffffffff;
}

/**
 * Encode one frame. The caller promises a well-formed header (the codec above this checks what
 * users give it); a broken promise is an assertion, because it is our bug, not the peer's.
 */
export function encodeReplicaFrame(header: ReplicaFrameHeader, payload: Uint8Array): Uint8Array {
  const nameBytes = nameBytesOf(header.volumeName);
  assert(nameBytes.length <= nameLengthMax, `volume name of ${nameBytes.length} bytes is too long`);
  assert(isU32(header.requestId), `request id ${header.requestId} is not a u32`);
  assert(isU32(header.lengthBytes), `length ${header.lengthBytes} is not a u32`);
  assert(Number.isSafeInteger(header.epoch) && header.epoch >= 0, `bad epoch ${header.epoch}`);
  assert(Number.isSafeInteger(header.offsetBytes) && header.offsetBytes >= 0, `bad offset ${header.offsetBytes}`);
  const frameBytes = replicaFrameHeaderBytes + payload.length;
  assert(frameBytes <= replicaFrameSizeMaxBytes, `frame of ${frameBytes} bytes exceeds ${replicaFrameSizeMaxBytes}`);
  const bytes = new Uint8Array(frameBytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, replicaFrameHeaderBytes);
  view.setUint32(0, replicaFrameMagic);
  view.setUint32(4, frameBytes);
  view.setUint8(8, header.version);
  view.setUint8(9, header.opCode);
  view.setUint8(10, header.flags);
  view.setUint8(11, nameBytes.length);
  view.setUint32(12, header.requestId);
  writeU53(view, 16, header.epoch);
  writeU53(view, 24, header.offsetBytes);
  view.setUint32(32, header.lengthBytes);
  view.setUint16(36, header.status);
  // Bytes 38..39 are reserved and stay zero.
  bytes.set(nameBytes, volumeNameFieldOffset);
  bytes.set(payload, replicaFrameHeaderBytes);
  return bytes;
}

/** What the first 8 bytes say: whether this is a frame at all, and how long it is. */
export type FramePrefixResult =
  | { readonly kind: 'ok'; readonly frameBytes: number }
  | { readonly kind: 'fatal'; readonly message: string };

export function decodeFramePrefix(view: DataView): FramePrefixResult {
  const magic = view.getUint32(0);
  if (magic !== replicaFrameMagic) {
    return { kind: 'fatal', message: `bad magic 0x${magic.toString(16).padStart(8, '0')}` };
  }
  const frameBytes = view.getUint32(4);
  if (frameBytes < replicaFrameHeaderBytes) {
    return { kind: 'fatal', message: `frame length ${frameBytes} is shorter than the ${replicaFrameHeaderBytes}-byte header` };
  }
  if (frameBytes > replicaFrameSizeMaxBytes) {
    return { kind: 'fatal', message: `frame length ${frameBytes} exceeds the maximum ${replicaFrameSizeMaxBytes}` };
  }
  return { kind: 'ok', frameBytes };
}

/**
 * A header whose fields do not make sense. The frame is still delimited (its length was sane), so
 * the connection survives: the receiver answers this request id with an error and reads on.
 */
export interface HeaderProblem {
  readonly kind: 'invalid';
  readonly header: ReplicaFrameHeader;
  readonly code: 'bad_request' | 'out_of_range';
  readonly message: string;
}

export type HeaderResult = { readonly kind: 'ok'; readonly header: ReplicaFrameHeader } | HeaderProblem;

/** Decode a whole frame's header (the prefix has been checked). 64-bit fields are checked here. */
export function decodeFrameHeader(bytes: Uint8Array): HeaderResult {
  assert(bytes.length >= replicaFrameHeaderBytes, 'decodeFrameHeader needs a whole header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, replicaFrameHeaderBytes);
  const epoch = readU53(view, 16);
  const offsetBytes = readU53(view, 24);
  const nameLength = view.getUint8(11);
  const base = {
    version: view.getUint8(8),
    opCode: view.getUint8(9),
    flags: view.getUint8(10),
    requestId: view.getUint32(12),
    epoch: 0,
    offsetBytes: 0,
    lengthBytes: view.getUint32(32),
    status: view.getUint16(36),
    volumeName: '',
  };
  const invalid = (code: HeaderProblem['code'], message: string): HeaderProblem => ({
    kind: 'invalid',
    header: base,
    code,
    message,
  });
  if (base.version !== replicaProtocolVersion) {
    return invalid('bad_request', `protocol version ${base.version} is not supported (want ${replicaProtocolVersion})`);
  }
  if ((base.flags & ~replicaFrameFlags.reply) !== 0) {
    return invalid('bad_request', `unknown flags 0x${base.flags.toString(16)}`);
  }
  if (view.getUint16(38) !== 0) return invalid('bad_request', 'reserved header bytes are not zero');
  if (epoch === undefined) return invalid('bad_request', `epoch ${view.getBigUint64(16)} is too large`);
  if (offsetBytes === undefined) return invalid('out_of_range', `offset ${view.getBigUint64(24)} is too large`);
  if (nameLength > nameLengthMax) {
    return invalid('bad_request', `volume name length ${nameLength} exceeds ${nameLengthMax}`);
  }
  const field = bytes.subarray(volumeNameFieldOffset, volumeNameFieldOffset + volumeNameFieldBytes);
  for (let i = nameLength; i < volumeNameFieldBytes; i++) {
    if (field[i] !== 0) return invalid('bad_request', 'volume name padding is not zero');
  }
  const volumeName = decodeName(field, nameLength);
  if (volumeName === undefined) return invalid('bad_request', 'volume name is not valid UTF-8');
  return {
    kind: 'ok',
    header: {
      version: base.version,
      opCode: base.opCode,
      flags: base.flags,
      requestId: base.requestId,
      epoch,
      offsetBytes,
      lengthBytes: base.lengthBytes,
      status: base.status,
      volumeName,
    },
  };
}

/** The name in the first `length` bytes of `field`, or undefined when it is not UTF-8. */
function decodeName(field: Uint8Array, length: number): string | undefined {
  if (length === lastDecodedNameLength) {
    let same = true;
    for (let i = 0; i < length; i++) {
      if (field[i] !== lastDecodedNameBytes[i]) {
        same = false;
        break;
      }
    }
    if (same) return lastDecodedName;
  }
  let name: string;
  try {
    name = decoder.decode(field.subarray(0, length));
  } catch (error) {
    // TextDecoder with fatal: true throws TypeError on malformed UTF-8, and only that.
    if (!(error instanceof TypeError)) throw error;
    return undefined;
  }
  lastDecodedNameBytes.set(field.subarray(0, length));
  lastDecodedNameLength = length;
  lastDecodedName = name;
  return name;
}
