// The node agent's pure core: from the Replica and Engine resources assigned to this node and the
// processes it knows about, decide which processes to start, stop or forget, and what each
// resource's status should say. The driver (node-agent.ts) does the spawning, killing and writing.
import { assert } from '../lib/assert.ts';
import type { Engine } from '../control/resources/engine.ts';
import type { InstanceState } from '../control/resources/instance.ts';
import type { Replica } from '../control/resources/replica.ts';
import { wantedSnapshotLimits } from './engine-snapshot-limits.ts';

export type InstanceKind = 'replica' | 'engine';

/** What the resources ask this node to run. */
export interface DesiredInstance {
  readonly kind: InstanceKind;
  /** The Replica or Engine resource's name; also the process table key. */
  readonly name: string;
  readonly run: boolean;
  /** The resource is being deleted: stop it, then (replicas) remove its data. */
  readonly deleting: boolean;
  /** The daemon's arguments without the port (added once one is assigned). */
  readonly launch: LaunchSpec;
}

export type LaunchSpec =
  | { readonly kind: 'replica'; readonly dir: string; readonly sizeBytes: number; readonly volumeName: string }
  | {
      readonly kind: 'engine';
      readonly volumeName: string;
      readonly sizeBytes: number;
      readonly replicaAddresses: readonly string[];
      readonly socketPath: string;
      readonly minimumWriteReplicas: number;
      /**
       * The fencing epoch from the Engine resource (raised by the manager on every attach and
       * stored before the agent sees it). 0: none assigned, the engine picks one above what its
       * replicas have seen (engines started by hand).
       */
      readonly epoch: number;
      /** Start in salvage mode (Engine spec.salvageRequested): `--salvage`. */
      readonly salvage?: boolean;
      /**
       * Maintenance mode (Engine spec.disableFrontend): `--disable-frontend`, so the engine opens
       * no NBD listener and serves only its control API (restore, backup, snapshots, rebuild).
       * `--nbd-socket` is still passed: it names the engine's slot in the socket directory, by
       * which a restarted agent finds an engine it never recorded (stray-processes.ts).
       */
      readonly disableFrontend?: boolean;
      /**
       * Engine spec.snapshotMaxCount / snapshotMaxSize at start (`--snapshot-max-count`,
       * `--snapshot-max-size`; 0 or absent: no limit). Only a start reads them: a running engine
       * is never restarted for a change of them (planInstances leaves running processes alone);
       * the agent changes them live (engine-snapshot-limits.ts).
       */
      readonly snapshotMaxCount?: number;
      readonly snapshotMaxSizeBytes?: number;
    };

/** A process the agent started or adopted, as seen this pass. */
export interface KnownProcess {
  readonly name: string;
  readonly kind: InstanceKind;
  readonly port: number;
  /** undefined: not running (exited, never started, or stopped). */
  readonly pid: number | undefined;
  /** The port answers (replica: TCP accept; engine: GET /v1/status). */
  readonly ready: boolean;
  /** Asked to stop at this time (monotonic ms); a SIGKILL follows after stopTimeoutMs. */
  readonly stoppingSinceMs: number | undefined;
  /** Consecutive unexpected exits, and when the next start may happen (back-off). */
  readonly failures: number;
  readonly restartAtMs: number;
  readonly lastError: string | undefined;
}

export type InstanceAction =
  | { readonly type: 'start'; readonly name: string; readonly kind: InstanceKind; readonly port: number; readonly args: readonly string[] }
  | { readonly type: 'stop'; readonly name: string; readonly pid: number; readonly signal: 'SIGTERM' | 'SIGKILL' }
  /** Drop the entry from the process table (its resource no longer wants it and it is not running). */
  | { readonly type: 'forget'; readonly name: string }
  /** Remove a deleted replica's data directory, then its finalizer. */
  | { readonly type: 'cleanup'; readonly name: string };

