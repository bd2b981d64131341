// A seeded HTTP fault proxy for an S3 server on loopback (reliability notes §7.3 S21). The TCP
// proxy (fault-proxy.ts) cannot tell one S3 request from another; this one forwards each HTTP
// request to the target unchanged (headers included, so SigV4 signatures still verify) and can
// instead, by seeded chance or for chosen requests:
//   errorRate(p)              answer 503 ServiceUnavailable without forwarding (the SDK retries)
//   resetPuts(match, bytes)   forward the first `bytes` of a matching PUT's body, then reset both
//                             connections (RST): an upload cut off mid-object
//   delay(ms, jitter)         hold each answer ms ± jitter before it is sent (a slow store)
// Counters say what fired, so a test can require that a fault acted.
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { SeededRandom } from '../../src/lib/random.ts';

export interface HttpFaultCounts {
  forwarded: number;
  errors: number;
  resets: number;
  delayed: number;
}

export class HttpFaultProxy {
  readonly seed: number;
  readonly counts: HttpFaultCounts = { forwarded: 0, errors: 0, resets: 0, delayed: 0 };
  private readonly server: Server;
  private readonly random: SeededRandom;
  private readonly targetPort: number;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private errorProbability = 0;
  private resetRule: { match: RegExp; afterBytes: number; remaining: number } | undefined;
  private delayMs = 0;
  private jitterMs = 0;

  private constructor(server: Server, targetPort: number, seed: number) {
    this.server = server;
    this.targetPort = targetPort;
    this.seed = seed;
    this.random = new SeededRandom(seed);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.handle(req, res));
  }

  static async start(options: { targetPort: number; seed: number }): Promise<HttpFaultProxy> {
    const server = createServer({ keepAlive: true });
    const proxy = new HttpFaultProxy(server, options.targetPort, options.seed);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  get endpoint(): string {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('HTTP fault proxy is not listening on TCP');
    return `http://127.0.0.1:${address.port}`;
  }

  errorRate(probability: number): this {
    this.errorProbability = probability;
    return this;
  }

  /** Cut off the next `count` PUTs whose path matches after `afterBytes` of their body. */
  resetPuts(match: RegExp, afterBytes: number, count = Number.POSITIVE_INFINITY): this {
    this.resetRule = { match, afterBytes, remaining: count };
    return this;
  }

  delay(delayMs: number, jitterMs = 0): this {
    this.delayMs = delayMs;
    this.jitterMs = jitterMs;
    return this;
  }

  heal(): this {
    this.errorProbability = 0;
    this.resetRule = undefined;
    this.delayMs = 0;
    this.jitterMs = 0;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.agent.destroy();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    // Draws happen in arrival order, so one seed gives one sequence of decisions.
    if (this.errorProbability > 0 && this.random.next() < this.errorProbability) {
      this.counts.errors++;
      req.resume();
      req.once('end', () => {
        const body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>injected by the test</Message></Error>';
        res.writeHead(503, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    const rule = this.resetRule;
    const cut = req.method === 'PUT' && rule !== undefined && rule.remaining > 0 && rule.match.test(req.url ?? '') ? rule : undefined;
    if (cut !== undefined) cut.remaining--;
    const headers = { ...req.headers };
    // Unsigned by SigV4; dropping it lets the body flow at once (Node's server already said 100).
    delete headers['expect'];
    const upstream = request({ host: '127.0.0.1', port: this.targetPort, method: req.method, path: req.url, headers, agent: this.agent });
    upstream.on('error', () => {
      if (!res.headersSent) res.socket?.resetAndDestroy();
    });
    upstream.on('response', (answer) => {
      const send = (): void => {
        this.counts.forwarded++;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      };
      const wait = this.delayMs === 0 && this.jitterMs === 0 ? 0 : Math.max(0, this.delayMs + (this.random.next() * 2 - 1) * this.jitterMs);
      if (wait === 0) send();
      else {
        this.counts.delayed++;
        setTimeout(send, wait); // the injected latency itself
      }
    });
    if (cut === undefined) {
      req.pipe(upstream);
      return;
    }
    let seen = 0;
    req.on('data', (chunk: Buffer) => {
      if (seen >= cut.afterBytes) return;
      const room = cut.afterBytes - seen;
      seen += chunk.length;
      upstream.write(room >= chunk.length ? chunk : chunk.subarray(0, room));
      if (seen >= cut.afterBytes) {
        this.counts.resets++;
        upstream.destroy();
        req.socket.resetAndDestroy();
      }
    });
    req.on('end', () => {
      if (seen < cut.afterBytes) upstream.end(); // a body shorter than the cut passes whole
    });
  }
}
