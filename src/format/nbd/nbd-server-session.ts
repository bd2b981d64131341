// The server side of one NBD connection as a pure state machine (sans-I/O): bytes received and
// block completions go in; bytes to send, block requests to run and "close" come out. A driver
// moves bytes between it and a socket and runs the requests against a BlockDevice.
//
// Ordering contract for the driver:
// - apply outputs in the order given: `send` bytes are written in order, `submit` starts a request;
// - requests may complete in any order; feed each completion back exactly once with its id;
// - after a `close` output, end the connection once the sends before it are written; later inputs
//   are ignored, so completions that race with the close are harmless;
// - when `wantsInput()` is false, stop reading the socket (back-pressure) until it is true again.
import { assert, unreachable } from '../../lib/assert.ts';
import type { BlockDeviceCapabilities, BlockExtent } from '../../lib/block-device.ts';
import {
  blockSizeBytes,
  nbdBlockStatusDescriptorsMax,
  nbdInflightBytesMax,
  nbdInflightMax,
  nbdOptionSizeMaxBytes,
  requestSizeMaxBytes,
  sectorSizeBytes,
} from '../../lib/limits.ts';
import { ByteQueue } from './byte-queue.ts';
import {
  AllocationState,
  ClientFlag,
  Command,
  CommandFlag,
  Info,
  NbdErrno,
  Option,
  OptionReply,
  TransmissionFlag,
  baseAllocationContext,
  baseAllocationContextId,
  clientFlagsKnown,
  clientFlagsSizeBytes,
  optionHeaderSizeBytes,
  optionMagicBytes,
  requestHeaderSizeBytes,
  requestMagic,
} from './nbd-constants.ts';
import { nbdErrnoForCode } from './nbd-errno.ts';
import { decodeInfoRequest, decodeMetaContextRequest, decodeUtf8String } from './nbd-option-payloads.ts';
import {
  type NbdHandle,
  type StatusDescriptor,
  encodeBlockStatus,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoString,
  encodeMetaContextPayload,
  encodeOffsetDataHeader,
  encodeOptionReply,
  encodeServerReplyPayload,
  encodeSimpleReply,
  encodeStructuredDone,
  encodeStructuredError,
} from './nbd-wire.ts';

/** What the session knows of the export it serves (a snapshot taken when the connection starts). */
export interface NbdExport {
  /** The export's name; the empty name (the default export) is always accepted too. */
  readonly name: string;
  readonly description: string;
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  readonly capabilities: BlockDeviceCapabilities;
}

export interface NbdSessionLimits {
  /** Requests in flight (submitted, not yet completed) before the session stops reading. */
  readonly inflightMax: number;
  /** Bytes of read and write payload in flight before the session stops reading (one request always passes). */
  readonly inflightBytesMax: number;
  /** Largest read or write; also the maximum block size advertised. */
  readonly requestSizeMaxBytes: number;
  /** Largest option payload buffered in the handshake; larger ones are skipped and refused. */
  readonly optionSizeMaxBytes: number;
  /** Most descriptors in one block-status reply (the protocol lets a server return fewer). */
  readonly blockStatusDescriptorsMax: number;
}

export const defaultNbdSessionLimits: NbdSessionLimits = {
  inflightMax: nbdInflightMax,
  inflightBytesMax: nbdInflightBytesMax,
  requestSizeMaxBytes,
  optionSizeMaxBytes: nbdOptionSizeMaxBytes,
  blockStatusDescriptorsMax: nbdBlockStatusDescriptorsMax,
};

export type NbdBlockRequest =
  | { readonly kind: 'read'; readonly offsetBytes: number; readonly lengthBytes: number }
  | { readonly kind: 'write'; readonly offsetBytes: number; readonly data: Uint8Array; readonly fua: boolean }
  | {
      readonly kind: 'writeZeroes';
      readonly offsetBytes: number;
      readonly lengthBytes: number;
      readonly fua: boolean;
      /** The client wants the range provisioned, not punched out (NBD_CMD_FLAG_NO_HOLE). */
      readonly noHole: boolean;
    }
  | { readonly kind: 'trim'; readonly offsetBytes: number; readonly lengthBytes: number; readonly fua: boolean }
  | { readonly kind: 'flush' }
  | { readonly kind: 'blockStatus'; readonly offsetBytes: number; readonly lengthBytes: number };

