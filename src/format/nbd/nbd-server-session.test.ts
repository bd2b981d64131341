import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BlockExtent } from '../../lib/block-device.ts';
import { SeededRandom } from '../../lib/random.ts';
import {
  AllocationState,
  ClientFlag,
  Command,
  CommandFlag,
  Info,
  NbdErrno,
  Option,
  OptionReply,
  ReplyFlag,
  ReplyType,
  TransmissionFlag,
} from './nbd-constants.ts';
import {
  type NbdBlockRequest,
  type NbdBlockResult,
  type NbdExport,
  type NbdSessionLimits,
  type NbdSessionOutput,
  NbdServerSession,
  defaultNbdSessionLimits,
} from './nbd-server-session.ts';
import {
  type ServerMessage,
  ServerStreamReader,
  clientFlags,
  concat,
  infoPayload,
  metaContextPayload,
  option,
  request,
  u16At,
  u32At,
  u64At,
} from './testing/nbd-test-client.ts';

const sizeBytes = 1 << 20;
const fullCaps = { canTrim: true, canZeroFast: true, canFua: true, canFlush: true, canMultiConn: true, canBlockStatus: true };
const exportInfo: NbdExport = { name: 'vol', description: 'test volume', sizeBytes, readOnly: false, capabilities: fullCaps };

/** Runs a session against a flat in-memory model; completions are immediate unless `defer` is set. */
class Harness {
  readonly session: NbdServerSession;
  readonly model = new Uint8Array(sizeBytes);
  readonly reader = new ServerStreamReader();
  readonly sentChunks: Uint8Array[] = [];
  readonly submitted: { id: number; request: NbdBlockRequest }[] = [];
  closed: { reason: string; clean: boolean } | undefined;
  defer = false;

  /** The close seen so far (a method, so that assertions do not narrow it for later reads). */
  closure(): { reason: string; clean: boolean } | undefined {
    return this.closed;
  }

  constructor(exp: NbdExport = exportInfo, limits: NbdSessionLimits = defaultNbdSessionLimits) {
    this.session = new NbdServerSession(exp, limits);
    this.apply(this.session.start());
    assert.equal(this.reader.raw(18)?.length, 18);
  }

  feed(bytes: Uint8Array): void {
    this.apply(this.session.step({ kind: 'received', bytes }));
  }

  feedByteByByte(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) this.feed(bytes.subarray(i, i + 1));
  }

  complete(id: number, result: NbdBlockResult): void {
    this.apply(this.session.step({ kind: 'completed', id, result }));
  }

  completeFromModel(id: number, r: NbdBlockRequest): void {
    this.complete(id, runOnModel(this.model, r));
  }

  apply(outputs: NbdSessionOutput[]): void {
    const queue = [...outputs];
    for (let o = queue.shift(); o !== undefined; o = queue.shift()) {
      assert.equal(this.closed, undefined, `output ${o.kind} after close`);
      switch (o.kind) {
        case 'send':
          this.sentChunks.push(o.bytes.slice());
          this.reader.push(o.bytes);
          break;
        case 'submit':
          this.submitted.push(o);
          if (!this.defer) queue.push(...this.session.step({ kind: 'completed', id: o.id, result: runOnModel(this.model, o.request) }));
          break;
        case 'close':
          this.closed = { reason: o.reason, clean: o.clean };
          break;
      }
    }
  }

  sent(): Uint8Array {
    return concat(...this.sentChunks);
  }

  optionReplies(): { option: number; type: number; payload: Uint8Array }[] {
    const out = [];
    while (this.reader.atOptionReply()) {
      const m = this.reader.nextOptionReply();
      if (m?.kind !== 'optionReply') break;
      out.push(m);
    }
    return out;
  }

  replies(): (Exclude<ServerMessage, { kind: 'optionReply' }> | undefined)[] {
    const out = [];
    for (let m = this.reader.nextReply(); m !== undefined; m = this.reader.nextReply()) {
      assert.notEqual(m.kind, 'optionReply');
      if (m.kind !== 'optionReply') out.push(m);
    }
    return out;
  }
}

