// The node agent (Longhorn's instance manager plus the node's disk monitor): registers this node
// and its disks, keeps the node lease, and runs the engine and replica processes that the Engine
// and Replica resources assign to this node as detached child processes, so they outlive the
// agent. Each pass (on a timer and whenever a resource changes) checks the processes, asks
// instance-plan.ts what to do, does it, and writes what it observed to the resources' status.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, rmSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { Clock } from '../lib/clock.ts';
import { ShorthornError, toError } from '../lib/errors.ts';
import { orphanReportMax } from '../lib/limits.ts';
import { dataProcessEnv } from '../lib/data-process-env.ts';
import type { Engine, EngineStatus, ReplicaMode } from '../control/resources/engine.ts';
import type { DiskSpec, DiskStatus, Node, NodeStatus } from '../control/resources/node.ts';
import { apiVersion, type Resource } from '../control/resources/object-meta.ts';
import type { Replica, ReplicaStatus } from '../control/resources/replica.ts';
import { nodeLeaseName } from '../control/controllers/node-liveness.ts';
import { replicaDataFinalizer } from '../control/controllers/volume-reconcile.ts';
import { Informer } from '../control/runtime/informer.ts';
import { LeaseKeeper } from '../control/runtime/lease-keeper.ts';
import type { Timers } from '../control/runtime/timers.ts';
import { isStoreError, type ResourceStore } from '../control/store/resource-store.ts';
import { diskUuid, measureDisk, replicaDirectories } from './disk-probe.ts';
import {
  desiredEngine,
  desiredReplica,
  hostPort,
  observedState,
  planInstances,
  replicaDataDir,
  restartDelayMs,
  type DesiredInstance,
  type InstanceAction,
  type InstanceKind,
  type KnownProcess,
} from './instance-plan.ts';
import { holdsListener } from './listen-owner.ts';
import { reportedSnapshotLimits, type EngineSnapshotLimits } from './engine-snapshot-limits.ts';
import { SnapshotLimitsPusher } from './snapshot-limits-pusher.ts';
import { ReplicaRecordReader } from './replica-record.ts';
import { isSameProcess, loadProcessTable, readProc, saveProcessTable, type ProcessEntry } from './process-table.ts';
import { rebuildRetryDelayMs } from './rebuild-retry.ts';
import { stopStrayProcesses } from './stray-processes.ts';

/** The finalizer the agent removes once a deleted replica's data is gone (defined with the volume controller). */
export { replicaDataFinalizer };

export type NodeAgentErrorCode = 'lease_held' | 'bad_disk';
export class NodeAgentError extends ShorthornError<NodeAgentErrorCode> {}

export interface AgentDisk {
  readonly path: string;
  readonly tags: readonly string[];
}

export interface NodeAgentOptions {
  readonly store: ResourceStore;
  readonly nodeName: string;
  readonly dataDir: string;
  readonly disks: readonly AgentDisk[];
  /** The command that runs `shorthorn`: [node, .../shorthorn.js]. */
  readonly launcher: readonly string[];
  readonly portRange: { readonly first: number; readonly last: number };
  readonly clock: Clock;
  readonly timers: Timers;
  readonly log: (message: string) => void;
  readonly syncIntervalMs?: number;
  /** Bytes per second an engine's rebuild may copy (sent with each rebuild request); 0 or absent: no limit. */
  readonly rebuildBandwidthBytesPerSecond?: number;
  readonly diskRefreshMs?: number;
  readonly restartBackoff?: { readonly baseMs: number; readonly maxMs: number };
  readonly stopTimeoutMs?: number;
  readonly leaseTtlMs?: number;
  /**
   * The address this node's replicas and engine control APIs listen on and are published at
   * (Replica and Engine status.ip): one that engines and managers on other hosts can reach.
   * Default 127.0.0.1 (every node on one host).
   */
  readonly address?: string;
  readonly env?: Readonly<Record<string, string>>;
}

interface Tracked {
  entry: ProcessEntry;
  child: ChildProcess | undefined;
  ready: boolean;
  readySinceMs: number | undefined;
  stoppingSinceMs: number | undefined;
  failures: number;
  restartAtMs: number;
  lastError: string | undefined;
}

interface EngineObservation {
  readonly generation: number;
  readonly sizeBytes: number;
  readonly replicas: readonly { address: string; mode: 'rw' | 'wo' | 'err' }[];
  readonly rebuilds: readonly { address: string; state: string; totalBytes: number; doneBytes: number; source: string | null; error: string | null }[];
  /** The snapshot limits in force; undefined: the engine does not say (it cannot change them live). */
  readonly snapshotLimits: EngineSnapshotLimits | undefined;
}


