// One NBD client connection: moves bytes between a socket and an NbdServerSession, runs the
// session's block requests against the BlockDevice and feeds the completions back. It knows no
// protocol; everything about NBD is in src/format/nbd.
import type { Socket } from 'node:net';
import type { BlockDevice } from '../lib/block-device.ts';
import { ShorthornError } from '../lib/errors.ts';
import type { NbdBlockRequest, NbdBlockResult, NbdSessionOutput, NbdServerSession } from '../format/nbd/nbd-server-session.ts';

export type NbdLogLevel = 'info' | 'warn';
export type NbdLog = (level: NbdLogLevel, message: string) => void;

/** Write zeroes with NO_HOLE are real writes of this shared, never-modified buffer, chunk by chunk. */
const zeroChunk = new Uint8Array(1024 * 1024);

export interface NbdConnectionOptions {
  readonly socket: Socket;
  readonly session: NbdServerSession;
  readonly device: BlockDevice;
  readonly name: string;
  readonly log: NbdLog;
  /** Stop reading while this many reply bytes wait in the socket's send buffer (a client that does not read). */
  readonly sendBufferMaxBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly onClosed: () => void;
}

export class NbdConnection {
  private readonly socket: Socket;
  private readonly session: NbdServerSession;
  private readonly device: BlockDevice;
  private readonly log: NbdLog;
  readonly name: string;
  private readonly sendBufferMaxBytes: number;
  private handshakeTimer: NodeJS.Timeout | undefined;
  /** The socket is gone (closed or destroyed): outputs are dropped. */
  private gone = false;
  private paused = false;
  private corked = false;
  private readonly finished: Promise<void>;

  constructor(options: NbdConnectionOptions) {
    this.socket = options.socket;
    this.session = options.session;
    this.device = options.device;
    this.log = options.log;
    this.name = options.name;
    this.sendBufferMaxBytes = options.sendBufferMaxBytes;
    this.finished = new Promise<void>((resolve) => {
      this.socket.once('close', () => {
        this.gone = true;
        this.clearHandshakeTimer();
        options.onClosed();
        resolve();
      });
    });
    this.socket.on('data', (chunk: Buffer) => this.apply(this.session.step({ kind: 'received', bytes: chunk })));
    this.socket.on('end', () => this.apply(this.session.step({ kind: 'peerEnded' })));
    this.socket.on('drain', () => this.updateFlow());
    this.socket.on('error', (error: NodeJS.ErrnoException) => {
      // Resets and broken pipes are how misbehaving clients leave (and how some polite ones leave
      // after ABORT or DISC, without reading our last reply); the socket closes after this.
      const level = this.session.closed ? 'info' : 'warn';
      this.log(level, `${this.name}: socket error ${error.code ?? ''}: ${error.message}`);
    });
    this.handshakeTimer = setTimeout(() => {
      this.log('warn', `${this.name}: no handshake within ${options.handshakeTimeoutMs} ms, disconnecting`);
      this.socket.destroy();
    }, options.handshakeTimeoutMs);
    this.handshakeTimer.unref();
    this.apply(this.session.start());
  }

  /** Resolves when the socket has closed. */
  closed(): Promise<void> {
    return this.finished;
  }

  /** Drop the connection now (server shutdown); in-flight device calls finish and are ignored. */
  destroy(): void {
    this.socket.destroy();
  }

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer !== undefined) {
      clearTimeout(this.handshakeTimer);
      this.handshakeTimer = undefined;
    }
  }

  private apply(outputs: readonly NbdSessionOutput[]): void {
    // Corked until the end of this turn of the event loop: the header and data of a reply, and
    // every reply completed in the same turn (replica replies arrive in batches), leave in one
    // writev. A system call per reply was the largest cost of a busy connection.
    this.corkForThisTick();
    this.applyCorked(outputs);
    if (this.handshakeTimer !== undefined && this.session.transmitting) this.clearHandshakeTimer();
    this.updateFlow();
  }

  private applyCorked(outputs: readonly NbdSessionOutput[]): void {
    for (const output of outputs) {
      if (this.gone) return;
      switch (output.kind) {
        case 'send':
          this.socket.write(output.bytes);
          break;
        case 'submit':
          void this.run(output.id, output.request);
          break;
        case 'close':
          this.log(output.clean ? 'info' : 'warn', `${this.name}: closing: ${output.reason}`);
          // Let the replies already queued reach the client, then close both directions.
          this.socket.end(() => this.socket.destroy());
          break;
      }
    }
  }

  private corkForThisTick(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    // setImmediate runs after every I/O callback (and its promise jobs) of this turn.
    setImmediate(() => {
      this.corked = false;
      this.socket.uncork();
      this.updateFlow();
    });
  }

  private updateFlow(): void {
    if (this.gone) return;
    const want = this.session.wantsInput() && this.socket.writableLength < this.sendBufferMaxBytes;
    if (want && this.paused) {
      this.paused = false;
      this.socket.resume();
    } else if (!want && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /**
   * Run one request and feed its outcome back. Device failures become error replies; a failure
   * inside the session (a broken invariant) escapes as an unhandled rejection on purpose, so the
   * process's last-resort handler stops it.
   */
  private async run(id: number, request: NbdBlockRequest): Promise<void> {
    let result: NbdBlockResult;
    try {
      result = await this.execute(request);
    } catch (error) {
      const code = error instanceof ShorthornError ? (error as ShorthornError).code : 'io';
      const message = error instanceof Error ? error.message : String(error);
      if (code === 'io' || code === 'timeout') this.log('warn', `${this.name}: ${request.kind} failed: ${message}`);
      result = { kind: 'error', code, message };
    }
    if (!this.gone) this.apply(this.session.step({ kind: 'completed', id, result }));
  }

  private async execute(request: NbdBlockRequest): Promise<NbdBlockResult> {
    const device = this.device;
    switch (request.kind) {
      case 'read':
        return { kind: 'data', data: await device.read(request.offsetBytes, request.lengthBytes) };
      case 'write':
        await device.write(request.offsetBytes, request.data, { fua: request.fua });
        return { kind: 'done' };
      case 'writeZeroes':
        if (request.noHole) {
          // The client wants the range provisioned: write real zeros rather than punch a hole.
          for (let at = 0; at < request.lengthBytes; at += zeroChunk.length) {
            const n = Math.min(zeroChunk.length, request.lengthBytes - at);
            await device.write(request.offsetBytes + at, zeroChunk.subarray(0, n), { fua: request.fua });
          }
        } else {
          await device.writeZeroes(request.offsetBytes, request.lengthBytes, { fua: request.fua });
        }
        return { kind: 'done' };
      case 'trim':
        await device.trim(request.offsetBytes, request.lengthBytes);
        // trim() takes no FUA; a flush after it gives the same guarantee.
        if (request.fua) await device.flush();
        return { kind: 'done' };
      case 'flush':
        // The BlockDevice contract: flush makes every completed write durable, from any
        // connection. That is what lets us advertise CAN_MULTI_CONN when the device says so.
        await device.flush();
        return { kind: 'done' };
      case 'blockStatus':
        return { kind: 'extents', extents: await device.blockStatus(request.offsetBytes, request.lengthBytes) };
    }
  }
}
