import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestSizeMaxBytes } from '../../lib/limits.ts';
import { ReplicaFrameDecoder } from './replica-frame-decoder.ts';
import { encodeReplicaFrame, type ReplicaFrameHeader, replicaFrameFlags } from './replica-frame.ts';
import { decodeReplicaRequest, encodeReplicaRequest, type RequestDecodeResult } from './replica-request.ts';
import { replicaOpCodes } from './replica-ops.ts';
import { sampleRequests } from './testing/sample-messages.ts';

function decodeOne(bytes: Uint8Array): RequestDecodeResult {
  const decoder = new ReplicaFrameDecoder();
  decoder.push(bytes);
  const result = decoder.next();
  if (result.kind === 'frame') return decodeReplicaRequest(result.frame);
  if (result.kind === 'invalid') {
    return { kind: 'invalid', requestId: result.header.requestId, opCode: result.header.opCode, code: result.code, message: result.message };
  }
  throw new Error(`expected a frame, got ${result.kind}`);
}

const header = (fields: Partial<ReplicaFrameHeader>): ReplicaFrameHeader => ({
  version: 1,
  opCode: replicaOpCodes.read,
  flags: 0,
  requestId: 42,
  epoch: 3,
  offsetBytes: 0,
  lengthBytes: 4096,
  status: 0,
  volumeName: 'vol-a',
  ...fields,
});

function expectInvalid(bytes: Uint8Array, code: string, pattern: RegExp): void {
  const result = decodeOne(bytes);
  assert.equal(result.kind, 'invalid');
  if (result.kind !== 'invalid') return;
  assert.equal(result.code, code, result.message);
  assert.match(result.message, pattern);
}

test('decodeReplicaRequest round-trips every op with its volume, epoch and request id', () => {
  for (const [i, request] of sampleRequests.entries()) {
    const envelope = { requestId: 0xfffffff0 + (i % 16), volumeName: 'pvc-0123.x_y', epoch: 2 ** 53 - 1, request };
    const result = decodeOne(encodeReplicaRequest(envelope));
    assert.equal(result.kind, 'request', JSON.stringify(result));
    if (result.kind === 'request') assert.deepEqual(result.envelope, envelope);
  }
});

test('decodeReplicaRequest answers an unknown op with bad_request and its request id', () => {
  const result = decodeOne(encodeReplicaFrame(header({ opCode: 99 }), new Uint8Array(0)));
  assert.deepEqual(result.kind === 'invalid' && [result.requestId, result.opCode, result.code], [42, 99, 'bad_request']);
});

test('decodeReplicaRequest refuses malformed headers', () => {
  expectInvalid(encodeReplicaFrame(header({ version: 2 }), new Uint8Array(0)), 'bad_request', /version 2/);
  expectInvalid(encodeReplicaFrame(header({ flags: replicaFrameFlags.reply }), new Uint8Array(0)), 'bad_request', /reply frame/);
  expectInvalid(encodeReplicaFrame(header({ flags: 0x80 }), new Uint8Array(0)), 'bad_request', /unknown flags/);
  expectInvalid(encodeReplicaFrame(header({ status: 3 }), new Uint8Array(0)), 'bad_request', /status/);
  expectInvalid(encodeReplicaFrame(header({ volumeName: '' }), new Uint8Array(0)), 'bad_request', /volume name/);
  expectInvalid(encodeReplicaFrame(header({ volumeName: '../etc' }), new Uint8Array(0)), 'bad_request', /volume name/);
});

test('decodeReplicaRequest refuses 64-bit fields beyond 2^53 and offsets past the largest volume', () => {
  const bytes = encodeReplicaFrame(header({}), new Uint8Array(0));
  const view = new DataView(bytes.buffer);
  view.setBigUint64(24, 2n ** 63n);
  expectInvalid(bytes, 'out_of_range', /offset/);
  view.setBigUint64(24, 0n);
  view.setBigUint64(16, 2n ** 60n);
  expectInvalid(bytes, 'bad_request', /epoch/);
  expectInvalid(encodeReplicaFrame(header({ offsetBytes: 2 ** 50 }), new Uint8Array(0)), 'out_of_range', /past the largest volume/);
});

test('decodeReplicaRequest refuses data lengths that are zero, oversized, or disagree with the payload', () => {
  expectInvalid(encodeReplicaFrame(header({ lengthBytes: 0 }), new Uint8Array(0)), 'bad_request', /length is 0/);
  expectInvalid(encodeReplicaFrame(header({ lengthBytes: requestSizeMaxBytes + 1 }), new Uint8Array(0)), 'bad_request', /exceeds the largest request/);
  const write = { opCode: replicaOpCodes.write };
  expectInvalid(encodeReplicaFrame(header({ ...write, lengthBytes: 4096 }), new Uint8Array(100)), 'bad_request', /carries 100 bytes/);
  expectInvalid(encodeReplicaFrame(header({ lengthBytes: 4096 }), new Uint8Array(5)), 'bad_request', /no payload/);
  expectInvalid(encodeReplicaFrame(header({ opCode: replicaOpCodes.flush, lengthBytes: 1 }), new Uint8Array(0)), 'bad_request', /takes no/);
});

test('decodeReplicaRequest refuses hostile control payloads', () => {
  const text = (s: string): Uint8Array => new TextEncoder().encode(s);
  const ctl = (op: keyof typeof replicaOpCodes, body: string): Uint8Array =>
    encodeReplicaFrame(header({ opCode: replicaOpCodes[op], lengthBytes: 0 }), text(body));
  expectInvalid(ctl('snapshot', '{"name":'), 'bad_request', /not JSON/);
  expectInvalid(ctl('snapshot', '[1]'), 'bad_request', /object/);
  expectInvalid(ctl('snapshot', '{"name":"../x","kind":"user"}'), 'bad_request', /not a name/);
  expectInvalid(ctl('snapshot', '{"name":"a","kind":"weird"}'), 'bad_request', /kind/);
  const manyLabels = JSON.stringify(Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])));
  expectInvalid(ctl('snapshot', `{"name":"a","kind":"user","labels":${manyLabels}}`), 'bad_request', /labels/);
  expectInvalid(ctl('set_membership', '{"generation":-1,"members":[]}'), 'bad_request', /generation/);
  expectInvalid(ctl('set_membership', `{"generation":1,"members":${JSON.stringify(Array(11).fill('m'))}}`), 'bad_request', /members/);
  expectInvalid(ctl('expand', '{"sizeBytes":1e300}'), 'bad_request', /sizeBytes/);
  expectInvalid(ctl('checksums', '{"snapshot":"s","offsetBytes":70368744177664,"lengthBytes":70368744177664}'), 'out_of_range', /past/);
  expectInvalid(ctl('revert', '{"name":"a"}'.padEnd(70_000, ' ')), 'bad_request', /exceeds/);
  const invalidUtf8 = encodeReplicaFrame(header({ opCode: replicaOpCodes.revert, lengthBytes: 0 }), Uint8Array.of(0xff, 0xfe));
  expectInvalid(invalidUtf8, 'bad_request', /UTF-8/);
});