/** A stable disk name from its path, in Longhorn's `<prefix>-<hex>` style. */
export function diskNameOf(path: string): string {
  return `disk-${createHash('sha256').update(resolve(path)).digest('hex').slice(0, 8)}`;
}

/** A port found in use by another program is not tried again for this long. */
const busyPortHoldMs = 60_000;

/** Whether host:port can be bound now (the daemon binds it a moment later). */
function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once('error', () => resolveFree(false));
    server.listen(port, host, () => server.close(() => resolveFree(true)));
  });
}

/** A process that has been ready this long has its failure count (and so its back-off) reset. */
const stableRunMs = 10_000;

export class NodeAgent {
  private readonly options: NodeAgentOptions;
  private readonly tracked = new Map<string, Tracked>();
  private readonly replicas: Informer;
  private readonly engines: Informer;
  private readonly lease: LeaseKeeper;
  private readonly socketDir: string;
  /** Where this node's daemons listen and are reached (options.address). */
  private readonly address: string;
  private readonly engineObservations = new Map<string, EngineObservation>();
  private diskUuids = new Map<string, string>();
  private lastDiskRefreshMs = -Infinity;
  private syncing: Promise<void> | undefined;
  private syncAgain = false;
  private cancelTick: (() => void) | undefined;
  private stopped = false;
  private ready = false;
  private tableDirty = false;
  /** Counters for tests and metrics. */
  readonly stats = { passes: 0, starts: 0, adopted: 0, statusWrites: 0, straysStopped: 0 };

  constructor(options: NodeAgentOptions) {
    this.options = options;
    this.socketDir = join(options.dataDir, 'sockets');
    this.address = options.address ?? '127.0.0.1';
    const onError = (error: Error): void => options.log(`store: ${error.message}`);
    this.replicas = new Informer(options.store, 'Replica', { timers: options.timers, onError });
    this.engines = new Informer(options.store, 'Engine', { timers: options.timers, onError });
    this.lease = new LeaseKeeper(options.store, {
      name: nodeLeaseName(options.nodeName),
      // The holder is the node, not this process: a restarted agent renews its own lease at once.
      holder: options.nodeName,
      ttlMs: options.leaseTtlMs ?? 15_000,
      timers: options.timers,
      onChange: (state) => options.log(`node lease ${state}`),
      onError,
    });
  }

  async start(): Promise<void> {
    const { dataDir, log } = this.options;
    await mkdir(join(dataDir, 'logs'), { recursive: true });
    await mkdir(this.socketDir, { recursive: true });
    if ((await this.lease.start()) !== 'held') {
      throw new NodeAgentError('lease_held', `Node lease node-${this.options.nodeName} is held by another agent`);
    }
    for (const disk of this.options.disks) {
      try {
        this.diskUuids.set(resolve(disk.path), await diskUuid(disk.path));
      } catch (error) {
        throw new NodeAgentError('bad_disk', `Disk ${disk.path} cannot be used: ${toError(error).message}`, { cause: error });
      }
    }
    await this.registerNode();
    await this.adopt();
    const onChange = (): void => this.requestSync();
    this.replicas.addHandler(onChange);
    this.engines.addHandler(onChange);
    this.replicas.start();
    this.engines.start();
    await Promise.all([this.replicas.waitForSync(), this.engines.waitForSync()]);
    log(`node ${this.options.nodeName} registered with ${this.options.disks.length} disk(s); ${this.stats.adopted} process(es) adopted`);
    // Passes start only now, one at a time: the informers' first events must not race this one.
    this.ready = true;
    this.requestSync();
    await this.syncing;
    this.scheduleTick();
  }

  /** Stop the agent; the processes it runs keep running (a restarted agent adopts them). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTick?.();
    await this.syncing;
    await Promise.all([this.replicas.stop(), this.engines.stop()]);
    await this.saveTable();
    await this.lease.stop();
  }

  private scheduleTick(): void {
    if (this.stopped) return;
    this.cancelTick = this.options.timers.after(this.options.syncIntervalMs ?? 1000, () => {
      this.requestSync();
      this.scheduleTick();
    });
  }

  /** Run a pass now, or right after the one running (passes never overlap). */
  requestSync(): void {
    if (this.stopped || !this.ready) return;
    if (this.syncing !== undefined) {
      this.syncAgain = true;
      return;
    }
    this.syncing = this.sync()
      .catch((error: unknown) => this.options.log(`sync failed: ${toError(error).stack ?? String(error)}`))
      .finally(() => {
        this.syncing = undefined;
        if (this.syncAgain) {
          this.syncAgain = false;
          this.requestSync();
        }
      });
  }