function runOnModel(model: Uint8Array, r: NbdBlockRequest): NbdBlockResult {
  switch (r.kind) {
    case 'read':
      return { kind: 'data', data: model.slice(r.offsetBytes, r.offsetBytes + r.lengthBytes) };
    case 'write':
      model.set(r.data, r.offsetBytes);
      return { kind: 'done' };
    case 'writeZeroes':
    case 'trim':
      model.fill(0, r.offsetBytes, r.offsetBytes + r.lengthBytes);
      return { kind: 'done' };
    case 'flush':
      return { kind: 'done' };
    case 'blockStatus': {
      // 4 KiB granules: all-zero granules are holes.
      const extents: BlockExtent[] = [];
      const end = r.offsetBytes + r.lengthBytes;
      for (let at = r.offsetBytes; at < end; ) {
        const next = Math.min((Math.floor(at / 4096) + 1) * 4096, end);
        extents.push({ offsetBytes: at, lengthBytes: next - at, allocated: model.subarray(at, next).some((b) => b !== 0) });
        at = next;
      }
      return { kind: 'extents', extents };
    }
  }
}

const handshakeGo = (structured: boolean, meta: boolean, name = ''): Uint8Array =>
  concat(
    clientFlags(ClientFlag.fixedNewstyle | ClientFlag.noZeroes),
    structured ? option(Option.structuredReply) : new Uint8Array(0),
    meta ? option(Option.setMetaContext, metaContextPayload(name, ['base:allocation'])) : new Uint8Array(0),
    option(Option.go, infoPayload(name, [Info.blockSize])),
  );

/** A handshake, then one of each command, then DISC: the script every split must agree on. */
function scriptBytes(): Uint8Array {
  const data = new SeededRandom(3).fill(new Uint8Array(1000));
  return concat(
    handshakeGo(true, true),
    request({ type: Command.write, handle: 1n, offset: 4096 + 7, data }),
    request({ type: Command.read, handle: 2n, offset: 4096, length: 2000 }),
    request({ type: Command.flush, handle: 3n }),
    request({ type: Command.writeZeroes, flags: CommandFlag.noHole | CommandFlag.fua, handle: 4n, offset: 4096 + 500, length: 100 }),
    request({ type: Command.trim, handle: 5n, offset: 0, length: 4096 }),
    request({ type: Command.blockStatus, handle: 6n, offset: 0, length: 3 * 4096 }),
    request({ type: Command.read, flags: CommandFlag.df, handle: 7n, offset: 4096 + 500, length: 10 }),
    request({ type: Command.disc, handle: 8n }),
  );
}

test('the greeting is NBDMAGIC, IHAVEOPT and FIXED_NEWSTYLE|NO_ZEROES', () => {
  const out = new NbdServerSession(exportInfo).start();
  assert.equal(out.length, 1);
  const first = out[0];
  assert.ok(first?.kind === 'send');
  assert.equal(new TextDecoder().decode(first.bytes.subarray(0, 16)), 'NBDMAGICIHAVEOPT');
  assert.equal(u16At(first.bytes, 16), 3);
});

/** Feeds `script` whole, byte by byte and split at every position: the output must not change. */
function assertSplitInvariant(script: Uint8Array): Harness {
  const whole = new Harness();
  whole.feed(script);
  const expected = whole.sent();
  const byteByByte = new Harness();
  byteByByte.feedByteByByte(script);
  assert.deepEqual(byteByByte.sent(), expected, 'fed one byte at a time');
  assert.deepEqual(byteByByte.closure(), whole.closure());
  for (let cut = 0; cut <= script.length; cut++) {
    const h = new Harness();
    h.feed(script.subarray(0, cut));
    h.feed(script.subarray(cut));
    assert.deepEqual(h.sent(), expected, `split at ${cut}`);
    assert.deepEqual(h.closure(), whole.closure(), `split at ${cut}`);
  }
  return whole;
}

test('every option gives the same bytes however its input is split', () => {
  const script = concat(
    clientFlags(ClientFlag.fixedNewstyle),
    option(Option.list),
    option(Option.info, infoPayload('vol', [Info.name, Info.description, Info.blockSize])),
    option(Option.go, infoPayload('nope', [])),
    option(Option.startTls),
    option(99, new Uint8Array(3)),
    option(Option.listMetaContext, metaContextPayload('', [])),
    option(Option.structuredReply),
    option(Option.listMetaContext, metaContextPayload('', ['base:'])),
    option(Option.setMetaContext, metaContextPayload('vol', ['base:allocation'])),
    option(Option.exportName, new TextEncoder().encode('vol')),
    request({ type: Command.read, handle: 1n, offset: 512, length: 512 }),
    request({ type: Command.disc, handle: 2n }),
  );
  const whole = assertSplitInvariant(script);
  assert.deepEqual(whole.closure(), { reason: 'client disconnected (DISC)', clean: true });
  assert.equal(whole.optionReplies().length, 16);
  assert.equal(whole.reader.raw(134)?.length, 134, 'EXPORT_NAME reply with zero padding');
  assert.equal(whole.replies().length, 1);
});

