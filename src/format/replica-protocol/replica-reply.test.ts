import { test } from 'node:test';
import assert from 'node:assert/strict';
import { replicaErrorMessageMaxBytes } from '../../lib/limits.ts';
import { ReplicaFrameDecoder } from './replica-frame-decoder.ts';
import { boundedMessage, decodeReplicaReply, encodeReplicaReply, type ReplicaReplyEnvelope, type ReplyDecodeResult } from './replica-reply.ts';
import { replicaErrorCodes, type ReplicaErrorCode } from './replica-ops.ts';
import { sampleReplies } from './testing/sample-messages.ts';
import { encodeReplicaFrame, replicaFrameFlags } from './replica-frame.ts';

function roundTrip(envelope: ReplicaReplyEnvelope): ReplyDecodeResult {
  const bytes = encodeReplicaReply(envelope);
  // Split in the middle: replies go through the same incremental decoder as requests.
  const decoder = new ReplicaFrameDecoder();
  decoder.push(bytes.subarray(0, 50));
  assert.equal(decoder.next().kind, 'need_more');
  decoder.push(bytes.subarray(50));
  const result = decoder.next();
  assert.equal(result.kind, 'frame');
  if (result.kind !== 'frame') throw new Error('unreachable');
  return decodeReplicaReply(result.frame);
}

test('decodeReplicaReply round-trips every op', () => {
  for (const [i, body] of sampleReplies.entries()) {
    const envelope: ReplicaReplyEnvelope = { requestId: i, volumeName: 'vol-a', epoch: 12, result: { kind: 'ok', body } };
    const result = roundTrip(envelope);
    assert.equal(result.kind, 'reply', JSON.stringify(result));
    if (result.kind === 'reply') assert.deepEqual(result.envelope, envelope);
  }
});

test('decodeReplicaReply round-trips every error code, with the op number as sent', () => {
  for (const code of Object.keys(replicaErrorCodes) as ReplicaErrorCode[]) {
    const envelope: ReplicaReplyEnvelope = {
      requestId: 77,
      volumeName: 'vol-b',
      epoch: 4,
      result: { kind: 'error', opCode: 250, code, message: `failed: ${code} ✓` },
    };
    const result = roundTrip(envelope);
    assert.equal(result.kind, 'reply');
    if (result.kind === 'reply') assert.deepEqual(result.envelope, envelope);
  }
});

test('boundedMessage cuts long messages on a UTF-8 boundary', () => {
  const cut = boundedMessage('é'.repeat(replicaErrorMessageMaxBytes));
  assert.ok(cut.length <= replicaErrorMessageMaxBytes);
  assert.equal(new TextDecoder('utf-8', { fatal: true }).decode(cut), 'é'.repeat(cut.length / 2));
});

test('decodeReplicaReply refuses malformed replies as values', () => {
  const frame = (fields: { opCode: number; status?: number; lengthBytes?: number; flags?: number }, payload: Uint8Array): ReplyDecodeResult => {
    const bytes = encodeReplicaFrame(
      { version: 1, flags: fields.flags ?? replicaFrameFlags.reply, requestId: 9, epoch: 1, offsetBytes: 0, lengthBytes: fields.lengthBytes ?? 0, status: fields.status ?? 0, volumeName: 'v', opCode: fields.opCode },
      payload,
    );
    const decoder = new ReplicaFrameDecoder();
    decoder.push(bytes);
    const result = decoder.next();
    if (result.kind !== 'frame') throw new Error(result.kind);
    return decodeReplicaReply(result.frame);
  };
  const text = (s: string): Uint8Array => new TextEncoder().encode(s);
  const cases: [ReplyDecodeResult, RegExp][] = [
    [frame({ opCode: 1, flags: 0 }, new Uint8Array(0)), /request frame/],
    [frame({ opCode: 1, status: 999 }, new Uint8Array(0)), /unknown error status/],
    [frame({ opCode: 77 }, new Uint8Array(0)), /unknown op/],
    [frame({ opCode: 1, lengthBytes: 10 }, new Uint8Array(3)), /carries 3 bytes/],
    [frame({ opCode: 5 }, new Uint8Array(3)), /payload/],
    [frame({ opCode: 19 }, text('{"volumeName":"v"}')), /membership/],
    [frame({ opCode: 21 }, text('{"purged":["../../x"]}')), /not a name/],
  ];
  for (const [result, pattern] of cases) {
    assert.equal(result.kind, 'invalid');
    if (result.kind === 'invalid') {
      assert.equal(result.requestId, 9);
      assert.match(result.message, pattern);
    }
  }
});
