// The simulated volume: replica machines, the network, and the current engine (started with the
// real startEngine over SimReplicaLinks). Plays the supervisor too: it starts engines, crashes them,
// kills and restarts replica processes, and restarts the engine when it has no replica left.
import { startEngine } from '../../src/engine/engine-start.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { SimDisk } from './sim-disk.ts';
import { SimNetwork } from './sim-network.ts';
import { SimReplicaLink, type PlantedLinkBug } from './sim-replica-link.ts';
import { SimReplicaNode } from './sim-replica-node.ts';
import type { SimScheduler } from './sim-scheduler.ts';

/** One engine process: its links, and a promise that resolves when it dies. */
export class EngineEra {
  readonly engine: Engine;
  readonly links: readonly SimReplicaLink[];
  readonly epoch: number;
  readonly died: Promise<void>;
  alive = true;
  private markDied!: () => void;

  constructor(engine: Engine, links: readonly SimReplicaLink[]) {
    this.engine = engine;
    this.links = links;
    this.epoch = engine.status().epoch;
    this.died = new Promise((resolve) => (this.markDied = resolve));
  }

  die(): void {
    if (!this.alive) return;
    this.alive = false;
    for (const link of this.links) link.engineDied();
    this.markDied();
  }
}

export interface ClusterOptions {
  readonly volumeName: string;
  readonly sizeBytes: number;
  readonly replicaCount: number;
  readonly timeoutMs: number;
  readonly minimumWriteReplicas: number;
  /** A planted defect in the links to this replica (index), for tests of the checker. */
  readonly bug?: { readonly link: PlantedLinkBug; readonly replica: number };
}

export class SimCluster {
  readonly sim: SimScheduler;
  readonly network: SimNetwork;
  readonly nodes: SimReplicaNode[] = [];
  readonly options: ClusterOptions;
  era: EngineEra | null = null;
  engineStarts = 0;
  /** Stamp of the last engine start (replica crashes after it may cost unflushed writes). */
  private lastStartStamp = 0;
  private readyWaiters: (() => void)[] = [];
  /**
   * Told of every engine start before any client may use the new engine, with whether the chosen
   * replicas may have forgotten unflushed writes (the model must know before the first read).
   */
  onEngineStarted: (amnesia: boolean) => void = () => {};
  /** True while a restart of the engine is under way (only one at a time). */
  restarting = false;

  constructor(sim: SimScheduler, options: ClusterOptions) {
    this.sim = sim;
    this.options = options;
    this.network = new SimNetwork(sim, options.timeoutMs);
    for (let i = 0; i < options.replicaCount; i++) {
      const address = `10.0.0.${i + 1}:7000`;
      const node = new SimReplicaNode(sim, { address, disk: new SimDisk(sim, address) });
      node.onDeath = () => this.resetLinksTo(node);
      this.nodes.push(node);
    }
  }

  async create(): Promise<void> {
    for (const node of this.nodes) await node.create(this.options.volumeName, this.options.sizeBytes);
  }

  /** The engine, if one is alive. */
  get engine(): Engine | null {
    return this.era?.alive === true ? this.era.engine : null;
  }

  /** Resolves when an engine is alive. */
  whenEngineUp(): Promise<void> {
    if (this.engine !== null) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  private resetLinksTo(node: SimReplicaNode): void {
    const era = this.era;
    if (era === null || !era.alive) return;
    for (const link of era.links) {
      // The engine learns of the dead connection a moment later (RST or FIN on its way).
      if (link.address === node.address) this.sim.schedule(0.1 + this.sim.random.next(), `${node.address} reset`, () => link.reset('connection reset by peer'));
    }
  }

  /** A simulated RST on the engine's connection to one replica (the process lives on). */
  resetConnection(node: SimReplicaNode): void {
    const link = this.era?.links.find((l) => l.address === node.address);
    if (link !== undefined && this.era?.alive === true) {
      this.sim.trace(`net reset ${node.address}`);
      link.reset('connection reset');
    }
  }

  /** The engine process dies (kill -9): in-flight client operations never complete. */
  crashEngine(why: string): void {
    if (this.era === null || !this.era.alive) return;
    this.sim.trace(`engine crash (${why})`);
    this.era.die();
  }

  /**
   * Start an engine on every replica machine, as a supervisor would: start replica processes
   * that are down, then startEngine. Returns whether the chosen replicas may have forgotten
   * unflushed writes (one crashed since the last start), or null if the start failed.
   */
  async startEngine(): Promise<{ amnesia: boolean } | null> {
    for (const node of this.nodes) if (node.state === 'down') await node.start();
    const links = this.nodes.map((node, i) => {
      const bug = this.options.bug !== undefined && this.options.bug.replica === i ? this.options.bug.link : undefined;
      return new SimReplicaLink(this.sim, { network: this.network, node, volumeName: this.options.volumeName, ...(bug === undefined ? {} : { bug }) });
    });
    try {
      const started = await startEngine({
        volumeName: this.options.volumeName,
        sizeBytes: this.options.sizeBytes,
        links,
        clock: this.sim.clock,
        log: (message) => this.sim.trace(`engine: ${message}`),
        minimumWriteReplicas: this.options.minimumWriteReplicas,
      });
      const chosen = new Set(started.engine.status().replicas.map((r) => r.address));
      const amnesia = this.nodes.some((n) => chosen.has(n.address) && n.lastCrashStamp > this.lastStartStamp);
      this.lastStartStamp = this.sim.stamp();
      this.era = new EngineEra(started.engine, links.filter((l) => chosen.has(l.address)));
      this.engineStarts++;
      this.sim.trace(`engine started: epoch ${this.era.epoch}, replicas ${[...chosen].join(' ')}${amnesia ? ' (after a replica crash: unflushed writes may be gone)' : ''}`);
      this.onEngineStarted(amnesia);
      for (const wake of this.readyWaiters.splice(0)) wake();
      return { amnesia };
    } catch (error) {
      this.sim.trace(`engine start failed: ${error instanceof Error ? error.message : String(error)}`);
      for (const link of links) link.engineDied();
      return null;
    }
  }

  /** Rw replicas of the live engine. */
  rwAddresses(): string[] {
    const engine = this.engine;
    if (engine === null) return [];
    return engine.status().replicas.filter((r) => r.mode === 'rw').map((r) => r.address);
  }
}