test('a whole session gives the same bytes however its input is split', () => {
  const whole = assertSplitInvariant(scriptBytes());
  assert.deepEqual(whole.closure(), { reason: 'client disconnected (DISC)', clean: true });

  // And the bytes say what they should.
  const opts = whole.optionReplies();
  assert.deepEqual(
    opts.map((o) => [o.option, o.type]),
    [
      [Option.structuredReply, OptionReply.ack],
      [Option.setMetaContext, OptionReply.metaContext],
      [Option.setMetaContext, OptionReply.ack],
      [Option.go, OptionReply.info],
      [Option.go, OptionReply.info],
      [Option.go, OptionReply.ack],
    ],
  );
  const exportInfoReply = opts[3]!.payload;
  assert.equal(u16At(exportInfoReply, 0), Info.export);
  assert.equal(u64At(exportInfoReply, 2), sizeBytes);
  const flags = u16At(exportInfoReply, 10);
  for (const f of [
    TransmissionFlag.hasFlags,
    TransmissionFlag.sendFlush,
    TransmissionFlag.sendFua,
    TransmissionFlag.sendTrim,
    TransmissionFlag.sendWriteZeroes,
    TransmissionFlag.sendDf,
    TransmissionFlag.canMultiConn,
  ]) {
    assert.ok((flags & f) !== 0, `flag ${f} set`);
  }
  assert.equal(flags & TransmissionFlag.readOnly, 0);
  const blockSize = opts[4]!.payload;
  assert.deepEqual([u16At(blockSize, 0), u32At(blockSize, 2), u32At(blockSize, 6), u32At(blockSize, 10)], [Info.blockSize, 512, 4096, 32 * 1024 * 1024]);

  const replies = whole.replies();
  assert.equal(whole.reader.pending, 0);
  const byHandle = new Map(replies.map((r) => [r!.handle, r!]));
  assert.equal(replies.length, 7);
  const read = byHandle.get(2n)!;
  assert.ok(read.kind === 'chunk' && read.type === ReplyType.offsetData && read.flags === ReplyFlag.done);
  assert.equal(u64At(read.payload, 0), 4096);
  const expectedRead = new Uint8Array(2000);
  expectedRead.set(new SeededRandom(3).fill(new Uint8Array(1000)), 7);
  assert.deepEqual(read.payload.subarray(8), expectedRead);
  const status = byHandle.get(6n)!;
  assert.ok(status.kind === 'chunk' && status.type === ReplyType.blockStatus);
  // After the trim of [0, 4096): hole, data (the write), hole.
  assert.equal(u32At(status.payload, 0), 1);
  const descriptors = [];
  for (let at = 4; at < status.payload.length; at += 8) descriptors.push([u32At(status.payload, at), u32At(status.payload, at + 4)]);
  const hole = AllocationState.hole | AllocationState.zero;
  assert.deepEqual(descriptors, [
    [4096, hole],
    [4096, 0],
    [4096, hole],
  ]);
  const small = byHandle.get(7n)!;
  assert.ok(small.kind === 'chunk');
  assert.deepEqual(small.payload.subarray(8), new Uint8Array(10), 'the zeroed range reads as zeros');
  for (const h of [1n, 3n, 4n, 5n]) assert.deepEqual(byHandle.get(h), { kind: 'simple', error: 0, handle: h, data: new Uint8Array(0) });
});

