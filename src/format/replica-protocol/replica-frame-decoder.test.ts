import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../lib/random.ts';
import { replicaFrameSizeMaxBytes } from '../../lib/limits.ts';
import { type FrameDecodeResult, ReplicaFrameDecoder } from './replica-frame-decoder.ts';
import { replicaFrameHeaderBytes, replicaFrameMagic } from './replica-frame.ts';
import { decodeReplicaRequest, encodeReplicaRequest } from './replica-request.ts';
import { sampleRequests } from './testing/sample-messages.ts';

function drain(decoder: ReplicaFrameDecoder): FrameDecodeResult[] {
  const out: FrameDecodeResult[] = [];
  for (;;) {
    const result = decoder.next();
    if (result.kind === 'need_more') return out;
    out.push(result);
    if (result.kind === 'fatal') return out;
  }
}

const frames = sampleRequests.map((request, i) =>
  encodeReplicaRequest({ requestId: i + 1, volumeName: 'vol-a', epoch: 5, request }),
);

function seedFromEnv(fallback: number): number {
  const text = process.env['SEED'];
  return text === undefined ? fallback : Number(text);
}

test('ReplicaFrameDecoder returns every frame whole when split at every byte', () => {
  for (const [index, frame] of frames.entries()) {
    for (let split = 0; split <= frame.length; split++) {
      const decoder = new ReplicaFrameDecoder();
      decoder.push(frame.subarray(0, split));
      const early = drain(decoder);
      if (split < frame.length) assert.deepEqual(early, [], `frame ${index} split at ${split}`);
      decoder.push(frame.subarray(split));
      const results = split < frame.length ? drain(decoder) : early;
      assert.equal(results.length, 1, `frame ${index} split at ${split}`);
      const only = results[0]!;
      assert.equal(only.kind, 'frame');
      if (only.kind !== 'frame') return;
      const decoded = decodeReplicaRequest(only.frame);
      assert.equal(decoded.kind, 'request');
      if (decoded.kind === 'request') assert.deepEqual(decoded.envelope.request, sampleRequests[index]);
      assert.equal(decoder.bufferedBytes(), 0);
    }
  }
});

test('ReplicaFrameDecoder takes a stream of all frames one byte at a time and in random chunks', () => {
  const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const frame of frames) {
    stream.set(frame, at);
    at += frame.length;
  }
  const seed = seedFromEnv(20261127);
  const random = new SeededRandom(seed);
  for (const mode of ['bytes', 'random'] as const) {
    const decoder = new ReplicaFrameDecoder();
    const got: number[] = [];
    let offset = 0;
    while (offset < stream.length) {
      const size = mode === 'bytes' ? 1 : 1 + random.int(300);
      decoder.push(stream.subarray(offset, offset + size));
      offset += size;
      for (const result of drain(decoder)) {
        assert.equal(result.kind, 'frame', `seed ${seed}`);
        if (result.kind === 'frame') got.push(result.frame.header.requestId);
      }
    }
    assert.deepEqual(got, frames.map((_, i) => i + 1), `mode ${mode} seed ${seed}`);
  }
});

function prefix(magic: number, length: number): Uint8Array {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, magic);
  view.setUint32(4, length);
  return bytes;
}

test('ReplicaFrameDecoder fails the stream on bad magic, and stays failed', () => {
  const decoder = new ReplicaFrameDecoder();
  decoder.push(prefix(0x47455420, 200)); // "GET " — someone speaking HTTP to us
  const [result] = drain(decoder);
  assert.equal(result?.kind, 'fatal');
  assert.match(result.kind === 'fatal' ? result.message : '', /bad magic 0x47455420/);
  decoder.push(frames[0]!);
  assert.equal(decoder.next().kind, 'fatal');
  assert.equal(decoder.bufferedBytes(), 0);
});

test('ReplicaFrameDecoder refuses an oversized length from its first 8 bytes, before buffering it', () => {
  for (const length of [replicaFrameSizeMaxBytes + 1, 0xffffffff]) {
    const decoder = new ReplicaFrameDecoder();
    decoder.push(prefix(replicaFrameMagic, length));
    const result = decoder.next();
    assert.equal(result.kind, 'fatal');
    assert.match(result.kind === 'fatal' ? result.message : '', /exceeds the maximum/);
  }
});

test('ReplicaFrameDecoder refuses a length shorter than the header', () => {
  for (const length of [0, 8, replicaFrameHeaderBytes - 1]) {
    const decoder = new ReplicaFrameDecoder();
    decoder.push(prefix(replicaFrameMagic, length));
    assert.equal(decoder.next().kind, 'fatal');
  }
});

test('ReplicaFrameDecoder waits for a truncated frame and never invents the rest', () => {
  const frame = frames[1]!; // a write with payload
  const decoder = new ReplicaFrameDecoder();
  decoder.push(frame.subarray(0, frame.length - 1));
  assert.equal(decoder.next().kind, 'need_more');
  assert.equal(decoder.bufferedBytes(), frame.length - 1);
});

test('ReplicaFrameDecoder never throws on seeded random corruptions of valid frames', () => {
  const seed = seedFromEnv(7);
  const random = new SeededRandom(seed);
  for (let round = 0; round < 3000; round++) {
    const frame = Uint8Array.from(random.pick(frames));
    const flips = 1 + random.int(4);
    for (let i = 0; i < flips; i++) frame[random.int(frame.length)] = random.int(256);
    const decoder = new ReplicaFrameDecoder();
    decoder.push(frame);
    try {
      for (const result of drain(decoder)) {
        if (result.kind === 'frame') decodeReplicaRequest(result.frame);
      }
    } catch (error) {
      assert.fail(`seed ${seed} round ${round}: decoder threw ${String(error)}`);
    }
  }
});
