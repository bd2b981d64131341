// The replica server: TCP and unix-socket listeners in front of one ReplicaStore, speaking the
// replica protocol (docs/replica-protocol.md). Each connection is a ReplicaConnection; all of them
// share one ReplicaRequestHandler (fencing state and the chain lock). A hostile or broken
// connection is answered and closed on its own; every other connection keeps being served.
import { createServer, type Server, type Socket } from 'node:net';
import { rm } from 'node:fs/promises';
import { replicaConnectionsMax, replicaInflightBytesMax, replicaInflightMax } from '../lib/limits.ts';
import type { ReplicaStore } from './replica-store.ts';
import { ReplicaRequestHandler } from './replica-request-handler.ts';
import { ReplicaConnection } from './replica-connection.ts';

export interface ReplicaServerOptions {
  readonly store: ReplicaStore;
  readonly log?: (message: string) => void;
  readonly connectionsMax?: number;
  readonly inflightMax?: number;
  readonly inflightBytesMax?: number;
  /** Called on a broken invariant while serving; the default rethrows so the process stops. */
  readonly onFatal?: (error: Error) => void;
  /** This replica's instance id, reported in chain_info and open replies (format/replica-identity.ts). */
  readonly instanceId?: string;
}

export interface TcpEndpoint {
  readonly host: string;
  readonly port: number;
}

export class ReplicaServer {
  private readonly handler: ReplicaRequestHandler;
  private readonly options: ReplicaServerOptions;
  private readonly log: (message: string) => void;
  private readonly listeners: Server[] = [];
  private readonly unixPaths: string[] = [];
  private readonly connections = new Set<ReplicaConnection>();
  private state: 'serving' | 'closing' = 'serving';

  constructor(options: ReplicaServerOptions) {
    this.options = options;
    this.log = options.log ?? (() => {});
    this.handler = new ReplicaRequestHandler(options.store, {
      onUnexpectedError: (error) => this.log(`unexpected error: ${error.stack ?? error.message}`),
      ...(options.instanceId === undefined ? {} : { instanceId: options.instanceId }),
    });
  }

  connectionCount(): number {
    return this.connections.size;
  }

  /** Listen on TCP; port 0 picks a free port. Resolves with the address actually bound. */
  async listenTcp(host: string, port: number): Promise<TcpEndpoint> {
    const server = this.newListener();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error(`listener on ${host}:${port} has no TCP address`);
    return { host: address.address, port: address.port };
  }

  /** Listen on a unix socket. A stale socket file (left by a killed replica) is replaced. */
  async listenUnix(path: string): Promise<void> {
    await rm(path, { force: true });
    const server = this.newListener();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.unixPaths.push(path);
  }

  private newListener(): Server {
    const server = createServer({ pauseOnConnect: false }, (socket) => this.accept(socket));
    server.on('error', (error) => this.log(`listener: ${error.message}`));
    this.listeners.push(server);
    return server;
  }

  private accept(socket: Socket): void {
    const connectionsMax = this.options.connectionsMax ?? replicaConnectionsMax;
    if (this.state !== 'serving') {
      socket.destroy();
      return;
    }
    if (this.connections.size >= connectionsMax) {
      this.log(`refusing a connection: ${this.connections.size} open, at most ${connectionsMax}`);
      ReplicaConnection.refuse(socket, this.handler, `too many connections (at most ${connectionsMax})`);
      return;
    }
    const connection = new ReplicaConnection(socket, {
      handler: this.handler,
      inflightMax: this.options.inflightMax ?? replicaInflightMax,
      inflightBytesMax: this.options.inflightBytesMax ?? replicaInflightBytesMax,
      log: this.log,
      onFatal:
        this.options.onFatal ??
        ((error) => {
          throw error;
        }),
    });
    this.connections.add(connection);
    void connection.closed.then(() => this.connections.delete(connection));
  }

  /** Stop listening, let running requests finish and their replies go out, close every connection. */
  async close(): Promise<void> {
    this.state = 'closing';
    const stopped = this.listeners.map(
      (server) => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    await Promise.all([...this.connections].map((c) => c.drainAndClose()));
    await Promise.all(stopped);
    await Promise.all(this.unixPaths.map((path) => rm(path, { force: true })));
  }
}
