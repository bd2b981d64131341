// The real replica server over TCP and a unix socket, on the real store in a temp directory:
// every operation through the client, fencing, and hostile frames on raw sockets while a good
// client keeps being served.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../lib/clock.ts';
import { replicaFrameSizeMaxBytes } from '../lib/limits.ts';
import { ReplicaFrameDecoder } from '../format/replica-protocol/replica-frame-decoder.ts';
import { encodeReplicaFrame, type ReplicaFrameHeader } from '../format/replica-protocol/replica-frame.ts';
import { encodeReplicaRequest, type ReplicaRequest } from '../format/replica-protocol/replica-request.ts';
import { decodeReplicaReply, type ReplicaReplyEnvelope } from '../format/replica-protocol/replica-reply.ts';
import { replicaOpCodes } from '../format/replica-protocol/replica-ops.ts';
import { connectReplica, ReplicaClientError, type ReplicaClient } from '../engine/replica-client.ts';
import { createReplicaStore } from './layered-store.ts';
import { NodeReplicaFiles } from './node/node-replica-files.ts';
import { ReplicaServer } from './replica-server.ts';
import type { ReplicaStore } from './replica-store.ts';

const volumeName = 'vol-srv';
const sizeBytes = 8 * 1024 * 1024;
let dir: string;
let store: ReplicaStore;
let server: ReplicaServer;
let tcpAddress: string;
let unixPath: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shorthorn-replica-server-'));
  store = await createReplicaStore({ dir: join(dir, 'replica'), files: new NodeReplicaFiles(), clock: new ManualClock(), volumeName, sizeBytes });
  server = new ReplicaServer({ store, connectionsMax: 8 });
  const endpoint = await server.listenTcp('127.0.0.1', 0);
  tcpAddress = `127.0.0.1:${endpoint.port}`;
  unixPath = join(dir, 'replica.sock');
  await server.listenUnix(unixPath);
});

after(async () => {
  await server.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

function isCode(code: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof ReplicaClientError, String(error));
    assert.equal(error.code, code, error.message);
    return true;
  };
}

function pattern(seed: number, length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff);
}

test('ReplicaServer serves every operation over TCP and over a unix socket', async () => {
  const tcp = await connectReplica(tcpAddress, { volumeName });
  const unix = await connectReplica(unixPath, { volumeName });
  try {
    const opened = await tcp.open(1);
    assert.equal(opened.volumeName, volumeName);
    await unix.open(1);
    await tcp.write(4096, pattern(1, 8192));
    assert.deepEqual(await unix.read(4096, 8192), pattern(1, 8192));
    await unix.write(100, pattern(2, 300)); // unaligned: the store merges the partial block
    assert.deepEqual(await tcp.read(100, 300), pattern(2, 300));
    await tcp.writeZeroes(4096, 4096);
    assert.deepEqual(await tcp.read(4096, 4096), new Uint8Array(4096));
    await tcp.trim(8192, 4096);
    assert.deepEqual(await tcp.read(8192, 4096), new Uint8Array(4096));
    await tcp.flush();
    await unix.ping();
    await tcp.setMembership({ generation: 4, members: [tcpAddress, 'other:1'] });
    await tcp.snapshot({ name: 'snap-a', kind: 'user', labels: { why: 'test' } });
    await tcp.write(0, pattern(3, 4096));
    await tcp.snapshot({ name: 'snap-b', kind: 'system' });
    let chain = await unix.chain();
    assert.deepEqual(chain.snapshots.map((s) => s.name), ['snap-a', 'snap-b']);
    assert.deepEqual(chain.membership, { epoch: 1, generation: 4, members: [tcpAddress, 'other:1'] });
    assert.deepEqual(await tcp.layerExtents('snap-b', { offsetBytes: 0, lengthBytes: sizeBytes }), [{ offsetBytes: 0, lengthBytes: 4096, kind: 'data' }]);
    assert.deepEqual(await tcp.readLayer('snap-b', 0, 4096), pattern(3, 4096));
    const sums = await tcp.checksums('snap-b', { offsetBytes: 0, lengthBytes: sizeBytes });
    assert.ok(sums.length >= 1 && sums.every((s) => s.digest.length > 0));
    await tcp.markRemoved('snap-a');
    assert.deepEqual(await tcp.purge(), ['snap-a']);
    assert.deepEqual(await tcp.read(0, 4096), pattern(3, 4096)); // purge never changes reads
    await tcp.revert('snap-b');
    chain = await tcp.chain();
    assert.equal(chain.headParent, 'snap-b');
    await tcp.expand(sizeBytes * 2);
    assert.equal((await tcp.chain()).sizeBytes, sizeBytes * 2);
    assert.deepEqual(await unix.read(sizeBytes * 2 - 4096, 4096), new Uint8Array(4096));
    await assert.rejects(tcp.read(sizeBytes * 2, 4096), isCode('out_of_range'));
    await assert.rejects(tcp.revert('no-such'), isCode('not_found'));
    await assert.rejects(tcp.snapshot({ name: 'snap-b', kind: 'user' }), isCode('already_exists'));
  } finally {
    await tcp.close();
    await unix.close();
  }
});

