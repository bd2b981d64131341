// One frame of the replica protocol: a fixed 104-byte big-endian header and a payload. Requests
// and replies share the layout (a flag tells them apart), so one decoder serves both ends.
// The layout, byte by byte, is in docs/replica-protocol.md.
import { nameLengthMax, replicaFrameSizeMaxBytes } from '../../lib/limits.ts';
import { assert, AssertionError } from '../../lib/assert.ts';

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

/** A frame as its header and its payload, handed to the socket as two pieces (one writev): the payload is never copied. */
export interface ReplicaFrameParts {
  readonly header: Uint8Array;
  readonly payload: Uint8Array;
}

// Headers are cut from shared slabs. A Uint8Array of its own per 104-byte header is a separate
// backing store (a zeroed malloc, and one more object for the GC to track and sweep) per frame,
// at tens of thousands of frames a second. Each slot is written once and never reused, so a
// header still queued on a socket cannot change; a slab lives until its last header is sent.
const headerSlabBytes = 312 * replicaFrameHeaderBytes;
let slab = new Uint8Array(0);
let slabView = new DataView(slab.buffer);
let slabUsed = 0;

function fail(message: string): never {
  throw new AssertionError(message);
}

/**
 * Encode one frame's header for a payload of `payloadBytes`. The caller promises a well-formed
 * header (the codec above this checks what users give it); a broken promise is an assertion,
 * because it is our bug, not the peer's. (The checks build their messages only when they fail:
 * this runs for every request and reply.)
 */
export function encodeReplicaFrameHeader(header: ReplicaFrameHeader, payloadBytes: number): Uint8Array {
  const nameBytes = nameBytesOf(header.volumeName);
  if (nameBytes.length > nameLengthMax) fail(`volume name of ${nameBytes.length} bytes is too long`);
  if (!isU32(header.requestId)) fail(`request id ${header.requestId} is not a u32`);
  if (!isU32(header.lengthBytes)) fail(`length ${header.lengthBytes} is not a u32`);
  if (!Number.isSafeInteger(header.epoch) || header.epoch < 0) fail(`bad epoch ${header.epoch}`);
  if (!Number.isSafeInteger(header.offsetBytes) || header.offsetBytes < 0) fail(`bad offset ${header.offsetBytes}`);
  const frameBytes = replicaFrameHeaderBytes + payloadBytes;
  if (frameBytes > replicaFrameSizeMaxBytes) fail(`frame of ${frameBytes} bytes exceeds ${replicaFrameSizeMaxBytes}`);
  if (slabUsed + replicaFrameHeaderBytes > slab.length) {
    slab = new Uint8Array(headerSlabBytes);
    slabView = new DataView(slab.buffer);
    slabUsed = 0;
  }
  const at = slabUsed;
  slabUsed += replicaFrameHeaderBytes;
  const view = slabView;
  view.setUint32(at, replicaFrameMagic);
  view.setUint32(at + 4, frameBytes);
  view.setUint8(at + 8, header.version);
  view.setUint8(at + 9, header.opCode);
  view.setUint8(at + 10, header.flags);
  view.setUint8(at + 11, nameBytes.length);
  view.setUint32(at + 12, header.requestId);
  writeU53(view, at + 16, header.epoch);
  writeU53(view, at + 24, header.offsetBytes);
  view.setUint32(at + 32, header.lengthBytes);
  view.setUint16(at + 36, header.status);
  // Bytes 38..39 are reserved and the name's padding is zeros: a fresh slab is all zeros.
  slab.set(nameBytes, at + volumeNameFieldOffset);
  return slab.subarray(at, at + replicaFrameHeaderBytes);
}

/** Encode one frame as header and payload; the payload is the caller's bytes, not a copy. */
export function encodeReplicaFrameParts(header: ReplicaFrameHeader, payload: Uint8Array): ReplicaFrameParts {
  return { header: encodeReplicaFrameHeader(header, payload.length), payload };
}

/** Encode one frame in one buffer (tests and cold paths; the data path sends parts). */
export function encodeReplicaFrame(header: ReplicaFrameHeader, payload: Uint8Array): Uint8Array {
  return joinReplicaFrame(encodeReplicaFrameParts(header, payload));
}

/** Header and payload in one new buffer. */
export function joinReplicaFrame(parts: ReplicaFrameParts): Uint8Array {
  const bytes = new Uint8Array(parts.header.length + parts.payload.length);
  bytes.set(parts.header, 0);
  bytes.set(parts.payload, parts.header.length);
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

/** A header problem, reported with the fields read so far (epoch, offset and name unset). No closure per decode. */
function problem(view: DataView, code: HeaderProblem['code'], message: string): HeaderProblem {
  const header: ReplicaFrameHeader = {
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
  return { kind: 'invalid', header, code, message };
}

/** Decode a whole frame's header (the prefix has been checked). 64-bit fields are checked here. */
export function decodeFrameHeader(bytes: Uint8Array): HeaderResult {
  assert(bytes.length >= replicaFrameHeaderBytes, 'decodeFrameHeader needs a whole header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, replicaFrameHeaderBytes);
  const epoch = readU53(view, 16);
  const offsetBytes = readU53(view, 24);
  const nameLength = view.getUint8(11);
  const version = view.getUint8(8);
  const flags = view.getUint8(10);
  if (version !== replicaProtocolVersion) {
    return problem(view, 'bad_request', `protocol version ${version} is not supported (want ${replicaProtocolVersion})`);
  }
  if ((flags & ~replicaFrameFlags.reply) !== 0) {
    return problem(view, 'bad_request', `unknown flags 0x${flags.toString(16)}`);
  }
  if (view.getUint16(38) !== 0) return problem(view, 'bad_request', 'reserved header bytes are not zero');
  if (epoch === undefined) return problem(view, 'bad_request', `epoch ${view.getBigUint64(16)} is too large`);
  if (offsetBytes === undefined) return problem(view, 'out_of_range', `offset ${view.getBigUint64(24)} is too large`);
  if (nameLength > nameLengthMax) {
    return problem(view, 'bad_request', `volume name length ${nameLength} exceeds ${nameLengthMax}`);
  }
  const field = bytes.subarray(volumeNameFieldOffset, volumeNameFieldOffset + volumeNameFieldBytes);
  for (let i = nameLength; i < volumeNameFieldBytes; i++) {
    if (field[i] !== 0) return problem(view, 'bad_request', 'volume name padding is not zero');
  }
  const volumeName = decodeName(field, nameLength);
  if (volumeName === undefined) return problem(view, 'bad_request', 'volume name is not valid UTF-8');
  return {
    kind: 'ok',
    header: {
      version,
      opCode: view.getUint8(9),
      flags,
      requestId: view.getUint32(12),
      epoch,
      offsetBytes,
      lengthBytes: view.getUint32(32),
      status: view.getUint16(36),
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
