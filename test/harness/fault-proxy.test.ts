// The fault proxy between a client and an echo server: clean forwarding, delay with jitter,
// bandwidth, blackhole, half-open, partition and reset. Waits are on the proxy's own counters
// and events (with deadlines), never on sleeps; every test prints the proxy's seed when it fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { FaultProxy } from './fault-proxy.ts';

interface Echo {
  readonly server: Server;
  readonly port: number;
  received: number;
}

async function startEcho(): Promise<Echo> {
  const echo = { received: 0 } as Echo & { server: Server; port: number };
  const server = createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      echo.received += chunk.length;
      socket.write(chunk);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('echo server has no port');
  return Object.assign(echo, { server, port: address.port });
}

async function dial(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  return socket;
}

/** Read exactly n bytes from a socket. */
function readBytes(socket: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= n) {
        socket.off('data', onData);
        resolve(Buffer.concat(chunks).subarray(0, n));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

/** Resolve when `ready()` holds after one of the proxy's events; reject after deadlineMs. */
function until(proxy: FaultProxy, event: string, ready: () => boolean, deadlineMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ready()) return resolve();
    const timer = setTimeout(() => {
      proxy.off(event, check);
      reject(new Error(`proxy seed ${proxy.seed}: condition not met within ${deadlineMs} ms`));
    }, deadlineMs);
    const check = (): void => {
      if (!ready()) return;
      clearTimeout(timer);
      proxy.off(event, check);
      resolve();
    };
    proxy.on(event, check);
  });
}