  /** Processes this agent runs now, by instance name (for tests and the status API). */
  processes(): ReadonlyMap<string, { readonly pid: number | undefined; readonly port: number; readonly kind: InstanceKind }> {
    return new Map([...this.tracked].map(([name, t]) => [name, { pid: t.entry.pid, port: t.entry.port, kind: t.entry.kind }]));
  }

  // ---- start-up ----

  private async registerNode(): Promise<void> {
    const { store, nodeName, disks } = this.options;
    const wanted: Record<string, DiskSpec> = {};
    for (const disk of disks) {
      wanted[diskNameOf(disk.path)] = {
        diskType: 'filesystem',
        path: resolve(disk.path),
        allowScheduling: true,
        evictionRequested: false,
        storageReserved: 0,
        tags: [...disk.tags],
      };
    }
    for (;;) {
      let existing: Resource | undefined;
      try {
        existing = await store.get('Node', nodeName);
      } catch (error) {
        if (!isStoreError(error, 'not_found')) throw error;
      }
      try {
        if (existing === undefined) {
          const node: Node = {
            apiVersion,
            kind: 'Node',
            metadata: { name: nodeName },
            spec: { disks: wanted, allowScheduling: true, evictionRequested: false, tags: [] },
          };
          await store.create(node);
          this.options.log(`created Node ${nodeName}`);
          return;
        }
        // Disks the user added or changed stay as they are; disks named on the command line are
        // added when missing (matched by path, so a renamed disk is not added twice).
        const node = existing as Node;
        const paths = new Set(Object.values(node.spec.disks).map((d) => d.path));
        const added = Object.entries(wanted).filter(([, d]) => !paths.has(d.path));
        if (added.length === 0) return;
        await store.update({ ...node, spec: { ...node.spec, disks: { ...node.spec.disks, ...Object.fromEntries(added) } } });
        this.options.log(`added disk(s) ${added.map(([n, d]) => `${n} at ${d.path}`).join(', ')} to Node ${nodeName}`);
        return;
      } catch (error) {
        if (!isStoreError(error, 'conflict') && !isStoreError(error, 'already_exists')) throw error;
      }
    }
  }

  /** Take over the processes a previous run of the agent started, if they are still the same. */
  private async adopt(): Promise<void> {
    for (const entry of await loadProcessTable(this.options.dataDir)) {
      const tracked: Tracked = {
        entry, child: undefined, ready: false, readySinceMs: undefined, stoppingSinceMs: undefined,
        failures: 0, restartAtMs: 0, lastError: undefined,
      };
      if (entry.pid !== undefined) {
        const info = await readProc(entry.pid);
        if (isSameProcess(entry, info)) {
          this.stats.adopted++;
          this.options.log(`adopted ${entry.kind} ${entry.name} pid ${entry.pid} on port ${entry.port}`);
        } else {
          this.options.log(`${entry.kind} ${entry.name} pid ${entry.pid} ended while the agent was down`);
          tracked.entry = { name: entry.name, kind: entry.kind, port: entry.port };
          tracked.lastError = 'ended while the node agent was down';
        }
      }
      this.tracked.set(entry.name, tracked);
    }
    // Processes an earlier run started but never recorded (it died between spawn and saving the
    // table): left running they would be duplicates of what this run starts (stray-processes.ts).
    const known = new Set([...this.tracked.values()].flatMap((t) => (t.entry.pid === undefined ? [] : [t.entry.pid])));
    const scope = { launcher: this.options.launcher, diskPaths: this.options.disks.map((d) => resolve(d.path)), socketDir: this.socketDir };
    this.stats.straysStopped += await stopStrayProcesses(scope, known, this.options.log);
  }

  // ---- one pass ----

  private async sync(): Promise<void> {
    this.stats.passes++;
    const nowMs = this.options.clock.monotonicMs();
    await this.checkLiveness(nowMs);
    const { desired, problems } = this.desiredInstances();
    const plan = planInstances({
      desired,
      known: [...this.tracked.values()].map((t) => this.known(t)),
      nowMs,
      portRange: this.options.portRange,
      portsTaken: this.portsTaken(nowMs),
      stopTimeoutMs: this.options.stopTimeoutMs ?? 10_000,
      listenHost: this.address,
    });
    for (const action of plan.actions) await this.execute(action, desired, nowMs);
    for (const name of plan.noPort) problems.set(name, `no free port in ${this.options.portRange.first}-${this.options.portRange.last}`);
    if (this.tableDirty) await this.saveTable();
    await this.pollEngines();
    await this.reportStatuses(desired, problems);
    if (nowMs - this.lastDiskRefreshMs >= (this.options.diskRefreshMs ?? 10_000)) {
      this.lastDiskRefreshMs = nowMs;
      await this.reportNode();
    }
  }