test('simple replies carry read data when structured replies were not negotiated', () => {
  const h = new Harness();
  h.feed(handshakeGo(false, false));
  const opts = h.optionReplies();
  assert.equal(u16At(opts[0]!.payload, 10) & TransmissionFlag.sendDf, 0, 'no DF without structured replies');
  h.model.set([1, 2, 3], 100);
  h.reader.expectRead(9n, 4);
  h.feed(request({ type: Command.read, handle: 9n, offset: 99, length: 4 }));
  assert.deepEqual(h.replies(), [{ kind: 'simple', error: 0, handle: 9n, data: new Uint8Array([0, 1, 2, 3]) }]);
  // BLOCK_STATUS needs a negotiated context; DF needs structured replies.
  h.feed(request({ type: Command.blockStatus, handle: 10n, offset: 0, length: 4096 }));
  h.feed(request({ type: Command.read, flags: CommandFlag.df, handle: 11n, offset: 0, length: 1 }));
  assert.deepEqual(
    h.replies().map((r) => r?.kind === 'simple' && r.error),
    [NbdErrno.einval, NbdErrno.einval],
  );
});

test('NBD_OPT_EXPORT_NAME answers with size and flags, with or without the zero padding', () => {
  for (const noZeroes of [true, false]) {
    const h = new Harness();
    h.feed(concat(clientFlags(ClientFlag.fixedNewstyle | (noZeroes ? ClientFlag.noZeroes : 0)), option(Option.exportName, new TextEncoder().encode('vol'))));
    const reply = h.reader.raw(noZeroes ? 10 : 134)!;
    assert.equal(h.reader.pending, 0);
    assert.equal(u64At(reply, 0), sizeBytes);
    assert.ok((u16At(reply, 8) & TransmissionFlag.hasFlags) !== 0);
    assert.ok(h.session.transmitting);
  }
  const unknown = new Harness();
  unknown.feed(concat(clientFlags(1), option(Option.exportName, new TextEncoder().encode('other'))));
  assert.equal(unknown.closed?.clean, false, 'an unknown export name drops the connection');
});

test('NBD_OPT_LIST, INFO, ABORT and unknown options', () => {
  const h = new Harness();
  h.feed(
    concat(
      clientFlags(1),
      option(Option.list),
      option(Option.list, new Uint8Array(1)),
      option(Option.info, infoPayload('vol', [Info.name, Info.description, Info.blockSize, 999])),
      option(Option.info, infoPayload('nope', [])),
      option(Option.info, new Uint8Array([0, 0, 0, 9, 1])),
      option(Option.startTls),
      option(Option.extendedHeaders),
      option(77, new Uint8Array(5)),
      option(Option.structuredReply, new Uint8Array(1)),
    ),
  );
  const replies = h.optionReplies();
  const dec = new TextDecoder();
  assert.deepEqual(
    replies.map((r) => [r.option, r.type]),
    [
      [Option.list, OptionReply.server],
      [Option.list, OptionReply.ack],
      [Option.list, OptionReply.errInvalid],
      [Option.info, OptionReply.info],
      [Option.info, OptionReply.info],
      [Option.info, OptionReply.info],
      [Option.info, OptionReply.info],
      [Option.info, OptionReply.ack],
      [Option.info, OptionReply.errUnknown],
      [Option.info, OptionReply.errInvalid],
      [Option.startTls, OptionReply.errUnsup],
      [Option.extendedHeaders, OptionReply.errUnsup],
      [77, OptionReply.errUnsup],
      [Option.structuredReply, OptionReply.errInvalid],
    ],
  );
  assert.equal(dec.decode(replies[0]!.payload.subarray(4, 4 + u32At(replies[0]!.payload, 0))), 'vol');
  assert.equal(dec.decode(replies[5]!.payload.subarray(2)), 'vol');
  assert.equal(dec.decode(replies[6]!.payload.subarray(2)), 'test volume');
  assert.ok(!h.session.transmitting, 'INFO does not end the handshake');
  h.feed(option(Option.abort));
  assert.deepEqual(h.optionReplies().map((r) => r.type), [OptionReply.ack]);
  assert.deepEqual(h.closed, { reason: 'client aborted the handshake', clean: true });
});

