// One simulated replica machine: a SimDisk, the real layered replica store over it, and the real
// request handler (fencing, range checks, error translation) behind the simulated network. The
// process can be killed (its pending disk I/O never completes, its connections die) and started
// again on the same disk; the machine can lose power (unsynced writes lost or torn).
import type { ReplicaFrameDecoder } from '../../src/format/replica-protocol/replica-frame-decoder.ts';
import { decodeReplicaRequest } from '../../src/format/replica-protocol/replica-request.ts';
import { encodeReplicaReply, type ReplicaReplyResult } from '../../src/format/replica-protocol/replica-reply.ts';
import { createReplicaStore, openReplicaStore, type LayeredReplicaStore } from '../../src/replica/layered-store.ts';
import { ReplicaRequestHandler } from '../../src/replica/replica-request-handler.ts';
import { ReplicaError } from '../../src/replica/replica-error.ts';
import type { SimDisk } from './sim-disk.ts';
import type { SimScheduler } from './sim-scheduler.ts';

/** The replica's end of one connection. */
export interface ServerEnd {
  /** The replica process incarnation the connection was made to; it dies with that process. */
  readonly serverIncarnation: number;
  readonly requestDecoder: ReplicaFrameDecoder;
  sendReply(bytes: Uint8Array): void;
}

export type NodeState = 'up' | 'down';

export class SimReplicaNode {
  readonly address: string;
  readonly disk: SimDisk;
  private readonly sim: SimScheduler;
  private readonly dir = '/replica';
  private store: LayeredReplicaStore | null = null;
  private handler: ReplicaRequestHandler | null = null;
  state: NodeState = 'down';
  incarnation = 0;
  /** Stamp of the last kill or power loss (0: never). */
  lastCrashStamp = 0;
  /** Problems a correct replica never has (corrupt files after a crash, unexpected errors). */
  readonly problems: string[] = [];
  /** Called when the process dies, so the cluster can reset its connections. */
  onDeath: (() => void) | null = null;
  private starting: Promise<boolean> | null = null;
  private deathWaiters: (() => void)[] = [];

  constructor(sim: SimScheduler, options: { address: string; disk: SimDisk }) {
    this.sim = sim;
    this.address = options.address;
    this.disk = options.disk;
  }

  async create(volumeName: string, sizeBytes: number): Promise<void> {
    const store = await createReplicaStore({ dir: this.dir, files: this.disk.view(), clock: this.sim.clock, volumeName, sizeBytes });
    this.up(store);
  }

  /**
   * Start the process on its disk (one start at a time). Resolves false if the store could not be
   * opened for an I/O error, or if the machine crashed again while it was starting.
   */
  start(): Promise<boolean> {
    if (this.state === 'up') return Promise.resolve(true);
    if (this.starting === null) {
      this.starting = this.open().finally(() => (this.starting = null));
    }
    return this.starting;
  }

  private async open(): Promise<boolean> {
    const incarnation = this.incarnation;
    // The open's disk I/O never completes if the process dies meanwhile: stop waiting then.
    const died = new Promise<null>((resolve) => this.deathWaiters.push(() => resolve(null)));
    try {
      const store = await Promise.race([openReplicaStore({ dir: this.dir, files: this.disk.view(), clock: this.sim.clock }), died]);
      if (store === null || incarnation !== this.incarnation) return false;
      this.up(store);
      return true;
    } catch (error) {
      const code = error instanceof ReplicaError ? error.code : 'unexpected';
      this.sim.trace(`${this.address} open failed (${code}): ${error instanceof Error ? error.message : String(error)}`);
      // An I/O error at start-up is the injected disk's doing; anything else means the files a
      // crash left behind cannot be trusted: invariant 5 (no half-applied operation) is broken.
      if (code !== 'io' && code !== 'no_space') this.problems.push(`${this.address}: cannot reopen after a crash (${code}): ${String(error)}`);
      return false;
    }
  }

  private up(store: LayeredReplicaStore): void {
    this.store = store;
    this.handler = new ReplicaRequestHandler(store, {
      onUnexpectedError: (error) => {
        this.sim.trace(`${this.address} unexpected error: ${error.message}`);
      },
    });
    this.state = 'up';
    this.sim.trace(`${this.address} up (incarnation ${this.incarnation}, epoch ${store.chain().membership.epoch}, generation ${store.chain().membership.generation})`);
  }

  /** kill -9: the process and its connections are gone; the page cache survives. */
  kill(why: string): void {
    this.die(why);
    this.disk.killProcess();
  }

  /** The machine loses power: the process dies and unsynced writes are lost or torn. */
  powerLoss(why: string): void {
    this.die(why);
    this.disk.powerLoss();
  }

  private die(why: string): void {
    this.sim.trace(`${this.address} ${why}`);
    this.store = null;
    this.handler = null;
    this.state = 'down';
    this.incarnation++;
    this.lastCrashStamp = this.sim.stamp();
    for (const wake of this.deathWaiters.splice(0)) wake();
    this.onDeath?.();
  }

  /** The store of the running process (for the final comparison of replicas). */
  runningStore(): LayeredReplicaStore | null {
    return this.store;
  }

  /** Bytes of a request arrived on `end`: decode and run them through the real handler. */
  receive(end: ServerEnd, bytes: Uint8Array): void {
    const handler = this.handler;
    if (this.state !== 'up' || handler === null || end.serverIncarnation !== this.incarnation) return;
    end.requestDecoder.push(bytes);
    for (;;) {
      const next = end.requestDecoder.next();
      if (next.kind === 'need_more') return;
      if (next.kind !== 'frame') {
        this.problems.push(`${this.address}: undecodable request from the engine: ${next.kind}`);
        return;
      }
      const decoded = decodeReplicaRequest(next.frame);
      if (decoded.kind === 'invalid') {
        this.problems.push(`${this.address}: invalid request from the engine: ${decoded.message}`);
        return;
      }
      const { envelope } = decoded;
      const incarnation = this.incarnation;
      this.sim.spawn(`${this.address} ${envelope.request.op}`, async () => {
        const result: ReplicaReplyResult = await handler.handle(envelope);
        // A reply from a process that has died since is never sent.
        if (incarnation !== this.incarnation) return;
        end.sendReply(encodeReplicaReply({ requestId: envelope.requestId, volumeName: handler.volumeName, epoch: handler.acceptedEpoch, result }));
      });
    }
  }
}