export type NbdBlockResult =
  | { readonly kind: 'done' }
  | { readonly kind: 'data'; readonly data: Uint8Array }
  | { readonly kind: 'extents'; readonly extents: readonly BlockExtent[] }
  /** `code` is a typed error's code (IoErrorCode and friends); it picks the NBD errno. */
  | { readonly kind: 'error'; readonly code: string; readonly message: string };

export type NbdSessionInput =
  | { readonly kind: 'received'; readonly bytes: Uint8Array }
  | { readonly kind: 'completed'; readonly id: number; readonly result: NbdBlockResult }
  /** The peer will send nothing more (TCP half-close): finish what is complete, then close. */
  | { readonly kind: 'peerEnded' };

export type NbdSessionOutput =
  | { readonly kind: 'send'; readonly bytes: Uint8Array }
  | { readonly kind: 'submit'; readonly id: number; readonly request: NbdBlockRequest }
  /** `clean` is false when the peer broke the protocol (worth a warning in the driver's log). */
  | { readonly kind: 'close'; readonly reason: string; readonly clean: boolean };

type Phase =
  | { readonly name: 'greeting' }
  | { readonly name: 'clientFlags' }
  | { readonly name: 'optionHeader' }
  | { readonly name: 'optionPayload'; readonly option: number; readonly lengthBytes: number }
  | { readonly name: 'optionSkip'; readonly option: number; remainingBytes: number }
  | { readonly name: 'requestHeader' }
  | { readonly name: 'writePayload'; readonly id: number; readonly offsetBytes: number; readonly data: Uint8Array; receivedBytes: number; readonly fua: boolean }
  | { readonly name: 'writeSkip'; readonly handle: NbdHandle; remainingBytes: number; readonly errno: number; readonly message: string }
  /** NBD_CMD_DISC or end of input: no more parsing; close once in-flight requests are answered. */
  | { readonly name: 'draining'; readonly reason: string }
  | { readonly name: 'closed' };

interface Pending {
  readonly handle: NbdHandle;
  readonly request: NbdBlockRequest['kind'];
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  readonly costBytes: number;
  readonly reqOne: boolean;
}

type Validation = { readonly ok: true } | { readonly ok: false; readonly errno: number; readonly message: string };
const valid: Validation = { ok: true };
function invalid(errno: number, message: string): Validation {
  return { ok: false, errno, message };
}

const commandNames: Readonly<Record<number, string>> = {
  [Command.read]: 'READ',
  [Command.write]: 'WRITE',
  [Command.disc]: 'DISC',
  [Command.flush]: 'FLUSH',
  [Command.trim]: 'TRIM',
  [Command.cache]: 'CACHE',
  [Command.writeZeroes]: 'WRITE_ZEROES',
  [Command.blockStatus]: 'BLOCK_STATUS',
  [Command.resize]: 'RESIZE',
};

export class NbdServerSession {
  private readonly exportInfo: NbdExport;
  private readonly limits: NbdSessionLimits;
  private readonly queue = new ByteQueue();
  private phase: Phase = { name: 'greeting' };
  private noZeroes = false;
  private structured = false;
  private baseAllocationSelected = false;
  private transmissionFlags = 0;
  private peerEnded = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private inflightBytes = 0;