async function withProxy(seed: number, body: (proxy: FaultProxy, echo: Echo) => Promise<void>): Promise<void> {
  const echo = await startEcho();
  const proxy = await FaultProxy.start({ targetPort: echo.port, seed });
  try {
    await body(proxy, echo);
  } catch (error) {
    throw new Error(`fault proxy test failed with seed ${seed}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  } finally {
    await proxy.close();
    echo.server.close();
  }
}

function payload(bytes: number, seed: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

test('forwards both directions unchanged and counts bytes', () =>
  withProxy(1, async (proxy) => {
    const socket = await dial(proxy.port);
    const data = payload(200_000, 1);
    socket.write(data);
    assert.deepEqual(await readBytes(socket, data.length), data);
    assert.equal(proxy.forwardedBytes.toTarget, data.length);
    assert.equal(proxy.forwardedBytes.toClient, data.length);
    socket.destroy();
  }));

test('delay with jitter holds every chunk back and keeps their order', () =>
  withProxy(2, async (proxy) => {
    proxy.delay(60, 20);
    const socket = await dial(proxy.port);
    const started = performance.now();
    const parts = [payload(1000, 1), payload(1000, 2), payload(1000, 3)];
    for (const part of parts) socket.write(part);
    const echoed = await readBytes(socket, 3000);
    const elapsed = performance.now() - started;
    assert.deepEqual(echoed, Buffer.concat(parts));
    // Each direction waits at least delay - jitter.
    assert.ok(elapsed >= 2 * 40 - 5, `round trip took ${elapsed.toFixed(1)} ms`);
    socket.destroy();
  }));

test('bandwidth limits throughput', () =>
  withProxy(3, async (proxy) => {
    proxy.bandwidth(200_000);
    const socket = await dial(proxy.port);
    const started = performance.now();
    socket.write(payload(40_000, 3));
    await readBytes(socket, 40_000);
    const elapsed = performance.now() - started;
    // 40 kB each way at 200 kB/s: at least 200 ms each way, so ≥ 400 ms in all (less a margin).
    assert.ok(elapsed >= 350, `40 kB echoed through a 200 kB/s link in ${elapsed.toFixed(1)} ms`);
    socket.destroy();
  }));

test('blackhole keeps the connection open and forwards nothing', () =>
  withProxy(4, async (proxy, echo) => {
    const socket = await dial(proxy.port);
    socket.write('warm');
    await readBytes(socket, 4);
    proxy.blackhole();
    socket.write(payload(5000, 4));
    await until(proxy, 'swallowed', () => proxy.swallowedBytes.toTarget >= 5000);
    assert.equal(echo.received, 4);
    assert.equal(socket.destroyed, false);
    proxy.heal();
    socket.write('back');
    assert.equal((await readBytes(socket, 4)).toString(), 'back');
    socket.destroy();
  }));

test('half-open lets requests through and swallows replies', () =>
  withProxy(5, async (proxy, echo) => {
    const socket = await dial(proxy.port);
    proxy.halfOpen('toTarget');
    socket.write(payload(3000, 5));
    await until(proxy, 'swallowed', () => proxy.swallowedBytes.toClient >= 3000);
    assert.equal(echo.received, 3000);
    assert.equal(proxy.forwardedBytes.toClient, 0);
    socket.destroy();
  }));

test('partition refuses new connections and silences open ones', () =>
  withProxy(6, async (proxy, echo) => {
    const open = await dial(proxy.port);
    proxy.partition();
    const refused = connect({ host: '127.0.0.1', port: proxy.port });
    // The refusal is an RST: the client sees ECONNRESET, then the socket closes.
    const closed = new Promise<void>((resolve) => refused.once('close', () => resolve()));
    refused.on('error', () => refused.destroy());
    await closed;
    assert.equal(proxy.connectionsRefused, 1);
    open.write('lost');
    await until(proxy, 'swallowed', () => proxy.swallowedBytes.toTarget >= 4);
    assert.equal(echo.received, 0);
    open.destroy();
  }));

test('reset tears down every connection with an error on the client', () =>
  withProxy(7, async (proxy) => {
    const socket = await dial(proxy.port);
    socket.write('x');
    await readBytes(socket, 1);
    const failed = once(socket, 'error');
    proxy.reset();
    const [error] = (await failed) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ECONNRESET');
  }));

test('cutExisting silences the connections open now and lets new ones through; heal restores the old', () =>
  withProxy(8, async (proxy, echo) => {
    const old = await dial(proxy.port);
    old.write('warm');
    await readBytes(old, 4);
    proxy.cutExisting();
    old.write(payload(3000, 8));
    await until(proxy, 'swallowed', () => proxy.swallowedBytes.toTarget >= 3000);
    assert.equal(echo.received, 4);
    const fresh = await dial(proxy.port);
    fresh.write('new!');
    assert.equal((await readBytes(fresh, 4)).toString(), 'new!');
    proxy.heal();
    old.write('back');
    assert.equal((await readBytes(old, 4)).toString(), 'back');
    old.destroy();
    fresh.destroy();
  }));

test('refuseNew resets new connections and keeps the open ones', () =>
  withProxy(9, async (proxy) => {
    const open = await dial(proxy.port);
    proxy.refuseNew();
    const refused = connect({ host: '127.0.0.1', port: proxy.port });
    const closed = new Promise<void>((resolve) => refused.once('close', () => resolve()));
    refused.on('error', () => refused.destroy());
    await closed;
    assert.equal(proxy.connectionsRefused, 1);
    open.write('kept');
    assert.equal((await readBytes(open, 4)).toString(), 'kept');
    open.destroy();
  }));

test('delay with jitter keeps the byte order of a stream of many small chunks (later chunks with shorter delays wait)', () =>
  withProxy(10, async (proxy) => {
    // Each chunk draws its own delay; a chunk that draws less than the one before it still waits
    // for it. Timers set for the same moment from different starting points do not fire in the
    // order they were set (Node truncates each one's duration to whole ms from its own start), so
    // the proxy must not rely on them for order: a frame split over two chunks arrives scrambled.
    proxy.delay(30, 25);
    const socket = await dial(proxy.port);
    const chunks = 400;
    const chunkBytes = 700;
    const sent = Buffer.concat(Array.from({ length: chunks }, (_, i) => payload(chunkBytes, i)));
    const echoed = readBytes(socket, sent.length);
    for (let i = 0; i < chunks; i++) {
      socket.write(sent.subarray(i * chunkBytes, (i + 1) * chunkBytes));
      // Separate turns of the loop, so the chunks reach the proxy as separate reads.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const got = await echoed;
    const firstDifference = got.findIndex((byte, i) => byte !== sent[i]);
    assert.equal(firstDifference, -1, `echoed stream differs from the sent one at byte ${firstDifference} of ${sent.length}`);
    socket.destroy();
  }));
