// A small pipelined NBD client for fault scenarios: fixed-newstyle handshake with NBD_OPT_GO,
// simple replies, requests matched to replies by handle, so many operations can be in flight on
// one connection. Built on the byte-exact test codec (format/nbd/testing), independent of the
// server code. A connection that closes fails every pending request with NbdDisconnected, which
// the workload treats as "outcome unknown" (the engine may have died mid-write).
import { connect, type Socket } from 'node:net';
import { Command, CommandFlag, Option, OptionReply } from '../../src/format/nbd/nbd-constants.ts';
import { ServerStreamReader, clientFlags, infoPayload, option, request } from '../../src/format/nbd/testing/nbd-test-client.ts';

export class NbdDisconnected extends Error {}

export class NbdRequestError extends Error {
  readonly errno: number;
  constructor(what: string, errno: number) {
    super(`${what} failed with NBD error ${errno}`);
    this.errno = errno;
  }
}

/** What a request got: 'ok', or the NBD error or disconnection it failed with (anything else is thrown). */
export async function nbdOutcome(what: () => Promise<unknown>): Promise<string> {
  try {
    await what();
    return 'ok';
  } catch (error) {
    if (error instanceof NbdRequestError || error instanceof NbdDisconnected) return error.message;
    throw error;
  }
}

interface Pending {
  readonly what: string;
  resolve(data: Uint8Array): void;
  reject(error: Error): void;
}

export class NbdWorkloadClient {
  private readonly socket: Socket;
  private readonly reader = new ServerStreamReader();
  private readonly pending = new Map<bigint, Pending>();
  private nextHandle = 1n;
  private closedWith: Error | null = null;
  private handshakeDone: (() => void) | null = null;
  private handshakeFailed: ((error: Error) => void) | null = null;
  private stage: 'greeting' | 'options' | 'transmission' = 'greeting';

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.close(new NbdDisconnected(`NBD connection error: ${error.message}`)));
    socket.on('close', () => this.close(new NbdDisconnected('NBD connection closed')));
  }

  /** Connect to a unix socket and finish the handshake. */
  static async connect(path: string, exportName: string, timeoutMs = 10000): Promise<NbdWorkloadClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const client = new NbdWorkloadClient(socket);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`NBD handshake with ${path} took over ${timeoutMs} ms`)), timeoutMs);
      client.handshakeDone = () => {
        clearTimeout(timer);
        resolve();
      };
      client.handshakeFailed = (error) => {
        clearTimeout(timer);
        reject(error);
      };
      client.exportName = exportName;
    });
    return client;
  }

  private exportName = '';

  read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    return this.send('read', { type: Command.read, offset: offsetBytes, length: lengthBytes }, lengthBytes);
  }

  async write(offsetBytes: number, data: Uint8Array, options: { fua?: boolean } = {}): Promise<void> {
    await this.send('write', { type: Command.write, flags: options.fua === true ? CommandFlag.fua : 0, offset: offsetBytes, data }, 0);
  }

  async flush(): Promise<void> {
    await this.send('flush', { type: Command.flush }, 0);
  }

  async trim(offsetBytes: number, lengthBytes: number): Promise<void> {
    await this.send('trim', { type: Command.trim, offset: offsetBytes, length: lengthBytes }, 0);
  }

  async writeZeroes(offsetBytes: number, lengthBytes: number): Promise<void> {
    await this.send('write zeroes', { type: Command.writeZeroes, offset: offsetBytes, length: lengthBytes }, 0);
  }

  get inflight(): number {
    return this.pending.size;
  }

  destroy(): void {
    this.socket.destroy();
    this.close(new NbdDisconnected('NBD client closed'));
  }

  private send(what: string, r: { type: number; flags?: number; offset?: number; length?: number; data?: Uint8Array }, readLength: number): Promise<Uint8Array> {
    if (this.closedWith !== null) return Promise.reject(this.closedWith);
    const handle = this.nextHandle++;
    const label = `${what} ${r.offset ?? 0}+${r.length ?? r.data?.length ?? 0}`;
    if (readLength > 0) this.reader.expectRead(handle, readLength);
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.set(handle, { what: label, resolve, reject });
      this.socket.write(request({ ...r, handle }));
    });
  }

  private onData(chunk: Buffer): void {
    this.reader.push(chunk);
    try {
      if (this.stage === 'greeting') {
        if (this.reader.raw(18) === undefined) return;
        this.stage = 'options';
        this.socket.write(clientFlags(3));
        this.socket.write(option(Option.go, infoPayload(this.exportName, [])));
      }
      if (this.stage === 'options') {
        for (let m = this.reader.nextOptionReply(); m !== undefined; m = this.reader.nextOptionReply()) {
          if (m.kind !== 'optionReply') continue;
          if (m.type >= 0x80000000) throw new Error(`NBD_OPT_GO refused with 0x${m.type.toString(16)}`);
          if (m.type === OptionReply.ack) {
            this.stage = 'transmission';
            this.handshakeDone?.();
            break;
          }
        }
        if (this.stage !== 'transmission') return;
      }
      for (let m = this.reader.nextReply(); m !== undefined; m = this.reader.nextReply()) {
        if (m.kind !== 'simple') throw new Error(`unexpected ${m.kind} reply`);
        const p = this.pending.get(m.handle);
        if (p === undefined) throw new Error(`reply for unknown handle ${m.handle}`);
        this.pending.delete(m.handle);
        if (m.error === 0) p.resolve(m.data);
        else p.reject(new NbdRequestError(p.what, m.error));
      }
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      this.handshakeFailed?.(e);
      this.socket.destroy();
      this.close(new NbdDisconnected(`NBD protocol error: ${e.message}`));
    }
  }

  private close(error: Error): void {
    if (this.closedWith !== null) return;
    this.closedWith = error;
    this.handshakeFailed?.(error);
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }
}