  constructor(exportInfo: NbdExport, limits: NbdSessionLimits = defaultNbdSessionLimits) {
    assert(Number.isSafeInteger(exportInfo.sizeBytes) && exportInfo.sizeBytes >= 0, `bad export size ${exportInfo.sizeBytes}`);
    assert(limits.requestSizeMaxBytes >= blockSizeBytes && limits.requestSizeMaxBytes <= 0xffffffff, 'request size limit');
    assert(limits.inflightMax >= 1 && limits.blockStatusDescriptorsMax >= 1, 'in-flight and descriptor limits');
    this.exportInfo = exportInfo;
    this.limits = limits;
  }

  /** The server speaks first: the greeting. Call once, before any input. */
  start(): NbdSessionOutput[] {
    assert(this.phase.name === 'greeting', 'start() called twice');
    this.phase = { name: 'clientFlags' };
    return [{ kind: 'send', bytes: encodeGreeting() }];
  }

  get closed(): boolean {
    return this.phase.name === 'closed';
  }

  /** Whether the handshake is over (transmission phase reached). */
  get transmitting(): boolean {
    const n = this.phase.name;
    return n === 'requestHeader' || n === 'writePayload' || n === 'writeSkip' || n === 'draining';
  }

  get inflightCount(): number {
    return this.pending.size;
  }

  /** False while the driver should stop reading: at the in-flight limit, draining or closed. */
  wantsInput(): boolean {
    const name = this.phase.name;
    if (name === 'closed' || name === 'draining') return false;
    return name !== 'requestHeader' || !this.atCapacity();
  }

  step(input: NbdSessionInput): NbdSessionOutput[] {
    const out: NbdSessionOutput[] = [];
    if (this.phase.name === 'closed') return out;
    assert(this.phase.name !== 'greeting', 'step() before start()');
    switch (input.kind) {
      case 'received':
        this.queue.push(input.bytes);
        break;
      case 'completed':
        this.complete(input.id, input.result, out);
        break;
      case 'peerEnded':
        this.peerEnded = true;
        break;
      default:
        unreachable(input, 'session input');
    }
    this.pump(out);
    return out;
  }

  private atCapacity(): boolean {
    if (this.pending.size >= this.limits.inflightMax) return true;
    return this.pending.size > 0 && this.inflightBytes >= this.limits.inflightBytesMax;
  }

  private close(out: NbdSessionOutput[], reason: string, clean: boolean): void {
    this.phase = { name: 'closed' };
    this.queue.clear();
    out.push({ kind: 'close', reason, clean });
  }

