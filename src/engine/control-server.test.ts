import { test } from 'node:test';
import assert from 'node:assert/strict';
import { slowUpload } from '../lib/testing/slow-upload.ts';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '../lib/clock.ts';
import { createControlServer, type ControlServerOptions } from './control-server.ts';
import { Engine } from './engine.ts';
import { MemoryReplicaLink } from './testing/memory-replica-link.ts';
import type { ChainInfo } from '../format/replica-chain.ts';

/** A memory replica whose chain shows the snapshots it took (MemoryReplicaLink's shows none), as the limits count them. */
class SnapshotListingLink extends MemoryReplicaLink {
  override async chain(): Promise<ChainInfo> {
    const chain = await super.chain();
    const snapshots = this.snapshots.map((name) => ({ name, parent: null, createdMs: 0, kind: 'user' as const, labels: {}, removed: false, sizeBytes: 4096, checksumState: 'none' as const }));
    return { ...chain, snapshots };
  }
}

async function withServer(run: (base: string, links: MemoryReplicaLink[]) => Promise<void>, extra: Partial<ControlServerOptions> = {}): Promise<void> {
  const links = [new SnapshotListingLink('r0', 1 << 20), new SnapshotListingLink('r1', 1 << 20)];
  const engine = new Engine({
    volumeName: 'vol',
    sizeBytes: 1 << 20,
    epoch: 1,
    generation: 1,
    members: links,
    clock: new ManualClock(),
    log: () => undefined,
  });
  const server = createControlServer({
    engine,
    connect: (address) => Promise.resolve(new MemoryReplicaLink(address, 1 << 20)),
    log: () => undefined,
    ...extra,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await run(`http://127.0.0.1:${port}`, links);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

async function call(base: string, method: string, path: string, body?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${base}${path}`, { method, ...(body === undefined ? {} : { body }) });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

test('control API reports status, takes snapshots, adds and removes replicas', async () => {
  await withServer(async (base, links) => {
    const status = await call(base, 'GET', '/v1/status');
    assert.equal(status.status, 200);
    assert.equal(status.json['volumeName'], 'vol');
    const snap = await call(base, 'POST', '/v1/snapshots', JSON.stringify({ name: 's1', labels: { a: 'b' } }));
    assert.equal(snap.status, 200);
    assert.deepEqual(links[0]!.snapshots, ['s1']);
    const added = await call(base, 'POST', '/v1/replicas', JSON.stringify({ address: 'r2' }));
    assert.equal(added.status, 200);
    assert.deepEqual((added.json['replicas'] as { mode: string }[]).map((r) => r.mode), ['rw', 'rw', 'wo']);
    const removed = await call(base, 'DELETE', '/v1/replicas?address=r1');
    assert.deepEqual((removed.json['replicas'] as { mode: string }[]).map((r) => r.mode), ['rw', 'err', 'wo']);
  });
});

test('control API answers hostile requests with 4xx and keeps serving', async () => {
  await withServer(async (base) => {
    const cases: [string, string, string | undefined, number][] = [
      ['POST', '/v1/snapshots', '{not json', 400],
      ['POST', '/v1/snapshots', '[]', 400],
      ['POST', '/v1/snapshots', '{"name":"x","__proto__":{"admin":true}}', 400],
      ['POST', '/v1/snapshots', '{"name":"x","labels":{"__proto__":"y"}}', 400],
      ['POST', '/v1/snapshots', JSON.stringify({ name: '../x' }), 400],
      ['POST', '/v1/snapshots', JSON.stringify({ name: 'a'.repeat(300) }), 400],
      ['POST', '/v1/snapshots', JSON.stringify({ name: 'ok', kind: 'weird' }), 400],
      ['POST', '/v1/expand', JSON.stringify({ sizeBytes: 'big' }), 400],
      ['POST', '/v1/expand', JSON.stringify({ sizeBytes: 1e300 }), 400],
      ['POST', '/v1/expand', JSON.stringify({ sizeBytes: 1000 }), 400],
      ['DELETE', '/v1/replicas', undefined, 400],
      ['DELETE', '/v1/replicas?address=nope', undefined, 400],
      ['GET', '/v1/nothing', undefined, 404],
      ['POST', '/v1/replicas', 'x'.repeat(70_000), 413],
      // A body far over the limit: still a 413, not a connection reset mid-upload (S31).
      ['POST', '/v1/snapshots', JSON.stringify({ name: 'x', labels: { a: 'y'.repeat(1 << 20) } }), 413],
    ];
    for (const [method, path, body, expected] of cases) {
      const { status, json } = await call(base, method, path, body);
      assert.equal(status, expected, `${method} ${path} ${body?.slice(0, 40) ?? ''}`);
      assert.equal(typeof json['code'], 'string');
      assert.equal(typeof json['message'], 'string');
    }
    assert.equal((await call(base, 'GET', '/v1/status')).status, 200);
    // Over the limit the server stops wanting the body: its 413 says the connection closes, so
    // the client does not send its next request on a socket the server has dropped (S31 seed 1:
    // the request after a 1 MiB body failed with ECONNRESET).
    const big = await fetch(`${base}/v1/snapshots`, { method: 'POST', body: 'x'.repeat(1 << 20) });
    assert.equal(big.status, 413);
    assert.equal(big.headers.get('connection'), 'close');
    await big.arrayBuffer();
    assert.equal((await call(base, 'GET', '/v1/status')).status, 200);
    // A client still sending its over-limit body finishes sending, then reads the 413 (S31 in CI:
    // an answer sent before the body ended made fetch() fail with EPIPE).
    const answer = await slowUpload(Number(new URL(base).port), 'POST /v1/snapshots HTTP/1.1\r\nhost: x\r\n', 4 << 20);
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.equal((await call(base, 'GET', '/v1/status')).status, 200);
  });
});

test('snapshot limits change live: status reports them, snapshots follow them, hostile bodies are refused', async () => {
  await withServer(async (base, links) => {
    const limitsOf = async (): Promise<unknown> => (await call(base, 'GET', '/v1/status')).json['snapshotLimits'];
    assert.deepEqual(await limitsOf(), { maxCount: 2, maxSizeBytes: 0 }, 'the limits the server started with');
    for (const name of ['s1', 's2']) assert.equal((await call(base, 'POST', '/v1/snapshots', JSON.stringify({ name }))).status, 200);
    const refused = await call(base, 'POST', '/v1/snapshots', JSON.stringify({ name: 's3' }));
    assert.equal(refused.status, 409);
    assert.match(String(refused.json['message']), /Cannot take snapshot s3: the volume holds 2 snapshots and snapshotMaxCount is 2/);

    const raised = await call(base, 'PUT', '/v1/snapshot-limits', JSON.stringify({ maxCount: 3, maxSizeBytes: 1 << 30 }));
    assert.equal(raised.status, 200);
    assert.deepEqual(raised.json['snapshotLimits'], { maxCount: 3, maxSizeBytes: 1 << 30 });
    assert.equal(raised.json['volumeName'], 'vol', 'the answer is the whole status');
    assert.equal((await call(base, 'POST', '/v1/snapshots', JSON.stringify({ name: 's3' }))).status, 200);
    assert.deepEqual(links[0]!.snapshots, ['s1', 's2', 's3']);
    // Below what the volume holds: accepted, and every new snapshot is refused until some go.
    assert.equal((await call(base, 'PUT', '/v1/snapshot-limits', JSON.stringify({ maxCount: 2, maxSizeBytes: 0 }))).status, 200);
    assert.equal((await call(base, 'POST', '/v1/snapshots', JSON.stringify({ name: 's4' }))).status, 409);
    assert.equal((await call(base, 'PUT', '/v1/snapshot-limits', JSON.stringify({ maxCount: 0, maxSizeBytes: 0 }))).status, 200);
    assert.equal((await call(base, 'POST', '/v1/snapshots', JSON.stringify({ name: 's4' }))).status, 200, '0: no limit');

    const hostile: [string, number][] = [
      ['', 400],
      ['{not json', 400],
      ['[]', 400],
      ['null', 400],
      ['{}', 400],
      [JSON.stringify({ maxCount: 3 }), 400],
      [JSON.stringify({ maxSizeBytes: 0 }), 400],
      [JSON.stringify({ maxCount: '3', maxSizeBytes: 0 }), 400],
      [JSON.stringify({ maxCount: -1, maxSizeBytes: 0 }), 400],
      [JSON.stringify({ maxCount: 2.5, maxSizeBytes: 0 }), 400],
      [JSON.stringify({ maxCount: 1025, maxSizeBytes: 0 }), 400],
      [JSON.stringify({ maxCount: 1e300, maxSizeBytes: 0 }), 400],
      [JSON.stringify({ maxCount: 3, maxSizeBytes: 2 ** 53 }), 400],
      [JSON.stringify({ maxCount: 3, maxSizeBytes: -4096 }), 400],
      [JSON.stringify({ maxCount: 3, maxSizeBytes: null }), 400],
      [JSON.stringify({ maxCount: 3, maxSizeBytes: 0, force: true }), 400],
      ['{"maxCount":3,"maxSizeBytes":0,"__proto__":{"maxCount":0}}', 400],
      [JSON.stringify({ maxCount: 3, maxSizeBytes: 0, pad: 'x'.repeat(70_000) }), 413],
    ];
    for (const [body, expected] of hostile) {
      const { status, json } = await call(base, 'PUT', '/v1/snapshot-limits', body);
      assert.equal(status, expected, body.slice(0, 60));
      assert.equal(typeof json['message'], 'string');
    }
    assert.equal((await call(base, 'POST', '/v1/snapshot-limits', JSON.stringify({ maxCount: 3, maxSizeBytes: 0 }))).status, 404, 'only PUT');
    assert.deepEqual(await limitsOf(), { maxCount: 0, maxSizeBytes: 0 }, 'no refused body changed the limits');
  }, { snapshotLimits: { maxCount: 2, maxSizeBytes: 0 } });
});

test('an engine started without limits reports none in force', async () => {
  await withServer(async (base) => {
    assert.deepEqual((await call(base, 'GET', '/v1/status')).json['snapshotLimits'], { maxCount: 0, maxSizeBytes: 0 });
  });
});
