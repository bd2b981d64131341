// The client against small hand-written peers (a silent one, one that hangs up, one that replies
// out of order, one that lies): the behaviour the engine relies on when a replica misbehaves.
// The client against the real replica server is tested in src/replica/replica-server.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { ReplicaFrameDecoder } from '../format/replica-protocol/replica-frame-decoder.ts';
import { decodeReplicaRequest, type ReplicaRequestEnvelope } from '../format/replica-protocol/replica-request.ts';
import { encodeReplicaReply } from '../format/replica-protocol/replica-reply.ts';
import { encodeReplicaFrame } from '../format/replica-protocol/replica-frame.ts';
import { connectReplica, parseReplicaAddress, ReplicaClientError } from './replica-client.ts';

const sockets = new Set<Socket>();

/** A peer that hands every decoded request to `onRequest`. */
async function peer(onRequest: (socket: Socket, envelope: ReplicaRequestEnvelope) => void): Promise<{ server: Server; address: string }> {
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const decoder = new ReplicaFrameDecoder();
    socket.on('error', () => {
      // The client may hang up first in these tests.
    });
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      for (let r = decoder.next(); r.kind === 'frame'; r = decoder.next()) {
        const decoded = decodeReplicaRequest(r.frame);
        assert.equal(decoded.kind, 'request');
        if (decoded.kind === 'request') onRequest(socket, decoded.envelope);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { server, address: `127.0.0.1:${address.port}` };
}

function stop(server: Server): Promise<void> {
  for (const socket of sockets) socket.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

function isCode(code: string): (error: unknown) => boolean {
  return (error: unknown) => error instanceof ReplicaClientError && error.code === code;
}

test('parseReplicaAddress takes host:port, [v6]:port and socket paths, and refuses the rest', () => {
  assert.deepEqual(parseReplicaAddress('127.0.0.1:9502'), { kind: 'tcp', host: '127.0.0.1', port: 9502 });
  assert.deepEqual(parseReplicaAddress('[::1]:7'), { kind: 'tcp', host: '::1', port: 7 });
  assert.deepEqual(parseReplicaAddress('/run/r.sock'), { kind: 'unix', path: '/run/r.sock' });
  for (const bad of ['host', 'host:0', 'host:70000', ':1']) assert.throws(() => parseReplicaAddress(bad), isCode('bad_request'));
});

test('ReplicaClient matches out-of-order replies to their requests', async () => {
  const held: [Socket, ReplicaRequestEnvelope][] = [];
  const { server, address } = await peer((socket, envelope) => {
    held.push([socket, envelope]);
    if (held.length < 3) return;
    // Answer in reverse order, each read with bytes naming its offset.
    for (const [s, e] of held.reverse()) {
      const data = e.request.op === 'read' ? new Uint8Array(e.request.lengthBytes).fill(e.request.offsetBytes / 512) : new Uint8Array(0);
      s.write(encodeReplicaReply({ requestId: e.requestId, volumeName: 'v', epoch: 0, result: { kind: 'ok', body: { op: 'read', data } } }));
    }
  });
  const client = await connectReplica(address, { volumeName: 'v' });
  try {
    const reads = await Promise.all([512, 1024, 1536].map((o) => client.read(o, 16)));
    assert.deepEqual(reads.map((r) => r[0]), [1, 2, 3]);
  } finally {
    await client.close();
    await stop(server);
  }
});

test('ReplicaClient times a request out, and keeps working after', async () => {
  let calls = 0;
  const { server, address } = await peer((socket, envelope) => {
    calls++;
    if (calls === 1) return; // the first request is never answered
    socket.write(encodeReplicaReply({ requestId: envelope.requestId, volumeName: 'v', epoch: 0, result: { kind: 'ok', body: { op: 'ping' } } }));
  });
  const client = await connectReplica(address, { volumeName: 'v', timeoutMs: 100 });
  try {
    await assert.rejects(client.ping(), isCode('timeout'));
    await client.ping();
  } finally {
    await client.close();
    await stop(server);
  }
});

test('ReplicaClient reads a reply that arrived while its process stalled before it times the request out', async () => {
  // The peer runs in this process: it sends the reply, then stalls the whole process (as a long GC
  // or a starved CPU would) past the client's deadline. The reply is waiting in the client's
  // socket when the loop resumes; the deadline timer runs before sockets are read in an event-loop
  // turn, so a sweep straight from the timer failed a replica that had answered in time.
  const stallMs = 300;
  const { server, address } = await peer((socket, envelope) => {
    socket.write(encodeReplicaReply({ requestId: envelope.requestId, volumeName: 'v', epoch: 0, result: { kind: 'ok', body: { op: 'ping' } } }), () => {
      const until = performance.now() + stallMs;
      while (performance.now() < until) {
        // stall the event loop
      }
    });
  });
  const client = await connectReplica(address, { volumeName: 'v', timeoutMs: 100 });
  try {
    for (let i = 0; i < 3; i++) await client.ping();
  } finally {
    await client.close();
    await stop(server);
  }
});

test('ReplicaClient times out a queued request that was sent after an earlier one timed out', async () => {
  const { server, address } = await peer(() => {
    // Never answers.
  });
  const client = await connectReplica(address, { volumeName: 'v', timeoutMs: 100, inflightMax: 1 });
  try {
    const first = client.ping();
    // A later deadline than the first's: still queued when the first times out, then sent.
    await new Promise((resolve) => setTimeout(resolve, 40));
    const second = client.ping();
    await assert.rejects(first, isCode('timeout'));
    const guard = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the second request never timed out')), 5000).unref());
    await assert.rejects(Promise.race([second, guard]), isCode('timeout'));
  } finally {
    await client.close();
    await stop(server);
  }
});

test('ReplicaClient fails every pending request when the connection drops, and every later call', async () => {
  let seen = 0;
  const { server, address } = await peer((socket) => {
    if (++seen === 3) socket.destroy();
  });
  const client = await connectReplica(address, { volumeName: 'v', timeoutMs: 5000 });
  try {
    const results = await Promise.allSettled([client.ping(), client.flush(), client.read(0, 4096)]);
    for (const r of results) assert.ok(r.status === 'rejected' && isCode('disconnected')(r.reason), String(r.status));
    await assert.rejects(client.ping(), isCode('disconnected'));
    assert.equal(client.broken, true);
  } finally {
    await client.close();
    await stop(server);
  }
});

test('ReplicaClient passes the replica error code and epoch through', async () => {
  const { server, address } = await peer((socket, envelope) => {
    socket.write(
      encodeReplicaReply({ requestId: envelope.requestId, volumeName: 'v', epoch: 9, result: { kind: 'error', opCode: 2, code: 'stale_epoch', message: 'epoch 1 < 9' } }),
    );
  });
  const client = await connectReplica(address, { volumeName: 'v', epoch: 1 });
  try {
    await assert.rejects(client.write(0, new Uint8Array(4096)), (error: unknown) => {
      assert.ok(error instanceof ReplicaClientError);
      assert.equal(error.code, 'stale_epoch');
      assert.equal(error.replicaEpoch, 9);
      return true;
    });
  } finally {
    await client.close();
    await stop(server);
  }
});

test('ReplicaClient drops a connection whose replies cannot be trusted', async () => {
  const lies: ((socket: Socket, e: ReplicaRequestEnvelope) => void)[] = [
    // A read reply of the wrong length.
    (s, e) => s.write(encodeReplicaReply({ requestId: e.requestId, volumeName: 'v', epoch: 0, result: { kind: 'ok', body: { op: 'read', data: new Uint8Array(3) } } })),
    // A reply for another op.
    (s, e) => s.write(encodeReplicaReply({ requestId: e.requestId, volumeName: 'v', epoch: 0, result: { kind: 'ok', body: { op: 'flush' } } })),
    // Garbage.
    (s) => s.write(new Uint8Array(64).fill(0x41)),
    // A reply header with an unknown version.
    (s, e) => s.write(encodeReplicaFrame({ version: 9, opCode: 1, flags: 1, requestId: e.requestId, epoch: 0, offsetBytes: 0, lengthBytes: 0, status: 0, volumeName: 'v' }, new Uint8Array(0))),
  ];
  for (const lie of lies) {
    const { server, address } = await peer(lie);
    const client = await connectReplica(address, { volumeName: 'v' });
    try {
      await assert.rejects(client.read(0, 4096), isCode('protocol'));
      await assert.rejects(client.ping(), isCode('protocol'));
    } finally {
      await client.close();
      await stop(server);
    }
  }
});

test('ReplicaClient queues past its in-flight window and refuses calls after close()', async () => {
  let inflight = 0;
  let inflightPeak = 0;
  const { server, address } = await peer((socket, envelope) => {
    inflight++;
    inflightPeak = Math.max(inflightPeak, inflight);
    setImmediate(() => {
      inflight--;
      socket.write(encodeReplicaReply({ requestId: envelope.requestId, volumeName: 'v', epoch: 0, result: { kind: 'ok', body: { op: 'ping' } } }));
    });
  });
  const client = await connectReplica(address, { volumeName: 'v', inflightMax: 4 });
  try {
    await Promise.all(Array.from({ length: 50 }, () => client.ping()));
    assert.ok(inflightPeak <= 4, `peak ${inflightPeak}`);
  } finally {
    await client.close();
    await stop(server);
  }
  await assert.rejects(client.ping(), isCode('closed'));
});

test('connectReplica reports a refused connection as disconnected', async () => {
  const { server, address } = await peer(() => {});
  await stop(server);
  await assert.rejects(connectReplica(address, { volumeName: 'v' }), isCode('disconnected'));
});