  /** Parse as much as the queue and the in-flight limits allow. */
  private pump(out: NbdSessionOutput[]): void {
    for (;;) {
      const phase = this.phase;
      switch (phase.name) {
        case 'greeting':
        case 'closed':
          return;
        case 'draining':
          if (this.pending.size === 0) this.close(out, phase.reason, true);
          return;
        case 'clientFlags': {
          if (this.queue.length < clientFlagsSizeBytes) return this.needMore(out);
          const flags = readU32(this.queue.take(clientFlagsSizeBytes), 0);
          if ((flags & ~clientFlagsKnown) !== 0) {
            return this.close(out, `client flags 0x${flags.toString(16)} include unknown bits`, false);
          }
          // A client without FIXED_NEWSTYLE is served as fixed newstyle anyway: every client we
          // know sets it, and the fixed rules only add error replies an old client would not see.
          this.noZeroes = (flags & ClientFlag.noZeroes) !== 0;
          this.phase = { name: 'optionHeader' };
          break;
        }
        case 'optionHeader': {
          if (this.queue.length < optionHeaderSizeBytes) return this.needMore(out);
          const header = this.queue.take(optionHeaderSizeBytes);
          if (!startsWith(header, optionMagicBytes)) {
            return this.close(out, 'option without IHAVEOPT magic (a request before the handshake ended?)', false);
          }
          const option = readU32(header, 8);
          const lengthBytes = readU32(header, 12);
          if (lengthBytes <= this.limits.optionSizeMaxBytes) {
            this.phase = { name: 'optionPayload', option, lengthBytes };
          } else if (option === Option.exportName) {
            return this.close(out, `EXPORT_NAME of ${lengthBytes} bytes is over ${this.limits.optionSizeMaxBytes}`, false);
          } else {
            this.phase = { name: 'optionSkip', option, remainingBytes: lengthBytes };
          }
          break;
        }
        case 'optionPayload': {
          if (this.queue.length < phase.lengthBytes) return this.needMore(out);
          const payload = this.queue.take(phase.lengthBytes);
          this.phase = { name: 'optionHeader' };
          this.handleOption(phase.option, payload, out);
          break;
        }
        case 'optionSkip': {
          phase.remainingBytes -= this.queue.skip(phase.remainingBytes);
          if (phase.remainingBytes > 0) return this.needMore(out);
          this.phase = { name: 'optionHeader' };
          this.replyOption(out, phase.option, OptionReply.errTooBig, `option payload over ${this.limits.optionSizeMaxBytes} bytes`);
          break;
        }
        case 'requestHeader': {
          if (this.atCapacity()) return;
          if (this.queue.length < requestHeaderSizeBytes) return this.needMore(out);
          this.handleRequestHeader(this.queue.take(requestHeaderSizeBytes), out);
          break;
        }
        case 'writePayload': {
          const want = phase.data.length - phase.receivedBytes;
          const n = Math.min(want, this.queue.length);
          this.queue.copyInto(phase.data, phase.receivedBytes, n);
          phase.receivedBytes += n;
          if (phase.receivedBytes < phase.data.length) return this.needMore(out);
          this.phase = { name: 'requestHeader' };
          out.push({
            kind: 'submit',
            id: phase.id,
            request: { kind: 'write', offsetBytes: phase.offsetBytes, data: phase.data, fua: phase.fua },
          });
          break;
        }
        case 'writeSkip': {
          phase.remainingBytes -= this.queue.skip(phase.remainingBytes);
          if (phase.remainingBytes > 0) return this.needMore(out);
          this.phase = { name: 'requestHeader' };
          this.replyError(out, phase.handle, phase.errno, phase.message);
          break;
        }
        default:
          unreachable(phase, 'session phase');
      }
    }
  }

  /** The queue cannot complete the current message: wait, or wind down if the peer has ended. */
  private needMore(out: NbdSessionOutput[]): void {
    if (!this.peerEnded) return;
    if (this.transmitting) {
      this.phase = { name: 'draining', reason: 'client closed its side' };
      if (this.pending.size === 0) this.close(out, 'client closed its side', true);
    } else {
      this.close(out, 'client closed during the handshake', true);
    }
  }

  // ---- handshake ----

  private replyOption(out: NbdSessionOutput[], option: number, type: number, message?: string): void {
    const payload = message === undefined ? undefined : new TextEncoder().encode(message);
    out.push({ kind: 'send', bytes: encodeOptionReply(option, type, payload) });
  }

  private knownExport(name: string): boolean {
    return name === '' || name === this.exportInfo.name;
  }

  private handleOption(option: number, payload: Uint8Array, out: NbdSessionOutput[]): void {
    switch (option) {
      case Option.exportName: {
        const name = decodeUtf8String(payload);
        if (name === undefined || !this.knownExport(name)) {
          // EXPORT_NAME has no error reply: the protocol says to drop the connection.
          return this.close(out, `EXPORT_NAME asks for an unknown export`, false);
        }
        this.enterTransmission();
        out.push({
          kind: 'send',
          bytes: encodeExportNameReply(this.exportInfo.sizeBytes, this.transmissionFlags, this.noZeroes),
        });
        return;
      }
      case Option.abort:
        this.replyOption(out, option, OptionReply.ack);
        return this.close(out, 'client aborted the handshake', true);
      case Option.list:
        if (payload.length !== 0) return this.replyOption(out, option, OptionReply.errInvalid, 'LIST takes no data');
        out.push({
          kind: 'send',
          bytes: encodeOptionReply(option, OptionReply.server, encodeServerReplyPayload(this.exportInfo.name, this.exportInfo.description)),
        });
        return this.replyOption(out, option, OptionReply.ack);
      case Option.structuredReply:
        if (payload.length !== 0) {
          return this.replyOption(out, option, OptionReply.errInvalid, 'STRUCTURED_REPLY takes no data');
        }
        this.structured = true;
        return this.replyOption(out, option, OptionReply.ack);
      case Option.info:
      case Option.go:
        return this.handleInfoOrGo(option, payload, out);
      case Option.listMetaContext:
      case Option.setMetaContext:
        return this.handleMetaContext(option, payload, out);
      default:
        // STARTTLS, EXTENDED_HEADERS, PEEK_EXPORT and anything newer or unknown.
        return this.replyOption(out, option, OptionReply.errUnsup, `option ${option} is not supported`);
    }
  }

