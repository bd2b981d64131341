// A seeded TCP fault proxy for tests with real processes on loopback (reliability notes §7.1: no
// netem, no iptables here). Put it between any two processes: clients connect to the proxy, the
// proxy connects to the target, and the test shapes what passes, per direction:
//   delay(ms, jitter)   every chunk waits ms ± jitter (seeded), order kept per direction
//   bandwidth(Bps)      chunks leave no faster than this
//   blackhole()         connections stay open, nothing is forwarded (a dead peer that never RSTs)
//   halfOpen(dir)       only one direction passes (the other is swallowed)
//   partition()         blackhole, and new connections are cut at once
//   reset()             every connection is reset (RST) on both sides
//   cutExisting()       the connections open now are blackholed; new ones pass (a partition that
//                       separates the current client from the target, not a later one)
//   refuseNew()         new connections are reset; open ones go on (the reverse)
// Counters (bytes forwarded and swallowed) let tests wait for a fault to have acted, not sleep.
import { EventEmitter } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { SeededRandom } from '../../src/lib/random.ts';

export type ProxyDirection = 'toTarget' | 'toClient';

export interface FaultProxyOptions {
  readonly targetHost?: string;
  readonly targetPort: number;
  readonly listenPort?: number;
  /** Seed of the jitter; printed by tests that fail. */
  readonly seed: number;
}

interface Shape {
  delayMs: number;
  jitterMs: number;
  bytesPerSecond: number | null;
  /** Directions that are swallowed. */
  swallow: Set<ProxyDirection>;
  refuseNew: boolean;
}

interface Pipe {
  readonly from: Socket;
  readonly to: Socket;
  readonly direction: ProxyDirection;
  /** When the last scheduled chunk leaves (ms, performance clock): keeps order and bandwidth. */
  nextFreeMs: number;
  /**
   * Chunks held back, in arrival order; their leave times never decrease along the queue. One
   * timer per pipe, for the head only: a timer per chunk does not keep order (see release()).
   */
  readonly held: { readonly chunk: Buffer; readonly leaveMs: number }[];
  timer: ReturnType<typeof setTimeout> | null;
}

export class FaultProxy extends EventEmitter {
  readonly seed: number;
  private readonly server: Server;
  private readonly random: SeededRandom;
  private readonly target: { host: string; port: number };
  private readonly shape: Shape = { delayMs: 0, jitterMs: 0, bytesPerSecond: null, swallow: new Set(), refuseNew: false };
  private readonly sockets = new Set<Socket>();
  /** Sockets of connections cut by cutExisting(): nothing they send is forwarded, until heal(). */
  private readonly cut = new Set<Socket>();
  /** Pipes of open connections (each connection has two), for close(). */
  private readonly pipes = new Set<Pipe>();
  readonly forwardedBytes: Record<ProxyDirection, number> = { toTarget: 0, toClient: 0 };
  readonly swallowedBytes: Record<ProxyDirection, number> = { toTarget: 0, toClient: 0 };
  connectionsAccepted = 0;
  connectionsRefused = 0;

  private constructor(server: Server, options: FaultProxyOptions) {
    super();
    this.server = server;
    this.seed = options.seed;
    this.random = new SeededRandom(options.seed);
    this.target = { host: options.targetHost ?? '127.0.0.1', port: options.targetPort };
    server.on('connection', (client) => this.accept(client));
  }

  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const server = createServer();
    const proxy = new FaultProxy(server, options);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listenPort ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('fault proxy is not listening on TCP');
    return address.port;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Open connections (each is a client and a target socket). */
  get connectionCount(): number {
    return this.sockets.size / 2;
  }

  delay(delayMs: number, jitterMs = 0): this {
    this.shape.delayMs = delayMs;
    this.shape.jitterMs = jitterMs;
    return this;
  }

  bandwidth(bytesPerSecond: number | null): this {
    this.shape.bytesPerSecond = bytesPerSecond;
    return this;
  }

  blackhole(): this {
    this.shape.swallow = new Set(['toTarget', 'toClient']);
    return this;
  }

  /** Let only `passing` through; the other direction is swallowed. */
  halfOpen(passing: ProxyDirection): this {
    this.shape.swallow = new Set([passing === 'toTarget' ? 'toClient' : 'toTarget']);
    return this;
  }

  /** Blackhole every connection open now, both ways; connections opened later pass. */
  cutExisting(): this {
    for (const socket of this.sockets) this.cut.add(socket);
    return this;
  }

  /** Reset new connections at once; the open ones go on as they are shaped. */
  refuseNew(): this {
    this.shape.refuseNew = true;
    return this;
  }

  partition(): this {
    this.shape.refuseNew = true;
    return this.blackhole();
  }