  private known(t: Tracked): KnownProcess {
    return {
      name: t.entry.name,
      kind: t.entry.kind,
      port: t.entry.port,
      pid: t.entry.pid,
      ready: t.ready,
      stoppingSinceMs: t.stoppingSinceMs,
      failures: t.failures,
      restartAtMs: t.restartAtMs,
      lastError: t.lastError,
    };
  }

  private desiredInstances(): { desired: DesiredInstance[]; problems: Map<string, string> } {
    const desired: DesiredInstance[] = [];
    const problems = new Map<string, string>();
    for (const object of this.replicas.list()) {
      const replica = object as Replica;
      if (replica.spec.nodeID !== this.options.nodeName) continue;
      const want = desiredReplica(replica);
      if ('problem' in want) problems.set(replica.metadata.name, want.problem);
      else desired.push(want);
    }
    for (const object of this.engines.list()) {
      const engine = object as Engine;
      if (engine.spec.nodeID !== this.options.nodeName) continue;
      desired.push(desiredEngine(engine, this.socketDir));
    }
    return { desired, problems };
  }

  /** Adopted processes are not our children: look them up in /proc. Our children report exits. */
  private async checkLiveness(nowMs: number): Promise<void> {
    for (const t of this.tracked.values()) {
      const pid = t.entry.pid;
      if (pid === undefined) continue;
      if (t.child === undefined && !isSameProcess(t.entry, await readProc(pid))) {
        this.exited(t, 'exited (adopted process; exit status unknown)', nowMs);
        continue;
      }
      if (!t.ready && t.stoppingSinceMs === undefined && (await this.probe(t))) {
        t.ready = true;
        t.readySinceMs = nowMs;
        this.options.log(`${t.entry.kind} ${t.entry.name} pid ${pid} is ready on port ${t.entry.port}`);
      }
      if (t.ready && t.readySinceMs !== undefined && nowMs - t.readySinceMs >= stableRunMs) t.failures = 0;
    }
  }

  private exited(t: Tracked, why: string, nowMs: number): void {
    const wasStopping = t.stoppingSinceMs !== undefined;
    t.entry = { name: t.entry.name, kind: t.entry.kind, port: t.entry.port };
    t.child = undefined;
    t.ready = false;
    t.readySinceMs = undefined;
    t.stoppingSinceMs = undefined;
    this.tableDirty = true;
    if (wasStopping) {
      this.options.log(`${t.entry.kind} ${t.entry.name} stopped: ${why}`);
      t.lastError = undefined;
      return;
    }
    t.failures++;
    const delayMs = restartDelayMs(t.failures, this.options.restartBackoff ?? { baseMs: 1000, maxMs: 60_000 });
    t.restartAtMs = nowMs + delayMs;
    t.lastError = `process ${why}`;
    this.options.log(`${t.entry.kind} ${t.entry.name} ${why}; failure ${t.failures}, restart allowed in ${delayMs} ms`);
  }

  /** Ready: the process itself listens on its port (not whoever else took it: listen-owner.ts); an engine also answers. */
  private async probe(t: Tracked): Promise<boolean> {
    if (t.entry.pid === undefined || !(await holdsListener(t.entry.pid, t.entry.port))) return false;
    return t.entry.kind === 'replica' || (await this.engineStatus(t.entry.port)) !== undefined;
  }

  private async execute(action: InstanceAction, desired: readonly DesiredInstance[], nowMs: number): Promise<void> {
    switch (action.type) {
      case 'start': {
        // Another program (or another agent on this host) may hold the port: check before the
        // daemon finds out by crashing, and leave the port alone for a while.
        if (!(await portIsFree(this.address, action.port))) {
          this.busyPorts.set(action.port, nowMs + busyPortHoldMs);
          this.options.log(`port ${action.port} is in use by another process; ${action.kind} ${action.name} gets another port`);
          this.requestSync();
          return;
        }
        const launch = desired.find((d) => d.name === action.name)?.launch;
        // A killed engine leaves its socket file behind, and listen() refuses an existing path.
        if (launch?.kind === 'engine') rmSync(launch.socketPath, { force: true });
        this.startProcess(action.name, action.kind, action.port, action.args);
        return;
      }
      case 'stop': {
        const t = this.tracked.get(action.name);
        if (t === undefined) return;
        if (t.stoppingSinceMs === undefined || action.signal === 'SIGKILL') {
          this.options.log(`stopping ${t.entry.kind} ${action.name} pid ${action.pid} with ${action.signal}`);
          try {
            process.kill(action.pid, action.signal);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
          }
        }
        t.stoppingSinceMs ??= nowMs;
        return;
      }
      case 'forget':
        this.tracked.delete(action.name);
        this.tableDirty = true;
        return;
      case 'cleanup': {
        const want = desired.find((d) => d.name === action.name);
        if (want?.launch.kind === 'replica') await this.removeReplicaData(action.name, want.launch.dir);
        return;
      }
    }
  }