test('ReplicaServer fences older epochs and other volumes, and answers chain_info at any epoch', async () => {
  const engine2 = await connectReplica(tcpAddress, { volumeName });
  const engine1 = await connectReplica(tcpAddress, { volumeName, epoch: 1 });
  const stranger = await connectReplica(tcpAddress, { volumeName: 'other-volume', epoch: 1 });
  const ahead = await connectReplica(tcpAddress, { volumeName, epoch: 99 });
  try {
    await engine1.open(1);
    await engine2.open(2);
    await assert.rejects(engine1.write(0, new Uint8Array(4096)), (error: unknown) => {
      assert.ok(error instanceof ReplicaClientError && error.code === 'stale_epoch' && error.replicaEpoch === 2);
      return true;
    });
    await assert.rejects(engine1.open(1), isCode('stale_epoch'));
    await assert.rejects(engine1.ping(), isCode('stale_epoch'));
    await assert.rejects(stranger.read(0, 4096), isCode('wrong_volume'));
    await assert.rejects(ahead.write(0, new Uint8Array(4096)), isCode('epoch_not_open'));
    assert.equal((await engine1.chain()).membership.epoch, 2);
    await engine2.write(0, new Uint8Array(4096));
  } finally {
    await Promise.all([engine1.close(), engine2.close(), stranger.close(), ahead.close()]);
  }
});

/** A raw connection that sends bytes and collects decoded replies until the server hangs up. */
class RawPeer {
  readonly socket: Socket;
  readonly replies: ReplicaReplyEnvelope[] = [];
  readonly ended: Promise<void>;
  private readonly decoder = new ReplicaFrameDecoder();
  private waiters: (() => void)[] = [];

  constructor(socket: Socket) {
    this.socket = socket;
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {
      // Hostile peers get cut off; the close event is what the tests wait on.
    });
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (let r = this.decoder.next(); r.kind === 'frame'; r = this.decoder.next()) {
        const decoded = decodeReplicaReply(r.frame);
        assert.equal(decoded.kind, 'reply');
        if (decoded.kind === 'reply') this.replies.push(decoded.envelope);
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async open(): Promise<RawPeer> {
    const socket = connect({ host: '127.0.0.1', port: Number(tcpAddress.split(':')[1]) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawPeer(socket);
  }

  async waitReplies(count: number, deadlineMs = 5000): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (this.replies.length < count) {
      assert.ok(Date.now() < deadline, `only ${this.replies.length} of ${count} replies`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), this.ended, new Promise((r) => setTimeout(r, 50))]);
    }
  }
}

const header = (fields: Partial<ReplicaFrameHeader>): ReplicaFrameHeader => ({
  version: 1,
  opCode: replicaOpCodes.read,
  flags: 0,
  requestId: 5,
  epoch: 2,
  offsetBytes: 0,
  lengthBytes: 4096,
  status: 0,
  volumeName,
  ...fields,
});

function request(requestId: number, body: ReplicaRequest, epoch = 2, volume = volumeName): Uint8Array {
  return encodeReplicaRequest({ requestId, volumeName: volume, epoch, request: body });
}