  private handleInfoOrGo(option: number, payload: Uint8Array, out: NbdSessionOutput[]): void {
    const decoded = decodeInfoRequest(payload);
    if (!decoded.ok) return this.replyOption(out, option, OptionReply.errInvalid, decoded.reason);
    const { exportName, infoTypes } = decoded.value;
    if (!this.knownExport(exportName)) {
      return this.replyOption(out, option, OptionReply.errUnknown, `no export named ${JSON.stringify(exportName)}`);
    }
    const flags = this.computeTransmissionFlags();
    const info = (bytes: Uint8Array): void => {
      out.push({ kind: 'send', bytes: encodeOptionReply(option, OptionReply.info, bytes) });
    };
    info(encodeInfoExport(this.exportInfo.sizeBytes, flags));
    // Block sizes are sent whether asked for or not: the protocol allows it and clients that did
    // not ask simply ignore them. Any alignment is accepted, so no ERR_BLOCK_SIZE_REQD.
    info(
      encodeInfoBlockSize({
        minimumBytes: sectorSizeBytes,
        preferredBytes: blockSizeBytes,
        maximumBytes: this.limits.requestSizeMaxBytes,
      }),
    );
    if (infoTypes.includes(Info.name)) info(encodeInfoString(Info.name, this.exportInfo.name));
    if (infoTypes.includes(Info.description) && this.exportInfo.description !== '') {
      info(encodeInfoString(Info.description, this.exportInfo.description));
    }
    this.replyOption(out, option, OptionReply.ack);
    if (option === Option.go) this.enterTransmission();
  }

  private handleMetaContext(option: number, payload: Uint8Array, out: NbdSessionOutput[]): void {
    if (!this.structured) {
      return this.replyOption(out, option, OptionReply.errInvalid, 'negotiate STRUCTURED_REPLY first');
    }
    const decoded = decodeMetaContextRequest(payload);
    if (!decoded.ok) return this.replyOption(out, option, OptionReply.errInvalid, decoded.reason);
    const { exportName, queries } = decoded.value;
    if (!this.knownExport(exportName)) {
      return this.replyOption(out, option, OptionReply.errUnknown, `no export named ${JSON.stringify(exportName)}`);
    }
    let matched: boolean;
    if (option === Option.listMetaContext) {
      // Listing accepts a bare namespace ("base:") and an empty query list as "everything".
      matched = queries.length === 0 || queries.some((q) => q === baseAllocationContext || q === 'base:');
    } else {
      matched = queries.includes(baseAllocationContext);
      this.baseAllocationSelected = matched;
    }
    if (matched) {
      const id = option === Option.setMetaContext ? baseAllocationContextId : 0;
      out.push({
        kind: 'send',
        bytes: encodeOptionReply(option, OptionReply.metaContext, encodeMetaContextPayload(id, baseAllocationContext)),
      });
    }
    this.replyOption(out, option, OptionReply.ack);
  }