  /** Back to a clean link (delay and bandwidth included). */
  heal(): this {
    this.shape.delayMs = 0;
    this.shape.jitterMs = 0;
    this.shape.bytesPerSecond = null;
    this.shape.swallow = new Set();
    this.shape.refuseNew = false;
    this.cut.clear();
    return this;
  }

  /** Reset every open connection (RST to both sides). */
  reset(): void {
    for (const socket of [...this.sockets]) socket.resetAndDestroy();
  }

  async close(): Promise<void> {
    for (const pipe of this.pipes) this.dropHeld(pipe);
    this.pipes.clear();
    for (const socket of [...this.sockets]) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.cut.delete(socket);
    });
    // Errors (ECONNRESET after a reset, EPIPE) end the pair; the 'close' handlers clean up.
    socket.on('error', () => socket.destroy());
  }

  private accept(client: Socket): void {
    if (this.shape.refuseNew) {
      this.connectionsRefused++;
      client.resetAndDestroy();
      this.emit('refused');
      return;
    }
    this.connectionsAccepted++;
    const upstream = connect({ host: this.target.host, port: this.target.port });
    this.track(client);
    this.track(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const toTarget: Pipe = { from: client, to: upstream, direction: 'toTarget', nextFreeMs: 0, held: [], timer: null };
    const toClient: Pipe = { from: upstream, to: client, direction: 'toClient', nextFreeMs: 0, held: [], timer: null };
    this.pipes.add(toTarget).add(toClient);
    // A side that closes closes the other at once; chunks still delayed are dropped with it.
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
      for (const pipe of [toTarget, toClient]) {
        this.dropHeld(pipe);
        this.pipes.delete(pipe);
      }
    };
    client.once('close', closeBoth);
    upstream.once('close', closeBoth);
    client.on('data', (chunk: Buffer) => this.carry(toTarget, chunk));
    upstream.on('data', (chunk: Buffer) => this.carry(toClient, chunk));
  }

  private carry(pipe: Pipe, chunk: Buffer): void {
    const shape = this.shape;
    if (shape.swallow.has(pipe.direction) || this.cut.has(pipe.from)) {
      this.swallowedBytes[pipe.direction] += chunk.length;
      this.emit('swallowed', pipe.direction, chunk.length);
      return;
    }
    const nowMs = performance.now();
    const jitter = shape.jitterMs === 0 ? 0 : (this.random.next() * 2 - 1) * shape.jitterMs;
    const transmitMs = shape.bytesPerSecond === null ? 0 : (chunk.length / shape.bytesPerSecond) * 1000;
    // Never before the chunk ahead of it: a byte stream keeps its order however the delays fall.
    const leaveMs = Math.max(nowMs + Math.max(0, shape.delayMs + jitter), pipe.nextFreeMs) + transmitMs;
    pipe.nextFreeMs = leaveMs;
    if (pipe.held.length === 0 && leaveMs <= nowMs) {
      this.send(pipe, chunk);
      return;
    }
    pipe.held.push({ chunk, leaveMs });
    if (pipe.timer === null) this.armRelease(pipe);
  }

  /**
   * Wake when the head of the pipe's queue may leave. Only the head has a timer: Node truncates
   * each timer's duration to whole ms from the loop time it was set at, so two timers set for
   * the same moment from different points fire in either order (35-42 % of pairs set 0-1.5 ms
   * apart, on Node 20). A timer per chunk sent a chunk that drew a shorter delay ahead of the one before
   * it, and a replica protocol frame split over the two arrived scrambled (S07).
   */
  private armRelease(pipe: Pipe): void {
    const head = pipe.held[0];
    if (head === undefined) return;
    pipe.timer = setTimeout(() => this.release(pipe), Math.max(0, Math.ceil(head.leaveMs - performance.now())));
  }

  /** Send every held chunk whose time has come, in order, then wait for the next. */
  private release(pipe: Pipe): void {
    pipe.timer = null;
    const nowMs = performance.now();
    let due = 0;
    while (due < pipe.held.length && pipe.held[due]!.leaveMs <= nowMs) due++;
    for (const { chunk } of pipe.held.splice(0, due)) this.send(pipe, chunk);
    this.armRelease(pipe);
  }

  private send(pipe: Pipe, chunk: Buffer): void {
    if (pipe.to.destroyed) return;
    this.forwardedBytes[pipe.direction] += chunk.length;
    pipe.to.write(chunk);
    this.emit('forwarded', pipe.direction, chunk.length);
  }

  private dropHeld(pipe: Pipe): void {
    if (pipe.timer !== null) clearTimeout(pipe.timer);
    pipe.timer = null;
    pipe.held.length = 0;
  }
}