  private startProcess(name: string, kind: InstanceKind, port: number, args: readonly string[]): void {
    const [command, ...prefix] = this.options.launcher;
    if (command === undefined) throw new NodeAgentError('bad_disk', 'launcher is empty');
    const argv = [command, ...prefix, ...args];
    const logFile = openSync(join(this.options.dataDir, 'logs', `${name}.log`), 'a');
    let child: ChildProcess;
    try {
      // Detached: its own session and process group, so it outlives the agent and a signal to the
      // agent's group does not reach it. Output goes to a file, not a pipe that dies with us.
      child = spawn(command, [...prefix, ...args], {
        detached: true,
        stdio: ['ignore', logFile, logFile],
        env: { ...process.env, ...dataProcessEnv(process.env['NODE_OPTIONS']), ...this.options.env },
      });
    } finally {
      closeSync(logFile);
    }
    const pid = child.pid;
    const t: Tracked = this.tracked.get(name) ?? {
      entry: { name, kind, port }, child: undefined, ready: false, readySinceMs: undefined,
      stoppingSinceMs: undefined, failures: 0, restartAtMs: 0, lastError: undefined,
    };
    this.tracked.set(name, t);
    this.tableDirty = true;
    if (pid === undefined) {
      // spawn reports the reason on 'error'; count it as a failed start so back-off applies.
      child.once('error', (error) => this.options.log(`${kind} ${name} could not start: ${error.message}`));
      this.exited(t, 'could not be spawned', this.options.clock.monotonicMs());
      return;
    }
    this.stats.starts++;
    t.entry = { name, kind, port, pid, argv };
    t.child = child;
    t.ready = false;
    t.stoppingSinceMs = undefined;
    child.once('exit', (code, signal) => {
      if (t.child !== child) return;
      this.exited(t, signal === null ? `exited with code ${code ?? '?'}` : `was killed by ${signal}`, this.options.clock.monotonicMs());
      this.requestSync();
    });
    this.options.log(`started ${kind} ${name} pid ${pid} on port ${port}: ${args.join(' ')}`);
    // The start time makes the entry an identity; uv_spawn returns after exec, so /proc shows
    // the new command line already. Read it before the table is saved.
    this.pendingIdentity.push(t);
  }

  private readonly pendingIdentity: Tracked[] = [];

  private async saveTable(): Promise<void> {
    for (const t of this.pendingIdentity.splice(0)) {
      const pid = t.entry.pid;
      if (pid === undefined) continue;
      const info = await readProc(pid);
      if (info !== undefined) t.entry = { ...t.entry, startTime: info.startTime };
    }
    this.tableDirty = false;
    await saveProcessTable(this.options.dataDir, [...this.tracked.values()].map((t) => t.entry));
  }

  private async removeReplicaData(name: string, dir: string): Promise<void> {
    // Only ever a directory directly under one of our disks' replicas/ folders.
    const allowed = this.options.disks.some((disk) => resolve(dir) === replicaDataDir(resolve(disk.path), dir.split('/').at(-1) ?? ''));
    if (!allowed) {
      this.options.log(`not removing data of replica ${name}: ${dir} is not under a disk of this node`);
    } else {
      await rm(dir, { recursive: true, force: true });
      this.options.log(`removed data of deleted replica ${name} at ${dir}`);
    }
    try {
      const current = (await this.options.store.get('Replica', name)) as Replica;
      const finalizers = (current.metadata.finalizers ?? []).filter((f) => f !== replicaDataFinalizer);
      if (finalizers.length !== (current.metadata.finalizers ?? []).length) {
        await this.options.store.update({ ...current, metadata: { ...current.metadata, finalizers } });
      }
    } catch (error) {
      // Gone already, or changed under us (the next pass sees the fresh object): both fine.
      if (!isStoreError(error, 'not_found') && !isStoreError(error, 'conflict')) throw error;
    }
  }

  // ---- observing and reporting ----