export interface PlanInput {
  readonly desired: readonly DesiredInstance[];
  readonly known: readonly KnownProcess[];
  readonly nowMs: number;
  readonly portRange: { readonly first: number; readonly last: number };
  /** Ports in use that the table does not show (other agents' processes on a shared host). */
  readonly portsTaken?: ReadonlySet<number>;
  readonly stopTimeoutMs: number;
  /** The address the daemons listen on: the node's address other hosts reach it at. Default 127.0.0.1. */
  readonly listenHost?: string;
}

export interface PlanResult {
  readonly actions: readonly InstanceAction[];
  /** Names that want a port but none was free (reported as errors). */
  readonly noPort: readonly string[];
}

/** `host:port`, with brackets around an IPv6 host. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The arguments of `shorthorn replica|engine` for one instance on one port. Replicas and the
 * engine's control API listen on the node's address (`host`), which is also the address written
 * to their status: engines on other hosts reach the replicas there, managers the control API.
 */
export function daemonArgs(launch: LaunchSpec, port: number, host = '127.0.0.1'): string[] {
  switch (launch.kind) {
    case 'replica':
      return ['replica', '--dir', launch.dir, '--size', String(launch.sizeBytes), '--volume', launch.volumeName, '--listen', hostPort(host, port)];
    case 'engine': {
      const args = ['engine', '--name', launch.volumeName, '--size', String(launch.sizeBytes), '--nbd-socket', launch.socketPath];
      if (launch.disableFrontend === true) args.push('--disable-frontend');
      for (const address of launch.replicaAddresses) args.push('--replica', address);
      args.push('--control-listen', hostPort(host, port), '--minimum-write-replicas', String(launch.minimumWriteReplicas));
      if (launch.epoch > 0) args.push('--epoch', String(launch.epoch));
      if (launch.salvage === true) args.push('--salvage');
      if ((launch.snapshotMaxCount ?? 0) > 0) args.push('--snapshot-max-count', String(launch.snapshotMaxCount));
      if ((launch.snapshotMaxSizeBytes ?? 0) > 0) args.push('--snapshot-max-size', String(launch.snapshotMaxSizeBytes));
      return args;
    }
  }
}

/** The lowest free port of the range, or undefined. */
export function allocatePort(range: PlanInput['portRange'], used: ReadonlySet<number>): number | undefined {
  for (let port = range.first; port <= range.last; port++) if (!used.has(port)) return port;
  return undefined;
}

export function planInstances(input: PlanInput): PlanResult {
  const actions: InstanceAction[] = [];
  const noPort: string[] = [];
  const known = new Map(input.known.map((p) => [p.name, p]));
  const used = new Set<number>([...input.known.map((p) => p.port), ...(input.portsTaken ?? [])]);
  const desiredNames = new Set<string>();
  for (const want of input.desired) {
    desiredNames.add(want.name);
    const process = known.get(want.name);
    if (want.run && !want.deleting) {
      if (process?.pid !== undefined) continue;
      if (process !== undefined && process.restartAtMs > input.nowMs) continue;
      // Keep a port across restarts (an engine knows a replica by its address), unless something
      // else has taken it meanwhile: then a new address, and the engine rebuilds the replica there.
      const keep = process !== undefined && !(input.portsTaken?.has(process.port) ?? false);
      const port = keep ? process.port : allocatePort(input.portRange, used);
      if (port === undefined) {
        noPort.push(want.name);
        continue;
      }
      used.add(port);
      actions.push({ type: 'start', name: want.name, kind: want.kind, port, args: daemonArgs(want.launch, port, input.listenHost) });
      continue;
    }
    if (process?.pid !== undefined) {
      actions.push(stopAction(process, input));
      continue;
    }
    if (process !== undefined) actions.push({ type: 'forget', name: want.name });
    if (want.deleting && want.kind === 'replica') actions.push({ type: 'cleanup', name: want.name });
  }
  // Processes no resource mentions any more (deleted while the agent was down): stop and forget.
  for (const process of input.known) {
    if (desiredNames.has(process.name)) continue;
    actions.push(process.pid === undefined ? { type: 'forget', name: process.name } : stopAction(process, input));
  }
  return { actions, noPort };
}

