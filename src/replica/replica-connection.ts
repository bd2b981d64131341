// One engine connection to a replica server: bytes from the socket go through the frame decoder,
// requests run concurrently and reply out of order, and the in-flight window (count and bytes)
// is bounded: when it is full the connection stops taking frames and pauses the socket, so a fast
// or hostile client pushes back on its own TCP window instead of on our memory. A request stays
// "in flight" until its reply has been handed to the kernel, so a client that does not read its
// replies stops being served too.
import type { Socket } from 'node:net';
import { AssertionError } from '../lib/assert.ts';
import { ReplicaFrameDecoder } from '../format/replica-protocol/replica-frame-decoder.ts';
import { decodeReplicaRequest, type ReplicaRequestEnvelope } from '../format/replica-protocol/replica-request.ts';
import { encodeReplicaReply, encodeReplicaReplyParts, type ReplicaReplyResult } from '../format/replica-protocol/replica-reply.ts';
import type { ReplicaErrorCode } from '../format/replica-protocol/replica-ops.ts';
import type { ReplicaRequestHandler } from './replica-request-handler.ts';

export interface ReplicaConnectionOptions {
  readonly handler: ReplicaRequestHandler;
  readonly inflightMax: number;
  readonly inflightBytesMax: number;
  readonly log: (message: string) => void;
  /** A broken invariant in request handling: the process must stop (last-resort handler). */
  readonly onFatal: (error: Error) => void;
}

/** How long a peer that sent garbage gets to read our parting error before we cut it off. */
const lingerMs = 1000;

function requestBytes(envelope: ReplicaRequestEnvelope): number {
  const { request } = envelope;
  if (request.op === 'read' || request.op === 'read_layer') return request.lengthBytes;
  if (request.op === 'write') return request.data.length;
  return 0;
}

export class ReplicaConnection {
  private readonly socket: Socket;
  private readonly options: ReplicaConnectionOptions;
  private readonly decoder = new ReplicaFrameDecoder();
  private inflight = 0;
  private inflightBytes = 0;
  private corked = false;
  private state: 'open' | 'draining' | 'closed' = 'open';
  private readonly idleWaiters: (() => void)[] = [];
  readonly closed: Promise<void>;

  constructor(socket: Socket, options: ReplicaConnectionOptions) {
    this.socket = socket;
    this.options = options;
    socket.setNoDelay(true);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      // A plain Uint8Array view: the store gets one data type whatever the transport.
      this.decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      this.pump();
    });
    socket.on('error', (error) => {
      options.log(`connection ${this.peer()}: ${error.message}`);
    });
    socket.once('close', () => {
      this.state = 'closed';
      this.wakeIdle();
    });
  }

  private peer(): string {
    return this.socket.remoteAddress === undefined ? 'unix' : `${this.socket.remoteAddress}:${this.socket.remotePort}`;
  }

  /** Take frames while the window has room; pause the socket when it is full. */
  private pump(): void {
    while (this.state === 'open') {
      if (this.inflight >= this.options.inflightMax || this.inflightBytes >= this.options.inflightBytesMax) {
        this.socket.pause();
        return;
      }
      const result = this.decoder.next();
      switch (result.kind) {
        case 'need_more':
          if (this.socket.isPaused()) this.socket.resume();
          return;
        case 'frame': {
          const decoded = decodeReplicaRequest(result.frame);
          if (decoded.kind === 'invalid') {
            this.sendError(decoded.requestId, decoded.opCode, decoded.code, decoded.message);
          } else {
            this.start(decoded.envelope);
          }
          break;
        }
        case 'invalid':
          this.sendError(result.header.requestId, result.header.opCode, result.code, result.message);
          break;
        case 'fatal':
          this.options.log(`connection ${this.peer()}: closing: ${result.message}`);
          this.sendError(0, 0, 'bad_request', `closing the connection: ${result.message}`);
          this.hangUp();
          return;
      }
    }
  }

  private start(envelope: ReplicaRequestEnvelope): void {
    const bytes = requestBytes(envelope);
    this.inflight++;
    this.inflightBytes += bytes;
    this.options.handler.handle(envelope).then(
      (result) => this.reply(envelope.requestId, result, bytes),
      (error: unknown) => {
        // Only a broken invariant gets here (handle() answers every operating error).
        this.options.onFatal(error instanceof Error ? error : new AssertionError(String(error)));
      },
    );
  }

  private reply(requestId: number, result: ReplicaReplyResult, bytes: number): void {
    const done = (): void => {
      this.inflight--;
      this.inflightBytes -= bytes;
      if (this.inflight === 0) this.wakeIdle();
      this.pump();
    };
    if (this.state === 'closed' || this.socket.destroyed) {
      done();
      return;
    }
    const frame = encodeReplicaReplyParts({
      requestId,
      volumeName: this.options.handler.volumeName,
      epoch: this.options.handler.acceptedEpoch,
      result,
    });
    // Header and payload as two pieces of the corked writev: a read's data is not copied into a
    // frame. The callback (on the last piece) runs once the kernel has the bytes, or with an
    // error when the socket died; either way this request no longer holds memory on our side.
    this.corkForThisTick();
    if (frame.payload.length === 0) {
      this.socket.write(frame.header, done);
    } else {
      this.socket.write(frame.header);
      this.socket.write(frame.payload, done);
    }
  }

  private sendError(requestId: number, opCode: number, code: ReplicaErrorCode, message: string): void {
    if (this.socket.destroyed) return;
    this.socket.write(
      encodeReplicaReply({
        requestId,
        volumeName: this.options.handler.volumeName,
        epoch: this.options.handler.acceptedEpoch,
        result: { kind: 'error', opCode, code, message },
      }),
    );
  }

  /**
   * Replies finished in one turn of the event loop (file reads complete in batches from the
   * thread pool) leave in one writev: one system call instead of one per reply, the largest CPU
   * cost of a busy replica. setImmediate, not nextTick: it runs after every completion that this
   * turn of the loop delivers, so they all share the write.
   */
  private corkForThisTick(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    setImmediate(() => {
      this.corked = false;
      this.socket.uncork();
    });
  }

  /** Stop reading, let the peer read what we wrote, then cut it off if it lingers. */
  private hangUp(): void {
    this.state = 'closed';
    this.socket.pause();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), lingerMs).unref();
  }

  /** Refuse new requests, finish the ones running, then close. */
  async drainAndClose(): Promise<void> {
    if (this.state === 'open') this.state = 'draining';
    this.socket.pause();
    while (this.inflight > 0 && this.state !== 'closed') {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    this.socket.end();
    setTimeout(() => this.socket.destroy(), lingerMs).unref();
    await this.closed;
  }

  private wakeIdle(): void {
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Refuse a connection over the limit: one error frame, then close. */
  static refuse(socket: Socket, handler: ReplicaRequestHandler, message: string): void {
    socket.on('error', () => {
      // The peer may reset before reading our refusal; nothing to do for a connection we refused.
    });
    socket.end(
      encodeReplicaReply({
        requestId: 0,
        volumeName: handler.volumeName,
        epoch: handler.acceptedEpoch,
        result: { kind: 'error', opCode: 0, code: 'overloaded', message },
      }),
    );
    setTimeout(() => socket.destroy(), lingerMs).unref();
  }
}