  private computeTransmissionFlags(): number {
    const caps = this.exportInfo.capabilities;
    const ro = this.exportInfo.readOnly;
    let flags = TransmissionFlag.hasFlags | TransmissionFlag.sendWriteZeroes;
    if (ro) flags |= TransmissionFlag.readOnly;
    if (caps.canFlush) flags |= TransmissionFlag.sendFlush;
    if (caps.canFua) flags |= TransmissionFlag.sendFua;
    if (caps.canTrim) flags |= TransmissionFlag.sendTrim;
    if (caps.canMultiConn) flags |= TransmissionFlag.canMultiConn;
    // Reads are always answered with one chunk, so "don't fragment" costs nothing to honour.
    if (this.structured) flags |= TransmissionFlag.sendDf;
    return flags;
  }

  private enterTransmission(): void {
    this.transmissionFlags = this.computeTransmissionFlags();
    this.phase = { name: 'requestHeader' };
  }

  // ---- transmission ----

  private has(flag: number): boolean {
    return (this.transmissionFlags & flag) !== 0;
  }

  private handleRequestHeader(header: Uint8Array, out: NbdSessionOutput[]): void {
    const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
    const magic = view.getUint32(0);
    if (magic !== requestMagic) {
      return this.close(out, `request magic 0x${magic.toString(16)} is not 0x${requestMagic.toString(16)}`, false);
    }
    const flags = view.getUint16(4);
    const type = view.getUint16(6);
    const handle = header.slice(8, 16);
    const offsetBig = view.getBigUint64(16);
    const lengthBytes = view.getUint32(24);
    // A 64-bit offset beyond exact doubles is beyond any export: keep it as infinity for the range check.
    const offsetBytes = offsetBig <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(offsetBig) : Number.POSITIVE_INFINITY;

    if (type === Command.disc) {
      this.phase = { name: 'draining', reason: 'client disconnected (DISC)' };
      if (this.pending.size === 0) this.close(out, 'client disconnected (DISC)', true);
      return;
    }
    const check = this.validate({ type, flags, offsetBytes, lengthBytes });
    if (type === Command.write) {
      if (!check.ok) {
        // The payload still follows on the wire: drop it as it arrives, never buffer it.
        this.phase = { name: 'writeSkip', handle, remainingBytes: lengthBytes, errno: check.errno, message: check.message };
        return;
      }
      if (lengthBytes === 0) return this.replyDone(out, handle);
      const id = this.track({ handle, request: 'write', offsetBytes, lengthBytes, costBytes: lengthBytes, reqOne: false });
      const fua = (flags & CommandFlag.fua) !== 0;
      if (this.queue.length >= lengthBytes) {
        // The whole payload is already here (the usual case): taken as it lies, without a copy
        // when it sits in one received chunk.
        out.push({ kind: 'submit', id, request: { kind: 'write', offsetBytes, data: this.queue.take(lengthBytes), fua } });
        return;
      }
      // Allocated only now: the length passed the limit check above.
      this.phase = { name: 'writePayload', id, offsetBytes, data: new Uint8Array(lengthBytes), receivedBytes: 0, fua };
      return;
    }
    if (!check.ok) return this.replyError(out, handle, check.errno, check.message);
    const fua = (flags & CommandFlag.fua) !== 0;
    switch (type) {
      case Command.read: {
        if (lengthBytes === 0) return this.replyEmptyRead(out, handle);
        const id = this.track({ handle, request: 'read', offsetBytes, lengthBytes, costBytes: lengthBytes, reqOne: false });
        out.push({ kind: 'submit', id, request: { kind: 'read', offsetBytes, lengthBytes } });
        return;
      }
      case Command.flush: {
        const id = this.track({ handle, request: 'flush', offsetBytes: 0, lengthBytes: 0, costBytes: 0, reqOne: false });
        out.push({ kind: 'submit', id, request: { kind: 'flush' } });
        return;
      }
      case Command.trim: {
        if (lengthBytes === 0) return this.replyDone(out, handle);
        const id = this.track({ handle, request: 'trim', offsetBytes, lengthBytes, costBytes: 0, reqOne: false });
        out.push({ kind: 'submit', id, request: { kind: 'trim', offsetBytes, lengthBytes, fua } });
        return;
      }
      case Command.writeZeroes: {
        if (lengthBytes === 0) return this.replyDone(out, handle);
        const noHole = (flags & CommandFlag.noHole) !== 0;
        const id = this.track({ handle, request: 'writeZeroes', offsetBytes, lengthBytes, costBytes: 0, reqOne: false });
        out.push({ kind: 'submit', id, request: { kind: 'writeZeroes', offsetBytes, lengthBytes, fua, noHole } });
        return;
      }
      case Command.blockStatus: {
        const reqOne = (flags & CommandFlag.reqOne) !== 0;
        if (!this.exportInfo.capabilities.canBlockStatus) {
          // Status 0 ("allocated, contents unknown") is always a truthful answer.
          return this.replyBlockStatus(out, { handle, reqOne, offsetBytes, lengthBytes }, [
            { offsetBytes, lengthBytes, allocated: true },
          ]);
        }
        const id = this.track({ handle, request: 'blockStatus', offsetBytes, lengthBytes, costBytes: 0, reqOne });
        out.push({ kind: 'submit', id, request: { kind: 'blockStatus', offsetBytes, lengthBytes } });
        return;
      }
      default:
        assert(false, `validate() let command ${type} through`);
    }
  }

