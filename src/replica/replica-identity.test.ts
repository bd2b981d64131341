// Replica instance ids (format/replica-identity.ts, scenario S28): the directory keeps one id for
// its life, durable before it is used; the daemon's server reports it in chain_info and open
// replies; the engine's client learns it and refuses a link whose replica changes identity.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../lib/clock.ts';
import { ReplicaFrameDecoder } from '../format/replica-protocol/replica-frame-decoder.ts';
import { decodeReplicaRequest } from '../format/replica-protocol/replica-request.ts';
import { decodeChainInfo, encodeReplicaReply } from '../format/replica-protocol/replica-reply.ts';
import { connectReplica, ReplicaClientError } from '../engine/replica-client.ts';
import { createReplicaStore } from './layered-store.ts';
import { MemoryReplicaFiles } from './memory-replica-files.ts';
import { NodeReplicaFiles } from './node/node-replica-files.ts';
import { instanceIdFileName, loadOrCreateInstanceId } from './replica-instance-id.ts';
import { ReplicaServer } from './replica-server.ts';

const idA = '0123456789abcdef0123456789abcdef';
const idB = 'fedcba9876543210fedcba9876543210';

test('loadOrCreateInstanceId makes one id, durable, and keeps it across a power loss', async () => {
  const files = new MemoryReplicaFiles();
  await files.mkdir('/r');
  let made = 0;
  const newId = (): string => (made++ === 0 ? idA : idB);
  const first = await loadOrCreateInstanceId({ files, dir: '/r' }, newId);
  assert.deepEqual(first, { instanceId: idA, created: true });
  files.crash();
  const again = await loadOrCreateInstanceId({ files, dir: '/r' }, newId);
  assert.deepEqual(again, { instanceId: idA, created: false });
  assert.equal(made, 1);
});

test('loadOrCreateInstanceId refuses a damaged id file and a generator that returns junk', async () => {
  const files = new MemoryReplicaFiles();
  await files.mkdir('/r');
  files.plant(`/r/${instanceIdFileName}`, new TextEncoder().encode('not-an-id\n'));
  await assert.rejects(loadOrCreateInstanceId({ files, dir: '/r' }, () => idA), /does not hold an instance id/);
  const empty = new MemoryReplicaFiles();
  await empty.mkdir('/e');
  await assert.rejects(loadOrCreateInstanceId({ files: empty, dir: '/e' }, () => 'XYZ'), /is not an instance id/);
  assert.deepEqual(await empty.list('/e'), []);
});

test('loadOrCreateInstanceId reports a failed write as an I/O error and leaves no id behind', async () => {
  const files = new MemoryReplicaFiles();
  await files.mkdir('/r');
  files.injectFault({ op: 'sync', errno: 'EIO' });
  await assert.rejects(loadOrCreateInstanceId({ files, dir: '/r' }, () => idA), (error: unknown) => error instanceof Error && 'code' in error && error.code === 'io');
  assert.ok(!(await files.list('/r')).includes(instanceIdFileName));
});

test('the replica server reports its instance id in chain_info and open; the client learns it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shorthorn-identity-'));
  const store = await createReplicaStore({ dir, files: new NodeReplicaFiles(), clock: new ManualClock(), volumeName: 'vol-id', sizeBytes: 1024 * 1024 });
  const server = new ReplicaServer({ store, instanceId: idA });
  const { port } = await server.listenTcp('127.0.0.1', 0);
  const client = await connectReplica(`127.0.0.1:${port}`, { volumeName: 'vol-id' });
  try {
    assert.equal(client.instanceId, null);
    assert.equal((await client.chain()).instanceId, idA);
    assert.equal(client.instanceId, idA);
    assert.equal((await client.open(1)).instanceId, idA);
    // The store's own record does not carry it: only the daemon knows its directory's id.
    assert.equal(store.chain().instanceId, undefined);
  } finally {
    await client.close();
    await server.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a link whose replica answers with another instance id fails with wrong_replica, for good', async () => {
  // A hand-written peer: its chain_info replies change identity after the first.
  const sockets = new Set<Socket>();
  let calls = 0;
  const base = { volumeName: 'v', sizeBytes: 4096, blockSizeBytes: 4096, snapshots: [], headSizeBytes: 0, headParent: null, membership: { epoch: 0, generation: 0, members: [] } };
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {
      // The client hangs up on the impostor.
    });
    const decoder = new ReplicaFrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      for (let r = decoder.next(); r.kind === 'frame'; r = decoder.next()) {
        const decoded = decodeReplicaRequest(r.frame);
        if (decoded.kind !== 'request') continue;
        const env = decoded.envelope;
        const body = env.request.op === 'ping' ? { op: 'ping' as const } : { op: 'chain_info' as const, chain: decodeChainInfo({ ...base, instanceId: calls++ === 0 ? idA : idB }) };
        socket.write(encodeReplicaReply({ requestId: env.requestId, volumeName: 'v', epoch: 0, result: { kind: 'ok', body } }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  const client = await connectReplica(`127.0.0.1:${address.port}`, { volumeName: 'v' });
  const wrongReplica = (error: unknown): boolean => error instanceof ReplicaClientError && error.code === 'wrong_replica';
  try {
    await client.chain();
    assert.equal(client.instanceId, idA);
    await assert.rejects(client.chain(), wrongReplica);
    await assert.rejects(client.ping(), wrongReplica);
  } finally {
    await client.close();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('decodeChainInfo refuses an instance id that is not 32 lowercase hex digits', () => {
  const base = { volumeName: 'v', sizeBytes: 4096, blockSizeBytes: 4096, snapshots: [], headSizeBytes: 0, headParent: null, membership: { epoch: 0, generation: 0, members: [] } };
  assert.equal(decodeChainInfo(base).instanceId, undefined);
  for (const bad of ['', 'ABCDEF0123456789ABCDEF0123456789', 'a'.repeat(33), 7]) {
    assert.throws(() => decodeChainInfo({ ...base, instanceId: bad }), /instanceId/);
  }
});