test('ReplicaServer answers hostile frames with an error or a disconnect, and keeps serving the others', async () => {
  const good = await connectReplica(tcpAddress, { volumeName, epoch: 2 });
  const stillServing = async (): Promise<void> => {
    await good.ping();
    assert.equal((await good.read(0, 4096)).length, 4096);
  };
  // Frames the server answers with an error reply on a connection that stays usable.
  const answered: [string, Uint8Array, number, string][] = [
    ['offset past the end', request(11, { op: 'read', offsetBytes: sizeBytes * 4, lengthBytes: 4096 }), 11, 'out_of_range'],
    ['offset past 2^53', (() => {
      const b = encodeReplicaFrame(header({ requestId: 12 }), new Uint8Array(0));
      new DataView(b.buffer).setBigUint64(24, 2n ** 64n - 1n);
      return b;
    })(), 12, 'out_of_range'],
    ['older epoch', request(13, { op: 'write', offsetBytes: 0, data: new Uint8Array(4096) }, 1), 13, 'stale_epoch'],
    ['other volume', request(14, { op: 'flush' }, 2, 'intruder'), 14, 'wrong_volume'],
    ['unknown op', encodeReplicaFrame(header({ requestId: 15, opCode: 200 }), new Uint8Array(0)), 15, 'bad_request'],
    ['truncated payload', encodeReplicaFrame(header({ requestId: 16, opCode: replicaOpCodes.write }), new Uint8Array(100)), 16, 'bad_request'],
    ['oversized read', encodeReplicaFrame(header({ requestId: 17, lengthBytes: 0xffffffff }), new Uint8Array(0)), 17, 'bad_request'],
    ['bad JSON', encodeReplicaFrame(header({ requestId: 18, opCode: replicaOpCodes.snapshot, lengthBytes: 0 }), new TextEncoder().encode('{"name"')), 18, 'bad_request'],
    ['path in a name', request(19, { op: 'revert', name: 'ok' }).map((b, i, a) => (i >= a.length - 4 && i < a.length - 2 ? 0x2e : b)), 19, 'bad_request'],
  ];
  for (const [what, bytes, requestId, code] of answered) {
    const peer = await RawPeer.open();
    peer.socket.write(bytes);
    peer.socket.write(request(99, { op: 'ping' }));
    await peer.waitReplies(2);
    const reply = peer.replies.find((r) => r.requestId === requestId);
    assert.ok(reply?.result.kind === 'error', `${what}: ${JSON.stringify(peer.replies)}`);
    assert.equal(reply.result.kind === 'error' && reply.result.code, code, what);
    assert.equal(peer.replies.find((r) => r.requestId === 99)?.result.kind, 'ok', `${what}: connection still serves`);
    peer.socket.destroy();
    await stillServing();
  }
  // Streams the server cannot trust: one error reply (request id 0), then it hangs up.
  const prefix = (magic: number, length: number): Uint8Array => {
    const b = new Uint8Array(104);
    new DataView(b.buffer).setUint32(0, magic);
    new DataView(b.buffer).setUint32(4, length);
    return b;
  };
  const fatal: [string, Uint8Array][] = [
    ['bad magic', new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.padEnd(120, ' '))],
    ['oversized length', prefix(0x53485250, replicaFrameSizeMaxBytes + 1)],
    ['length below the header', prefix(0x53485250, 10)],
  ];
  for (const [what, bytes] of fatal) {
    const peer = await RawPeer.open();
    peer.socket.write(bytes);
    await peer.ended;
    assert.equal(peer.replies.length, 1, what);
    const only = peer.replies[0]!;
    assert.ok(only.requestId === 0 && only.result.kind === 'error' && only.result.code === 'bad_request', what);
    await stillServing();
  }
  // Half a frame, then the peer vanishes.
  const peer = await RawPeer.open();
  const write = request(20, { op: 'write', offsetBytes: 0, data: new Uint8Array(65536) });
  peer.socket.end(write.subarray(0, 30000));
  await peer.ended;
  await stillServing();
  assert.deepEqual(await good.read(0, 16), new Uint8Array(16));
  await good.close();
});

test('ReplicaServer pipelines: many requests in one write, replies matched by id', async () => {
  const peer = await RawPeer.open();
  const count = 600; // over the in-flight window: the server pauses the socket and catches up
  const batch: Uint8Array[] = [];
  for (let i = 1; i <= count; i++) batch.push(request(i, i % 2 === 0 ? { op: 'ping' } : { op: 'read', offsetBytes: (i % 64) * 4096, lengthBytes: 4096 }));
  peer.socket.write(Buffer.concat(batch));
  await peer.waitReplies(count, 20_000);
  assert.deepEqual(peer.replies.map((r) => r.requestId).sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i + 1));
  assert.ok(peer.replies.every((r) => r.result.kind === 'ok'));
  peer.socket.destroy();
});

test('ReplicaServer refuses connections over its limit with overloaded, and serves the rest', async () => {
  const clients: ReplicaClient[] = [];
  // Connections of earlier tests may still be closing on the server's side.
  const deadline = Date.now() + 5000;
  while (server.connectionCount() > 0) {
    assert.ok(Date.now() < deadline, `${server.connectionCount()} connections still open`);
    await new Promise((r) => setTimeout(r, 10));
  }
  try {
    for (let i = 0; i < 8; i++) clients.push(await connectReplica(tcpAddress, { volumeName, epoch: 2 }));
    await Promise.all(clients.map((c) => c.ping()));
    const extra = await RawPeer.open();
    await extra.ended;
    assert.equal(extra.replies[0]?.result.kind === 'error' && extra.replies[0].result.code, 'overloaded');
    await Promise.all(clients.map((c) => c.ping()));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
});