function stopAction(process: KnownProcess, input: PlanInput): InstanceAction {
  assert(process.pid !== undefined, 'only running processes are stopped');
  const overdue = process.stoppingSinceMs !== undefined && input.nowMs - process.stoppingSinceMs >= input.stopTimeoutMs;
  return { type: 'stop', name: process.name, pid: process.pid, signal: overdue ? 'SIGKILL' : 'SIGTERM' };
}

/** Back-off before the n-th restart after consecutive failures: base × 2^(n-1), capped. */
export function restartDelayMs(failures: number, options: { baseMs: number; maxMs: number }): number {
  if (failures <= 0) return 0;
  return Math.min(options.maxMs, options.baseMs * 2 ** Math.min(failures - 1, 30));
}

/** What an instance's status says given its desired state and its process. */
export function observedState(want: DesiredInstance, process: KnownProcess | undefined): { state: InstanceState; errorMessage?: string } {
  if (process?.pid !== undefined) {
    if (process.stoppingSinceMs !== undefined) return { state: 'stopping' };
    return { state: process.ready ? 'running' : 'starting' };
  }
  if (!want.run || want.deleting) return { state: 'stopped' };
  if (process?.lastError !== undefined) return { state: 'error', errorMessage: process.lastError };
  return { state: 'starting' };
}

/** Where a replica keeps its data: `<diskPath>/replicas/<dataDirectoryName>` (Longhorn's layout). */
export function replicaDataDir(diskPath: string, dataDirectoryName: string): string {
  return `${diskPath.replace(/\/+$/, '')}/replicas/${dataDirectoryName}`;
}

/** The desired instance of a Replica resource on this node, or a reason it cannot run. */
export function desiredReplica(replica: Replica): DesiredInstance | { readonly problem: string } {
  const { spec } = replica;
  if (spec.diskPath === undefined || spec.dataDirectoryName === undefined) {
    return { problem: `replica ${replica.metadata.name} has no diskPath or dataDirectoryName yet` };
  }
  return {
    kind: 'replica',
    name: replica.metadata.name,
    run: spec.desireState === 'running',
    deleting: replica.metadata.deletionTimestamp !== undefined,
    launch: { kind: 'replica', dir: replicaDataDir(spec.diskPath, spec.dataDirectoryName), sizeBytes: spec.volumeSize, volumeName: spec.volumeName },
  };
}

export function desiredEngine(engine: Engine, socketDir: string): DesiredInstance {
  const { spec } = engine;
  const limits = wantedSnapshotLimits(spec);
  return {
    kind: 'engine',
    name: engine.metadata.name,
    run: spec.desireState === 'running',
    deleting: engine.metadata.deletionTimestamp !== undefined,
    launch: {
      kind: 'engine',
      volumeName: spec.volumeName,
      sizeBytes: spec.volumeSize,
      // Sorted so that the same map always gives the same command line (adoption compares it).
      replicaAddresses: Object.values(spec.replicaAddressMap).sort(),
      socketPath: `${socketDir}/${engine.metadata.name}.sock`,
      minimumWriteReplicas: spec.minimumWriteReplicas,
      epoch: spec.epoch,
      ...(spec.salvageRequested === true ? { salvage: true } : {}),
      ...(spec.disableFrontend === true ? { disableFrontend: true } : {}),
      ...(limits.maxCount > 0 ? { snapshotMaxCount: limits.maxCount } : {}),
      ...(limits.maxSizeBytes > 0 ? { snapshotMaxSizeBytes: limits.maxSizeBytes } : {}),
    },
  };
}