test('meta contexts: listing, selecting, and refusing before structured replies', () => {
  const h = new Harness();
  h.feed(concat(clientFlags(1), option(Option.listMetaContext, metaContextPayload('', []))));
  assert.deepEqual(h.optionReplies().map((r) => r.type), [OptionReply.errInvalid]);
  h.feed(
    concat(
      option(Option.structuredReply),
      option(Option.listMetaContext, metaContextPayload('', [])),
      option(Option.listMetaContext, metaContextPayload('vol', ['base:'])),
      option(Option.listMetaContext, metaContextPayload('', ['qemu:dirty-bitmap:x'])),
      option(Option.setMetaContext, metaContextPayload('', ['nope:x', 'base:allocation'])),
      option(Option.setMetaContext, metaContextPayload('', ['base:allocation']).subarray(0, 12)),
      option(Option.setMetaContext, metaContextPayload('missing', ['base:allocation'])),
      option(Option.listMetaContext, concat(new Uint8Array([0, 0, 0, 0]), new Uint8Array([0xff, 0xff, 0xff, 0xff]))),
    ),
  );
  const r = h.optionReplies();
  assert.deepEqual(
    r.map((x) => [x.option, x.type]),
    [
      [Option.structuredReply, OptionReply.ack],
      [Option.listMetaContext, OptionReply.metaContext],
      [Option.listMetaContext, OptionReply.ack],
      [Option.listMetaContext, OptionReply.metaContext],
      [Option.listMetaContext, OptionReply.ack],
      [Option.listMetaContext, OptionReply.ack],
      [Option.setMetaContext, OptionReply.metaContext],
      [Option.setMetaContext, OptionReply.ack],
      [Option.setMetaContext, OptionReply.errInvalid],
      [Option.setMetaContext, OptionReply.errUnknown],
      [Option.listMetaContext, OptionReply.errInvalid],
    ],
  );
  assert.equal(u32At(r[1]!.payload, 0), 0, 'listed contexts carry id 0');
  assert.equal(new TextDecoder().decode(r[1]!.payload.subarray(4)), 'base:allocation');
  assert.equal(u32At(r[6]!.payload, 0), 1, 'the selected context has a non-zero id');
});

test('an oversized option is skipped and refused, an oversized EXPORT_NAME drops the connection', () => {
  const limits = { ...defaultNbdSessionLimits, optionSizeMaxBytes: 100 };
  const h = new Harness(exportInfo, limits);
  h.feed(concat(clientFlags(1), option(Option.info, new Uint8Array(101))));
  h.feed(option(Option.list));
  assert.deepEqual(h.optionReplies().map((r) => r.type), [OptionReply.errTooBig, OptionReply.server, OptionReply.ack]);
  // A 4 GiB option is skipped as it arrives, never buffered.
  h.feed(option(Option.info, new Uint8Array(0), 0xffffffff));
  h.feed(new Uint8Array(1 << 20));
  assert.equal(h.closed, undefined);
  const e = new Harness(exportInfo, limits);
  e.feed(concat(clientFlags(1), option(Option.exportName, new Uint8Array(0), 101)));
  assert.equal(e.closed?.clean, false);
});

test('hostile handshakes end the connection without a crash', () => {
  const cases: [string, Uint8Array][] = [
    ['unknown client flags', clientFlags(0x80)],
    ['bad option magic', concat(clientFlags(1), new TextEncoder().encode('IHAVEOPX'), new Uint8Array(8))],
    ['a request before the handshake ends', concat(clientFlags(1), request({ type: Command.read, handle: 1n, length: 512 }))],
    ['invalid UTF-8 export name', concat(clientFlags(1), option(Option.exportName, new Uint8Array([0xff, 0xfe])))],
  ];
  for (const [what, bytes] of cases) {
    const h = new Harness();
    h.feed(bytes);
    assert.equal(h.closed?.clean, false, what);
    assert.equal(h.submitted.length, 0, what);
    h.feed(new Uint8Array(100)); // input after close is ignored
  }
  // A short frame and then the end of input: a clean close.
  const short = new Harness();
  short.feed(concat(clientFlags(1), option(Option.list).subarray(0, 10)));
  short.apply(short.session.step({ kind: 'peerEnded' }));
  assert.deepEqual(short.closed, { reason: 'client closed during the handshake', clean: true });
});

