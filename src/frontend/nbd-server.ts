// The NBD server: unix-socket and TCP listeners in front of one BlockDevice. Each accepted socket
// gets its own session (src/format/nbd) and connection driver; a misbehaving client loses only
// its own connection.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { chmod, lstat, rm } from 'node:fs/promises';
import type { BlockDevice } from '../lib/block-device.ts';
import { ShorthornError } from '../lib/errors.ts';
import { nbdConnectionsMax, nbdHandshakeTimeoutMs, requestSizeMaxBytes } from '../lib/limits.ts';
import { NbdServerSession, defaultNbdSessionLimits, type NbdSessionLimits } from '../format/nbd/nbd-server-session.ts';
import { NbdConnection, type NbdLog } from './nbd-connection.ts';

export type NbdServerErrorCode = 'address_in_use' | 'not_a_socket' | 'closed';
export class NbdServerError extends ShorthornError<NbdServerErrorCode> {}

export type NbdEndpoint =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

export interface NbdServerOptions {
  /** The export's name; clients may also ask for the default (empty) name. */
  readonly exportName?: string;
  readonly description?: string;
  readonly readOnly?: boolean;
  readonly connectionsMax?: number;
  readonly limits?: NbdSessionLimits;
  /** A client that has not finished the handshake by then is disconnected. */
  readonly handshakeTimeoutMs?: number;
  readonly log?: NbdLog;
  /** Why new clients are refused right now (a restore is writing the volume), or null. */
  readonly refuseReason?: () => string | null;
}

export class NbdServer {
  private readonly device: BlockDevice;
  private readonly options: NbdServerOptions;
  private readonly log: NbdLog;
  private readonly connectionsMax: number;
  private readonly servers: { server: Server; endpoint: NbdEndpoint }[] = [];
  private readonly connections = new Set<NbdConnection>();
  private nextConnection = 1;
  private closing = false;

  constructor(device: BlockDevice, options: NbdServerOptions = {}) {
    this.device = device;
    this.options = options;
    this.log = options.log ?? ((): void => {});
    this.connectionsMax = options.connectionsMax ?? nbdConnectionsMax;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Start listening; resolves with the bound address (the real port when asked for port 0). */
  async listen(endpoint: NbdEndpoint): Promise<NbdEndpoint> {
    if (this.closing) throw new NbdServerError('closed', 'Cannot listen: the NBD server is closed');
    if (endpoint.kind === 'unix') await removeStaleSocket(endpoint.path);
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (endpoint.kind === 'unix') server.listen(endpoint.path, resolve);
      else server.listen(endpoint.port, endpoint.host, resolve);
    });
    server.on('error', (error) => this.log('warn', `listener error: ${error.message}`));
    let bound: NbdEndpoint = endpoint;
    if (endpoint.kind === 'unix') {
      // Only the owner (root, for the kernel client or nbdfuse) may talk to the volume.
      await chmod(endpoint.path, 0o600);
    } else {
      const address = server.address();
      if (address !== null && typeof address === 'object') bound = { kind: 'tcp', host: address.address, port: address.port };
    }
    this.servers.push({ server, endpoint: bound });
    this.log('info', `serving NBD on ${describe(bound)}`);
    return bound;
  }

  /** Stop listening, drop every connection, and wait until the sockets are closed. */
  async close(): Promise<void> {
    this.closing = true;
    const closings = this.servers.map(
      ({ server }) => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    const connections = [...this.connections];
    for (const c of connections) c.destroy();
    await Promise.all([...closings, ...connections.map((c) => c.closed())]);
    for (const { endpoint } of this.servers) {
      if (endpoint.kind === 'unix') await rm(endpoint.path, { force: true });
    }
    this.servers.length = 0;
  }

  private accept(socket: Socket): void {
    const name = `nbd#${this.nextConnection++}`;
    if (this.closing || this.connections.size >= this.connectionsMax) {
      this.log('warn', `${name}: refused, ${this.connections.size} connections is the limit`);
      socket.destroy();
      return;
    }
    const refused = this.options.refuseReason?.() ?? null;
    if (refused !== null) {
      this.log('warn', `${name}: refused: ${refused}`);
      socket.destroy();
      return;
    }
    if (socket.remoteAddress !== undefined) socket.setNoDelay(true);
    const limits = this.options.limits ?? defaultNbdSessionLimits;
    // The size is read per connection: a resized volume shows its new size on reconnect.
    const session = new NbdServerSession(
      {
        name: this.options.exportName ?? '',
        description: this.options.description ?? '',
        sizeBytes: this.device.sizeBytes(),
        readOnly: this.options.readOnly ?? false,
        capabilities: this.device.capabilities,
      },
      limits,
    );
    const connection: NbdConnection = new NbdConnection({
      socket,
      session,
      device: this.device,
      name,
      log: this.log,
      sendBufferMaxBytes: Math.max(limits.inflightBytesMax, requestSizeMaxBytes),
      handshakeTimeoutMs: this.options.handshakeTimeoutMs ?? nbdHandshakeTimeoutMs,
      onClosed: () => this.connections.delete(connection),
    });
    this.connections.add(connection);
  }
}

function describe(endpoint: NbdEndpoint): string {
  return endpoint.kind === 'unix' ? `unix:${endpoint.path}` : `tcp:${endpoint.host}:${endpoint.port}`;
}

/** A socket file left by a killed server is removed; a live one, or any other file, is not. */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!isSocket) throw new NbdServerError('not_a_socket', `Cannot listen on ${path}: a file that is not a socket is there`);
  const live = await new Promise<boolean>((resolve, reject) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') resolve(false);
      else reject(error);
    });
  });
  if (live) throw new NbdServerError('address_in_use', `Cannot listen on ${path}: another server is serving it`);
  await rm(path, { force: true });
}