  private validate(r: { type: number; flags: number; offsetBytes: number; lengthBytes: number }): Validation {
    const name = commandNames[r.type] ?? `command ${r.type}`;
    const fail = invalid;
    let allowedFlags = this.has(TransmissionFlag.sendFua) ? CommandFlag.fua : 0;
    let writes = false;
    switch (r.type) {
      case Command.read:
        if (this.has(TransmissionFlag.sendDf)) allowedFlags |= CommandFlag.df;
        break;
      case Command.write:
        writes = true;
        break;
      case Command.flush:
        if (!this.has(TransmissionFlag.sendFlush)) return fail(NbdErrno.einval, 'FLUSH was not offered');
        if (r.offsetBytes !== 0 || r.lengthBytes !== 0) return fail(NbdErrno.einval, 'FLUSH needs offset and length 0');
        break;
      case Command.trim:
        if (!this.has(TransmissionFlag.sendTrim)) return fail(NbdErrno.einval, 'TRIM was not offered');
        writes = true;
        break;
      case Command.writeZeroes:
        allowedFlags |= CommandFlag.noHole;
        writes = true;
        break;
      case Command.blockStatus:
        if (!this.baseAllocationSelected) return fail(NbdErrno.einval, 'BLOCK_STATUS needs base:allocation selected');
        allowedFlags |= CommandFlag.reqOne;
        break;
      default:
        return fail(NbdErrno.einval, `${name} is not supported`);
    }
    const badFlags = r.flags & ~allowedFlags;
    if (badFlags !== 0) return fail(NbdErrno.einval, `${name} with unsupported flags 0x${badFlags.toString(16)}`);
    if (writes && this.exportInfo.readOnly) return fail(NbdErrno.eperm, `${name} on a read-only export`);
    if ((r.type === Command.read || r.type === Command.write) && r.lengthBytes > this.limits.requestSizeMaxBytes) {
      return fail(NbdErrno.einval, `${name} of ${r.lengthBytes} bytes is over the ${this.limits.requestSizeMaxBytes}-byte maximum`);
    }
    if (r.type === Command.blockStatus && r.lengthBytes === 0) return fail(NbdErrno.einval, 'BLOCK_STATUS of 0 bytes');
    const size = this.exportInfo.sizeBytes;
    if (r.offsetBytes > size || r.lengthBytes > size - r.offsetBytes) {
      // The protocol asks for ENOSPC on writes past the end and EINVAL otherwise.
      return fail(
        writes ? NbdErrno.enospc : NbdErrno.einval,
        `${name} of ${r.lengthBytes} bytes at ${r.offsetBytes} is past the end of the ${size}-byte export`,
      );
    }
    return valid;
  }