test('hostile requests get error replies and the session keeps serving', () => {
  for (const structured of [false, true]) {
    const h = new Harness();
    h.feed(handshakeGo(structured, structured));
    h.optionReplies();
    const errno = (): (number | undefined)[] =>
      h.replies().map((r) => (r?.kind === 'simple' ? r.error : r?.kind === 'chunk' && r.type === ReplyType.error ? u32At(r.payload, 0) : -1));
    const max = 32 * 1024 * 1024;
    const cases: [string, Uint8Array, number][] = [
      ['read past the end', request({ type: Command.read, handle: 1n, offset: sizeBytes - 1, length: 2 }), NbdErrno.einval],
      ['read at 2^64-1', request({ type: Command.read, handle: 2n, offset: (1n << 64n) - 1n, length: 1 }), NbdErrno.einval],
      ['read over the maximum', request({ type: Command.read, handle: 3n, offset: 0, length: max + 1 }), NbdErrno.einval],
      ['write past the end', request({ type: Command.write, handle: 4n, offset: sizeBytes, data: new Uint8Array(3) }), NbdErrno.enospc],
      ['trim past the end', request({ type: Command.trim, handle: 5n, offset: sizeBytes - 4096, length: 8192 }), NbdErrno.enospc],
      ['unknown command', request({ type: 42, handle: 6n }), NbdErrno.einval],
      ['CACHE is not offered', request({ type: Command.cache, handle: 7n, length: 4096 }), NbdErrno.einval],
      ['unknown flag', request({ type: Command.read, flags: 1 << 9, handle: 8n, length: 1 }), NbdErrno.einval],
      ['NO_HOLE on a write', request({ type: Command.write, flags: CommandFlag.noHole, handle: 9n, data: new Uint8Array(1) }), NbdErrno.einval],
      ['FLUSH with a length', request({ type: Command.flush, handle: 10n, length: 1 }), NbdErrno.einval],
      ['FAST_ZERO not offered', request({ type: Command.writeZeroes, flags: CommandFlag.fastZero, handle: 11n, length: 1 }), NbdErrno.einval],
    ];
    for (const [what, bytes, expected] of cases) {
      h.feed(bytes);
      assert.deepEqual(errno(), [expected], `${what} (structured ${structured})`);
    }
    // A write over the maximum: its payload is dropped as it arrives, then EINVAL, then business as usual.
    h.feed(request({ type: Command.write, handle: 20n, offset: 0, length: max + 1 }));
    for (let sent = 0; sent < max + 1; sent += 1 << 20) h.feed(new Uint8Array(Math.min(1 << 20, max + 1 - sent)).fill(0xee));
    assert.deepEqual(errno(), [NbdErrno.einval]);
    h.feed(request({ type: Command.write, handle: 21n, offset: 10, data: new Uint8Array([5]) }));
    assert.deepEqual(errno(), [0]);
    assert.equal(h.model[10], 5);
    assert.ok(h.model.every((b, i) => i === 10 || b === 0), 'no rejected write touched the device');
    assert.equal(h.closure(), undefined);
    // Bad request magic cannot be resynchronised: disconnect.
    h.feed(request({ type: Command.read, handle: 22n, length: 1, magic: 0x12345678 }));
    assert.equal(h.closure()?.clean, false);
  }
});

test('a read-only export refuses writes with EPERM and says so in its flags', () => {
  const h = new Harness({ ...exportInfo, readOnly: true });
  h.feed(handshakeGo(false, false));
  assert.ok((u16At(h.optionReplies()[0]!.payload, 10) & TransmissionFlag.readOnly) !== 0);
  h.feed(request({ type: Command.write, handle: 1n, data: new Uint8Array(8) }));
  h.feed(request({ type: Command.writeZeroes, handle: 2n, length: 8 }));
  h.feed(request({ type: Command.trim, handle: 3n, length: 8 }));
  assert.deepEqual(h.replies().map((r) => r?.kind === 'simple' && r.error), [NbdErrno.eperm, NbdErrno.eperm, NbdErrno.eperm]);
});

test('device errors become NBD errnos, with a message in structured replies', () => {
  const h = new Harness();
  h.defer = true;
  h.feed(handshakeGo(true, true));
  h.optionReplies();
  h.feed(concat(...[1n, 2n, 3n, 4n].map((handle) => request({ type: Command.write, handle, data: new Uint8Array(1) }))));
  const codes = ['no_space', 'io', 'something_new', 'not_supported'];
  h.submitted.forEach((s, i) => h.complete(s.id, { kind: 'error', code: codes[i]!, message: `failed ${i}` }));
  const replies = h.replies();
  assert.deepEqual(
    replies.map((r) => (r?.kind === 'chunk' ? u32At(r.payload, 0) : -1)),
    [NbdErrno.enospc, NbdErrno.eio, NbdErrno.eio, NbdErrno.enotsup],
  );
  const first = replies[0]!;
  assert.ok(first.kind === 'chunk' && first.type === ReplyType.error && first.flags === ReplyFlag.done);
  assert.equal(new TextDecoder().decode(first.payload.subarray(6, 6 + u16At(first.payload, 4))), 'failed 0');
});