  private async engineStatus(port: number): Promise<EngineObservation | undefined> {
    try {
      const response = await fetch(`http://${hostPort(this.address, port)}/v1/status`, { signal: AbortSignal.timeout(2000) });
      if (!response.ok) return undefined;
      const body = (await response.json()) as EngineObservation & { snapshotLimits?: unknown };
      return { generation: body.generation, sizeBytes: body.sizeBytes, replicas: body.replicas, rebuilds: body.rebuilds ?? [], snapshotLimits: reportedSnapshotLimits(body.snapshotLimits) };
    } catch (error) {
      // Not listening yet, or gone: the engine is not ready. Anything else is a bug worth seeing.
      const e = toError(error);
      if (e.name === 'TypeError' || e.name === 'TimeoutError' || e.name === 'AbortError') return undefined;
      throw e;
    }
  }

  private async pollEngines(): Promise<void> {
    for (const t of this.tracked.values()) {
      if (t.entry.kind !== 'engine') continue;
      const observation = t.ready && t.entry.pid !== undefined ? await this.engineStatus(t.entry.port) : undefined;
      if (observation === undefined) this.engineObservations.delete(t.entry.name);
      else {
        this.engineObservations.set(t.entry.name, observation);
        const engine = this.engines.get(t.entry.name) as Engine | undefined;
        if (engine !== undefined && engine.spec.desireState === 'running') {
          await this.rebuildMissing(engine, t.entry.port, observation);
          // Here, not in a controller: this pass already has the engine's status in hand and pushes
          // the Engine resource's write set into it the same way; no restart (instance-plan.ts).
          await this.snapshotLimits.push(engine, `http://${hostPort(this.address, t.entry.port)}`, observation.snapshotLimits);
        }
      }
    }
  }

  /** Brings running engines to their resources' snapshot limits, live (see pollEngines). */
  private readonly snapshotLimits = new SnapshotLimitsPusher((message) => this.options.log(message));