  private track(p: Pending): number {
    const id = this.nextId++;
    this.pending.set(id, p);
    this.inflightBytes += p.costBytes;
    return id;
  }

  private complete(id: number, result: NbdBlockResult, out: NbdSessionOutput[]): void {
    const p = this.pending.get(id);
    assert(p !== undefined, `completion for unknown request ${id}`);
    this.pending.delete(id);
    this.inflightBytes -= p.costBytes;
    switch (result.kind) {
      case 'error':
        return this.replyError(out, p.handle, nbdErrnoForCode(result.code), result.message);
      case 'data':
        assert(p.request === 'read', `data completion for a ${p.request}`);
        assert(result.data.length === p.lengthBytes, `read of ${p.lengthBytes} bytes returned ${result.data.length}`);
        if (this.structured) {
          out.push({ kind: 'send', bytes: encodeOffsetDataHeader(p.handle, p.offsetBytes, p.lengthBytes) });
        } else {
          out.push({ kind: 'send', bytes: encodeSimpleReply(p.handle, 0) });
        }
        out.push({ kind: 'send', bytes: result.data });
        return;
      case 'extents':
        assert(p.request === 'blockStatus', `extents completion for a ${p.request}`);
        return this.replyBlockStatus(out, p, result.extents);
      case 'done':
        assert(p.request !== 'read' && p.request !== 'blockStatus', `bare completion for a ${p.request}`);
        return this.replyDone(out, p.handle);
      default:
        unreachable(result, 'block result');
    }
  }

  private replyDone(out: NbdSessionOutput[], handle: NbdHandle): void {
    // Simple replies are allowed for every command but READ even with structured replies on.
    out.push({ kind: 'send', bytes: encodeSimpleReply(handle, 0) });
  }

  private replyEmptyRead(out: NbdSessionOutput[], handle: NbdHandle): void {
    if (!this.structured) return this.replyDone(out, handle);
    // A content chunk must describe at least one byte, so an empty read is a bare NONE chunk.
    out.push({ kind: 'send', bytes: encodeStructuredDone(handle) });
  }

  private replyError(out: NbdSessionOutput[], handle: NbdHandle, errno: number, message: string): void {
    const bytes = this.structured ? encodeStructuredError(handle, errno, message) : encodeSimpleReply(handle, errno);
    out.push({ kind: 'send', bytes });
  }

  private replyBlockStatus(
    out: NbdSessionOutput[],
    p: { handle: NbdHandle; reqOne: boolean; offsetBytes: number; lengthBytes: number },
    extents: readonly BlockExtent[],
  ): void {
    const descriptors: StatusDescriptor[] = [];
    const end = p.offsetBytes + p.lengthBytes;
    let at = p.offsetBytes;
    const max = p.reqOne ? 1 : this.limits.blockStatusDescriptorsMax;
    for (const e of extents) {
      assert(e.offsetBytes === at && e.lengthBytes > 0, `extent at ${e.offsetBytes} does not continue from ${at}`);
      const length = Math.min(e.lengthBytes, end - at);
      const flags = e.allocated ? 0 : AllocationState.hole | AllocationState.zero;
      const last = descriptors[descriptors.length - 1];
      if (last !== undefined && last.flags === flags) {
        descriptors[descriptors.length - 1] = { lengthBytes: last.lengthBytes + length, flags };
      } else if (descriptors.length < max) {
        descriptors.push({ lengthBytes: length, flags });
      } else {
        break; // fewer descriptors than the range needs: the protocol allows a short answer
      }
      at += length;
      if (at >= end) break;
    }
    assert(descriptors.length > 0, `block status of ${p.lengthBytes} bytes at ${p.offsetBytes} returned no extents`);
    out.push({ kind: 'send', bytes: encodeBlockStatus(p.handle, baseAllocationContextId, descriptors) });
  }
}

function readU32(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(at);
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}