test('pipelined requests complete out of order, bounded by the in-flight limit', () => {
  const limits = { ...defaultNbdSessionLimits, inflightMax: 8 };
  const h = new Harness(exportInfo, limits);
  h.defer = true;
  h.feed(handshakeGo(true, false));
  h.optionReplies();
  for (let i = 0; i < 20; i++) h.model[i * 100] = i + 1;
  h.feed(concat(...Array.from({ length: 20 }, (_, i) => request({ type: Command.read, handle: BigInt(1000 + i), offset: i * 100, length: 1 }))));
  assert.equal(h.submitted.length, 8, 'only inflightMax requests start');
  assert.equal(h.session.wantsInput(), false, 'the driver must stop reading');
  // Complete in reverse order, one at a time: each completion admits one more request.
  const answered = new Map<bigint, number>();
  let done = 0;
  while (done < 20) {
    const pendingNow = h.submitted.slice(done);
    const last = pendingNow[pendingNow.length - 1]!;
    h.submitted.splice(h.submitted.indexOf(last), 1);
    h.submitted.splice(done, 0, last);
    h.completeFromModel(last.id, last.request);
    done++;
    for (const r of h.replies()) {
      assert.ok(r?.kind === 'chunk');
      answered.set(r.handle, r.payload[8]!);
    }
    assert.ok(h.session.inflightCount <= 8);
  }
  assert.equal(answered.size, 20);
  for (let i = 0; i < 20; i++) assert.equal(answered.get(BigInt(1000 + i)), i + 1, `handle ${1000 + i}`);
  assert.equal(h.session.wantsInput(), true);
});

test('the in-flight byte budget holds back large requests but always admits one', () => {
  const limits = { ...defaultNbdSessionLimits, inflightBytesMax: 10_000 };
  const h = new Harness(exportInfo, limits);
  h.defer = true;
  h.feed(handshakeGo(false, false));
  h.optionReplies();
  const readsOf = (length: number, first: bigint): Uint8Array =>
    concat(...[0n, 1n, 2n].map((i) => request({ type: Command.read, handle: first + i, length })));
  // 12000 bytes each: over budget alone, yet admitted one at a time.
  h.feed(readsOf(12_000, 1n));
  assert.equal(h.submitted.length, 1);
  h.completeFromModel(h.submitted[0]!.id, h.submitted[0]!.request);
  assert.equal(h.submitted.length, 2);
  h.completeFromModel(h.submitted[1]!.id, h.submitted[1]!.request);
  assert.equal(h.submitted.length, 3);
  h.completeFromModel(h.submitted[2]!.id, h.submitted[2]!.request);
  // 6000 bytes each: two fit under the budget, the third waits for one to finish.
  h.feed(readsOf(6000, 10n));
  assert.equal(h.submitted.length, 5);
  assert.equal(h.session.wantsInput(), false);
  h.completeFromModel(h.submitted[3]!.id, h.submitted[3]!.request);
  assert.equal(h.submitted.length, 6);
});

test('DISC and end of input close only after in-flight requests are answered', () => {
  for (const ending of ['disc', 'peerEnded'] as const) {
    const h = new Harness();
    h.defer = true;
    h.feed(handshakeGo(false, false));
    h.optionReplies();
    h.feed(request({ type: Command.write, handle: 1n, data: new Uint8Array(4) }));
    h.feed(request({ type: Command.flush, handle: 2n }).subarray(0, ending === 'disc' ? 28 : 10));
    if (ending === 'disc') h.feed(request({ type: Command.disc, handle: 3n }));
    else h.apply(h.session.step({ kind: 'peerEnded' }));
    assert.equal(h.closure(), undefined, `${ending}: still answering`);
    assert.equal(h.session.wantsInput(), false);
    for (const s of [...h.submitted]) h.completeFromModel(s.id, s.request);
    assert.equal(h.replies().length, ending === 'disc' ? 2 : 1);
    assert.equal(h.closure()?.clean, true, ending);
    // A completion racing with the close is ignored.
    h.apply(h.session.step({ kind: 'completed', id: 999, result: { kind: 'done' } }));
  }
});

