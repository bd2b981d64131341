// Issue #9: one 16 MiB NBD read that outlived the replica timeout on a loaded machine made the
// engine drop every replica in turn, the last rw one included, and the volume could serve nothing
// more. Now a read failure never drops the last rw replica (the client gets the error), and a
// replica request's deadline grows with its size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { ManualClock } from '../lib/clock.ts';
import { replicaRequestFloorBytesPerSecond } from '../lib/limits.ts';
import { ReplicaFrameDecoder } from '../format/replica-protocol/replica-frame-decoder.ts';
import { decodeReplicaRequest } from '../format/replica-protocol/replica-request.ts';
import { encodeReplicaReply } from '../format/replica-protocol/replica-reply.ts';
import { Engine } from './engine.ts';
import { connectReplica, replicaRequestDeadlineMs, ReplicaClientError } from './replica-client.ts';
import { MemoryReplicaLink } from './testing/memory-replica-link.ts';

const sizeBytes = 1024 * 1024;

function engineOn(links: readonly MemoryReplicaLink[]): Engine {
  return new Engine({ volumeName: 'vol', sizeBytes, epoch: 1, generation: 1, members: links, clock: new ManualClock(), log: () => {} });
}

test('reads that fail on every replica drop all but the last rw one; the client gets the error and the volume still serves', async () => {
  const links = ['r0', 'r1', 'r2'].map((a) => new MemoryReplicaLink(a, sizeBytes));
  const engine = engineOn(links);
  await engine.write(0, new Uint8Array(4096).fill(9));
  let slow = true;
  for (const link of links) {
    link.beforeOp = (op) => {
      if (op === 'read' && slow) throw new ReplicaClientError('timeout', `Replica ${link.address}: read got no reply in 2000 ms`);
    };
  }
  await assert.rejects(engine.read(0, 4096), (error: Error & { code?: string }) => error.code === 'io' && /last rw replica/.test(error.message));
  const modes = engine.status().replicas.map((r) => r.mode);
  assert.deepEqual(modes, ['err', 'err', 'rw'], 'the last rw replica stays');
  // A second failing read does not drop it either.
  await assert.rejects(engine.read(0, 4096));
  assert.equal(engine.status().replicas[2]!.mode, 'rw');
  // Once the replica answers again, reads and writes work.
  slow = false;
  assert.deepEqual(await engine.read(0, 4096), new Uint8Array(4096).fill(9));
  await engine.write(4096, new Uint8Array(4096).fill(3));
  await engine.close();
});

test('concurrent failing reads cannot both drop one of the last two rw replicas', async () => {
  const links = ['r0', 'r1'].map((a) => new MemoryReplicaLink(a, sizeBytes));
  const engine = engineOn(links);
  for (const link of links) {
    link.beforeOp = (op) => {
      if (op === 'read') throw new ReplicaClientError('timeout', `Replica ${link.address}: read timed out`);
    };
  }
  const results = await Promise.allSettled(Array.from({ length: 8 }, () => engine.read(0, 4096)));
  assert.ok(results.every((r) => r.status === 'rejected'));
  assert.equal(engine.status().replicas.filter((r) => r.mode === 'rw').length, 1);
  await engine.close();
});

test('a replica request deadline grows with its size', () => {
  assert.equal(replicaRequestDeadlineMs(8000, 0), 8000);
  assert.equal(replicaRequestDeadlineMs(8000, replicaRequestFloorBytesPerSecond), 9000);
  assert.equal(replicaRequestDeadlineMs(2000, 16 * 1024 * 1024), 2000 + Math.ceil((16 * 1024 * 1024 * 1000) / replicaRequestFloorBytesPerSecond));
  assert.ok(replicaRequestDeadlineMs(8000, 4096) < 8002);
});

test('ReplicaClient: a large read slower than the base timeout completes; a small one as slow times out', async () => {
  const delayMs = 800;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const sockets = new Set<Socket>();
  // A replica that answers every read correctly, but only after delayMs.
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {
      // The client may close first.
    });
    const decoder = new ReplicaFrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      for (let r = decoder.next(); r.kind === 'frame'; r = decoder.next()) {
        const decoded = decodeReplicaRequest(r.frame);
        if (decoded.kind !== 'request' || decoded.envelope.request.op !== 'read') continue;
        const { requestId, request } = decoded.envelope;
        const data = new Uint8Array(request.lengthBytes).fill(5);
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (!socket.destroyed) socket.write(encodeReplicaReply({ requestId, volumeName: 'v', epoch: 0, result: { kind: 'ok', body: { op: 'read', data } } }));
        }, delayMs);
        timers.add(timer);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  // Base 400 ms: a 4 KiB read gets about 401 ms, an 8 MiB read 400 + 2000 ms (4 MiB/s floor).
  const client = await connectReplica(`127.0.0.1:${address.port}`, { volumeName: 'v', timeoutMs: 400 });
  try {
    const big = client.read(0, 8 * 1024 * 1024);
    await assert.rejects(client.read(0, 4096), (error: unknown) => error instanceof ReplicaClientError && error.code === 'timeout');
    const data = await big;
    assert.equal(data.length, 8 * 1024 * 1024);
    assert.equal(data[0], 5);
  } finally {
    await client.close();
    for (const timer of timers) clearTimeout(timer);
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