  /**
   * The write set the manager wants (spec.replicaAddressMap) against what the engine has: a
   * wanted replica the engine lacks or holds as ERR is rebuilt, one at a time per engine (as
   * Longhorn's engine monitor does). The engine copies only what differs.
   */
  private async rebuildMissing(engine: Engine, port: number, observation: EngineObservation): Promise<void> {
    // RW again: the next failure starts the back-off from the beginning.
    for (const r of observation.replicas) if (r.mode === 'rw') this.rebuildAsked.delete(r.address);
    if (observation.rebuilds.some((r) => r.state !== 'done' && r.state !== 'failed')) return;
    const live = new Set(observation.replicas.filter((r) => r.mode !== 'err').map((r) => r.address));
    const nowMs = this.options.clock.monotonicMs();
    // Forget addresses not asked for in 10 minutes (gone from every write set), so the map stays small.
    for (const [address, asked] of this.rebuildAsked) if (nowMs - asked.atMs > 600_000) this.rebuildAsked.delete(address);
    const due = (address: string): boolean => {
      const asked = this.rebuildAsked.get(address);
      return asked === undefined || nowMs - asked.atMs >= rebuildRetryDelayMs(asked.asks);
    };
    const missing = Object.entries(engine.spec.replicaAddressMap)
      .filter(([, address]) => !live.has(address) && due(address))
      .sort(([a], [b]) => (a < b ? -1 : 1));
    const first = missing[0];
    if (first === undefined || observation.replicas.every((r) => r.mode !== 'rw')) return;
    const [replicaName, address] = first;
    const asks = (this.rebuildAsked.get(address)?.asks ?? 0) + 1;
    this.rebuildAsked.set(address, { atMs: nowMs, asks });
    try {
      const response = await fetch(`http://${hostPort(this.address, port)}/v1/rebuilds`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ address, bandwidthBytesPerSecond: this.options.rebuildBandwidthBytesPerSecond ?? 0 }),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await response.text();
      const attempt = asks === 1 ? '' : ` (ask ${asks} since it was last RW; next no sooner than ${rebuildRetryDelayMs(asks) / 1000} s)`;
      this.options.log(response.ok
        ? `engine ${engine.metadata.name}: rebuilding replica ${replicaName} at ${address}${attempt}`
        : `engine ${engine.metadata.name}: rebuild of ${replicaName} at ${address} refused (${response.status})${attempt}: ${text.slice(0, 300)}`);
    } catch (error) {
      // The engine went away mid-request: the next pass sees its state and tries again.
      this.options.log(`engine ${engine.metadata.name}: rebuild request for ${address} failed: ${toError(error).message}`);
    }
  }

  /** Rebuild requests per replica address: when last, and how many since it was last RW (rebuild-retry.ts). */
  private readonly rebuildAsked = new Map<string, { atMs: number; asks: number }>();
  /** Ports found in use by something else, until when (monotonic ms). */
  private readonly busyPorts = new Map<number, number>();

  private portsTaken(nowMs: number): Set<number> {
    for (const [port, untilMs] of this.busyPorts) if (untilMs <= nowMs) this.busyPorts.delete(port);
    return new Set(this.busyPorts.keys());
  }

  private async reportStatuses(desired: readonly DesiredInstance[], problems: ReadonlyMap<string, string>): Promise<void> {
    const wanted = new Map(desired.map((d) => [d.name, d]));
    const objects = [
      ...this.replicas.list().filter((o) => (o as Replica).spec.nodeID === this.options.nodeName),
      ...this.engines.list().filter((o) => (o as Engine).spec.nodeID === this.options.nodeName),
    ];
    for (const object of objects) {
      const name = object.metadata.name;
      const want = wanted.get(name);
      const t = this.tracked.get(name);
      const problem = problems.get(name);
      // Created after this pass read the informers: the next pass plans it and reports it.
      if (want === undefined && problem === undefined) continue;
      const observed = want === undefined
        ? { state: 'error' as const, errorMessage: problem ?? 'not runnable' }
        : observedState(want, t === undefined ? undefined : this.known(t));
      const base = { ...((object.status ?? {}) as ReplicaStatus & EngineStatus) };
      for (const key of ['ip', 'port', 'pid', 'errorMessage'] as const) delete base[key];
      const running = t?.entry.pid !== undefined;
      const status: Record<string, unknown> = {
        ...base,
        currentState: observed.state,
        ...(running ? { ip: this.address, port: t.entry.port, pid: t.entry.pid } : {}),
        ...(observed.errorMessage === undefined && problem === undefined ? {} : { errorMessage: problem ?? observed.errorMessage }),
        ...(observed.state === 'running' ? { started: true } : {}),
      };
      // The replica's durable record (epoch, generation), read from its files: what salvage chooses by.
      if (object.kind === 'Replica') Object.assign(status, await this.replicaRecordFields(object as Replica));
      if (object.kind === 'Engine') {
        const fields = this.engineStatusFields(object as Engine, running && t !== undefined ? t.entry.port : undefined);
        // A running engine that did not answer this pass's poll: no map at all ("not observed"),
        // never an empty one, which the manager would read as "no replica RW" (faulted).
        if (fields === undefined) for (const key of ['replicaModeMap', 'currentReplicaAddressMap'] as const) delete status[key];
        else Object.assign(status, fields);
      }
      if (JSON.stringify(status) === JSON.stringify(object.status ?? {})) continue;
      try {
        await this.options.store.updateStatus({ ...object, status });
        this.stats.statusWrites++;
      } catch (error) {
        // A newer object is on its way through the informer; the next pass writes again.
        if (!isStoreError(error, 'conflict') && !isStoreError(error, 'not_found')) throw error;
      }
    }
  }

  private readonly replicaRecords = new ReplicaRecordReader();

  private async replicaRecordFields(replica: Replica): Promise<Partial<ReplicaStatus>> {
    const { diskPath, dataDirectoryName } = replica.spec;
    if (diskPath === undefined || dataDirectoryName === undefined) return {};
    const record = await this.replicaRecords.read(replicaDataDir(diskPath, dataDirectoryName));
    if (record === undefined || 'problem' in record) return {};
    return { epoch: record.epoch, generation: record.generation };
  }

  /** What the last poll saw of a running engine; undefined when the poll got no answer. */
  private engineStatusFields(engine: Engine, port: number | undefined): Partial<EngineStatus> | undefined {
    // Not running: it holds no replicas.
    if (port === undefined) return { replicaModeMap: {}, currentReplicaAddressMap: {} };
    const observation = this.engineObservations.get(engine.metadata.name);
    if (observation === undefined) return undefined;
    const nameOf = new Map(Object.entries(engine.spec.replicaAddressMap).map(([name, address]) => [address, name]));
    const modes: Record<string, ReplicaMode> = {};
    const addresses: Record<string, string> = {};
    for (const replica of observation.replicas) {
      const name = nameOf.get(replica.address);
      if (name === undefined) continue;
      modes[name] = replica.mode === 'rw' ? 'RW' : replica.mode === 'wo' ? 'WO' : 'ERR';
      addresses[name] = replica.address;
    }
    const rebuildStatus: NonNullable<EngineStatus['rebuildStatus']> = {};
    for (const rebuild of observation.rebuilds) {
      const name = nameOf.get(rebuild.address);
      if (name === undefined) continue;
      const running = rebuild.state !== 'done' && rebuild.state !== 'failed';
      rebuildStatus[name] = {
        isRebuilding: running,
        progress: rebuild.totalBytes === 0 ? (running ? 0 : 100) : Math.min(100, Math.floor((100 * rebuild.doneBytes) / rebuild.totalBytes)),
        state: rebuild.state,
        ...(rebuild.error === null ? {} : { error: rebuild.error.slice(0, 4000) }),
        ...(rebuild.source === null ? {} : { fromReplicaAddress: rebuild.source }),
      };
    }
    return {
      replicaModeMap: modes,
      currentReplicaAddressMap: addresses,
      rebuildStatus,
      generation: observation.generation,
      currentSize: observation.sizeBytes,
      // Maintenance mode: no device, no NBD socket (Longhorn reports an empty endpoint too).
      endpoint: engine.spec.disableFrontend === true ? '' : `nbd+unix:///${engine.spec.volumeName}?socket=${this.socketDir}/${engine.metadata.name}.sock`,
    };
  }

  private async reportNode(): Promise<void> {
    const { store, nodeName, log } = this.options;
    let node: Node;
    try {
      node = (await store.get('Node', nodeName)) as Node;
    } catch (error) {
      if (isStoreError(error, 'not_found')) {
        log(`Node ${nodeName} was deleted; registering it again`);
        await this.registerNode();
        return;
      }
      throw error;
    }
    const replicas = this.replicas.list() as Replica[];
    const diskStatus: Record<string, DiskStatus> = {};
    for (const [diskName, disk] of Object.entries(node.spec.disks)) {
      diskStatus[diskName] = await this.diskStatus(diskName, disk, replicas);
    }
    const now = new Date(this.options.clock.nowMs()).toISOString().replace(/\.\d+Z$/, 'Z');
    const condition = (type: string, reason: string) => {
      const old = node.status?.conditions?.find((c) => c.type === type);
      return { type, status: 'True' as const, reason, lastTransitionTime: old?.status === 'True' ? (old.lastTransitionTime ?? now) : now };
    };
    const status: NodeStatus = {
      ...node.status,
      conditions: [condition('Ready', 'NodeAgentRunning'), condition('Schedulable', 'NodeAgentRunning')],
      diskStatus,
    };
    if (JSON.stringify(status) === JSON.stringify(node.status ?? {})) return;
    try {
      await store.updateStatus({ ...node, status });
    } catch (error) {
      if (!isStoreError(error, 'conflict')) throw error;
      this.lastDiskRefreshMs = -Infinity; // try again on the next pass
    }
  }

  private async diskStatus(diskName: string, disk: DiskSpec, replicas: readonly Replica[]): Promise<DiskStatus> {
    const ready = (status: 'True' | 'False', reason: string, message?: string) => [
      { type: 'Ready', status, reason, ...(message === undefined ? {} : { message }) },
      { type: 'Schedulable', status, reason },
    ];
    let uuid = this.diskUuids.get(disk.path);
    try {
      uuid ??= await diskUuid(disk.path);
      this.diskUuids.set(disk.path, uuid);
      const measure = await measureDisk(disk.path);
      const onDisk = replicas.filter((r) => r.spec.nodeID === this.options.nodeName && (r.spec.diskID === uuid || r.spec.diskPath === disk.path));
      const scheduledReplica = Object.fromEntries(onDisk.map((r) => [r.metadata.name, r.spec.volumeSize]));
      const owned = new Set(onDisk.map((r) => r.spec.dataDirectoryName));
      const orphans = (await replicaDirectories(disk.path)).filter((dir) => !owned.has(dir));
      if (orphans.length > orphanReportMax) this.options.log(`disk ${diskName}: ${orphans.length} orphaned replica directories; reporting ${orphanReportMax}`);
      return {
        conditions: ready('True', 'DiskReady'),
        storageAvailable: measure.storageAvailable,
        storageMaximum: measure.storageMaximum,
        storageScheduled: onDisk.reduce((sum, r) => sum + r.spec.volumeSize, 0),
        scheduledReplica,
        diskUUID: uuid,
        diskPath: disk.path,
        filesystemType: measure.filesystemType,
        ...(orphans.length === 0 ? {} : { orphanedReplicaDirectories: orphans.slice(0, orphanReportMax) }),
      };
    } catch (error) {
      // A missing or unreadable disk is reported, not fatal: the rest of the node keeps working.
      const message = `${disk.path}: ${toError(error).message}`.slice(0, 1000);
      return {
        conditions: ready('False', 'DiskNotReady', message),
        storageAvailable: 0, storageMaximum: 0, storageScheduled: 0,
        diskUUID: uuid ?? 'unknown', diskPath: disk.path,
      };
    }
  }
}