test('block status honours REQ_ONE, merges equal extents, and answers for devices without it', () => {
  const h = new Harness();
  h.feed(handshakeGo(true, true));
  h.optionReplies();
  h.model[5000] = 1;
  h.feed(request({ type: Command.blockStatus, flags: CommandFlag.reqOne, handle: 1n, offset: 0, length: 65536 }));
  h.feed(request({ type: Command.blockStatus, handle: 2n, offset: 8192, length: 65536 }));
  h.feed(request({ type: Command.blockStatus, handle: 3n, offset: sizeBytes - 512, length: 1024 }));
  h.feed(request({ type: Command.blockStatus, handle: 4n, offset: 0, length: 0 }));
  const r = h.replies();
  const descs = (i: number): number[][] => {
    const p = r[i]!.kind === 'chunk' ? r[i]!.payload : new Uint8Array(0);
    const out = [];
    for (let at = 4; at < p.length; at += 8) out.push([u32At(p, at), u32At(p, at + 4)]);
    return out;
  };
  assert.deepEqual(descs(0), [[4096, 3]]);
  assert.deepEqual(descs(1), [[65536, 3]], 'equal neighbours are merged');
  assert.ok(r[2]!.kind === 'chunk' && r[2]!.type === ReplyType.error && u32At(r[2]!.payload, 0) === NbdErrno.einval);
  assert.ok(r[3]!.kind === 'chunk' && r[3]!.type === ReplyType.error);

  const noStatus = new Harness({ ...exportInfo, capabilities: { ...fullCaps, canBlockStatus: false, canTrim: false, canMultiConn: false } });
  noStatus.feed(handshakeGo(true, true));
  const flags = u16At(noStatus.optionReplies()[3]!.payload, 10);
  assert.equal(flags & (TransmissionFlag.sendTrim | TransmissionFlag.canMultiConn), 0);
  noStatus.feed(request({ type: Command.blockStatus, handle: 1n, offset: 0, length: 4096 }));
  noStatus.feed(request({ type: Command.trim, handle: 2n, offset: 0, length: 4096 }));
  assert.equal(noStatus.submitted.length, 0);
  const nr = noStatus.replies();
  assert.ok(nr[0]!.kind === 'chunk' && nr[0]!.type === ReplyType.blockStatus && u32At(nr[0]!.payload, 8) === 0);
  assert.ok(nr[1]!.kind === 'chunk' && nr[1]!.type === ReplyType.error, 'TRIM was not offered');
});

test('zero-length reads and writes succeed without touching the device', () => {
  const h = new Harness();
  h.feed(handshakeGo(true, false));
  h.optionReplies();
  h.feed(request({ type: Command.read, handle: 1n, offset: sizeBytes, length: 0 }));
  h.feed(request({ type: Command.write, handle: 2n, offset: 0, length: 0 }));
  assert.equal(h.submitted.length, 0);
  const r = h.replies();
  assert.ok(r[0]!.kind === 'chunk' && r[0]!.type === ReplyType.none && r[0]!.flags === ReplyFlag.done);
  assert.deepEqual(r[1], { kind: 'simple', error: 0, handle: 2n, data: new Uint8Array(0) });
});

test('seeded random garbage never crashes the session (SEED=n replays)', () => {
  const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);
  const random = new SeededRandom(seed);
  try {
    for (let round = 0; round < 300; round++) {
      const h = new Harness();
      // Start from a valid prefix of the script (any phase), then mutate or append garbage.
      const script = scriptBytes().slice();
      const cut = random.int(script.length);
      const bytes = script.slice(0, cut + random.int(64));
      for (let i = 0; i < 1 + random.int(4); i++) bytes[random.int(bytes.length)] = random.int(256);
      const tail = random.fill(new Uint8Array(random.int(200)));
      let at = 0;
      const all = concat(bytes, tail);
      while (at < all.length && h.closed === undefined) {
        const n = 1 + random.int(50);
        h.feed(all.subarray(at, at + n));
        at += n;
      }
      h.apply(h.session.step({ kind: 'peerEnded' }));
      assert.ok(h.closed !== undefined || h.session.inflightCount === 0 || !h.session.wantsInput());
    }
  } catch (error) {
    throw new Error(`random garbage test failed; replay with SEED=${seed}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
});
