// The processes of one fault scenario: N `shorthorn replica` daemons on fixed loopback ports, each
// optionally behind a seeded fault proxy and optionally with a fault-injecting disk layer
// (--fault-config, docs/reliability.md), and one `shorthorn engine` with a short request timeout
// (T_r) serving NBD on a unix socket. Replicas restart on the same port, with or without faults.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dataProcessThreadPoolSize } from '../../src/lib/limits.ts';
import { faultInjectionEnvVar } from '../../src/replica/fault-config.ts';
import { openReplicaStore } from '../../src/replica/layered-store.ts';
import { NodeReplicaFiles } from '../../src/replica/node/node-replica-files.ts';
import { systemClock } from '../../src/bin/system-clock.ts';
import { startDaemon, waitFor, type Daemon } from '../harness/daemon.ts';
import { FaultProxy } from '../harness/fault-proxy.ts';
import { freePort } from '../harness/free-port.ts';
import type { RebuildProgress } from '../../src/engine/engine.ts';
import { NbdWorkloadClient } from './nbd-workload-client.ts';

/** The engine's per-request timeout in scenarios (Longhorn's 8 s is too slow for CI). */
export const requestTimeoutMs = 3000;
export const pingIntervalMs = 500;

export interface ScenarioReplica {
  readonly index: number;
  readonly dir: string;
  readonly port: number;
  readonly proxy: FaultProxy | null;
  /** What the engine connects to: the proxy when there is one. */
  readonly address: string;
  daemon: Daemon | null;
}

type Mode = 'rw' | 'wo' | 'err';

export interface StatusJson {
  readonly generation: number;
  readonly replicas: readonly { address: string; mode: Mode; lastError: string | null }[];
  readonly rebuilds: readonly RebuildProgress[];
}

export class ScenarioCluster {
  readonly dir: string;
  readonly volume: string;
  readonly sizeBytes: number;
  readonly replicas: ScenarioReplica[] = [];
  readonly socket: string;
  engine: Daemon | null = null;
  controlUrl = '';
  readonly log: string[] = [];
  /**
   * Every daemon this cluster started, in order, stopped or killed ones included: the evidence of
   * a failed run is written after the final checks have stopped them all (and a replaced
   * engine or a restarted replica may be the one that saw the fault).
   */
  private readonly started: { readonly label: string; readonly daemon: Daemon; readonly tailChars: number }[] = [];
  /** The engines' --minimum-write-replicas unless startEngine says otherwise. */
  readonly minimumWriteReplicas: number;
  private stopped = false;

  private constructor(options: { dir: string; volume: string; sizeBytes: number; minimumWriteReplicas?: number }) {
    this.dir = options.dir;
    this.minimumWriteReplicas = options.minimumWriteReplicas ?? 1;
    this.volume = options.volume;
    this.sizeBytes = options.sizeBytes;
    this.socket = join(options.dir, 'nbd.sock');
  }

  /**
   * Start the replicas and the engine. `faults(i)` gives replica i's disk fault config (or
   * nothing); with `proxies` every replica is reached through a fault proxy seeded from `seed`.
   */
  static async start(options: {
    dir: string;
    volume: string;
    sizeBytes: number;
    replicaCount: number;
    seed: number;
    proxies?: boolean;
    minimumWriteReplicas?: number;
    faults?: (args: { index: number; address: string; readSource: boolean }) => object | undefined;
  }): Promise<ScenarioCluster> {
    const cluster = new ScenarioCluster(options);
    try {
      for (let i = 0; i < options.replicaCount; i++) await cluster.addReplica({ proxy: options.proxies === true, seed: options.seed + i });
      // The engine reads from the rw replica whose address sorts first (engine/start-choice.ts), so
      // a scenario can aim a fault at the read source before anything starts.
      const readSource = cluster.replicas.map((r) => r.address).sort()[0];
      await Promise.all(cluster.replicas.map((r) => cluster.startReplica(r, options.faults?.({ index: r.index, address: r.address, readSource: r.address === readSource }))));
      await cluster.startEngine();
    } catch (error) {
      // The caller never gets the cluster, so it cannot stop what did start: stop it here.
      await cluster.stop().catch((stopError: unknown) => cluster.note(`stop after a failed start failed: ${String(stopError)}`));
      throw error;
    }
    return cluster;
  }

  /** Create the record of a new replica (not started); its port is fixed from now on. */
  async addReplica(options: { proxy: boolean; seed: number }): Promise<ScenarioReplica> {
    const index = this.replicas.length;
    const dir = join(this.dir, `replica-${index}`);
    await mkdir(dir, { recursive: true });
    const port = await freePort();
    const proxy = options.proxy ? await FaultProxy.start({ targetPort: port, seed: options.seed }) : null;
    const replica: ScenarioReplica = { index, dir, port, proxy, address: proxy === null ? `127.0.0.1:${port}` : proxy.address, daemon: null };
    this.replicas.push(replica);
    return replica;
  }

  /** Start (or restart) a replica daemon on its directory and port, with a disk fault config or none (and more environment, e.g. libfaketime's). */
  async startReplica(replica: ScenarioReplica, faults?: object, extraEnv?: Record<string, string>): Promise<void> {
    const args = ['replica', '--dir', replica.dir, '--size', String(this.sizeBytes), '--volume', this.volume, '--listen', `127.0.0.1:${replica.port}`];
    const env: Record<string, string> = { UV_THREADPOOL_SIZE: String(dataProcessThreadPoolSize), ...extraEnv };
    if (faults !== undefined) {
      const file = `${replica.dir}.faults.json`;
      await writeFile(file, JSON.stringify(faults));
      args.push('--fault-config', file);
      env[faultInjectionEnvVar] = '1';
    }
    replica.daemon = await startDaemon({ args, readyPattern: /listening on (\S+)/, env, timeoutMs: 60_000 });
    this.started.push({ label: `replica ${replica.index} (pid ${replica.daemon.pid})`, daemon: replica.daemon, tailChars: 3000 });
    this.note(`replica ${replica.index} (${replica.address}) started${faults === undefined ? '' : ` with faults ${JSON.stringify(faults)}`}, pid ${replica.daemon.pid}`);
  }

  /**
   * Start an engine on every replica (or on `replicas`); `salvage` starts it with `--salvage`
   * (start from the newest reachable members even if some are missing). Rejects with the
   * engine's output when it refuses to start.
   */
  async startEngine(options: { salvage?: boolean; replicas?: readonly ScenarioReplica[]; env?: Record<string, string>; minimumWriteReplicas?: number } = {}): Promise<void> {
    const args = ['engine', '--name', this.volume, '--size', String(this.sizeBytes), '--nbd-socket', this.socket];
    args.push('--timeout-ms', String(requestTimeoutMs), '--ping-interval-ms', String(pingIntervalMs));
    for (const r of options.replicas ?? this.replicas) args.push('--replica', r.address);
    if (options.salvage === true) args.push('--salvage');
    const w = options.minimumWriteReplicas ?? this.minimumWriteReplicas;
    if (w !== 1) args.push('--minimum-write-replicas', String(w));
    this.engine = await startDaemon({ args, readyPattern: /control on (\S+)/, env: { UV_THREADPOOL_SIZE: String(dataProcessThreadPoolSize), ...options.env }, timeoutMs: 60_000 });
    this.started.push({ label: `engine (pid ${this.engine.pid})`, daemon: this.engine, tailChars: 6000 });
    this.controlUrl = `http://${this.engine.ready[1] ?? ''}`;
    this.note(`engine started${options.salvage === true ? ' (salvage)' : ''}, pid ${this.engine.pid}`);
  }

  connect(): Promise<NbdWorkloadClient> {
    return NbdWorkloadClient.connect(this.socket, this.volume);
  }

  note(message: string): void {
    this.log.push(`${new Date().toISOString()} ${message}`);
  }

  async control(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const response = await fetch(`${this.controlUrl}${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    return { status: response.status, json: await response.json() };
  }

  async status(): Promise<StatusJson> {
    const { status, json } = await this.control('GET', '/v1/status');
    if (status !== 200) throw new Error(`engine status: HTTP ${status}`);
    return json as StatusJson;
  }

  async modeOf(replica: ScenarioReplica): Promise<Mode | undefined> {
    return (await this.status()).replicas.find((r) => r.address === replica.address)?.mode;
  }

  /** Wait for a replica to be in `mode`; resolves with how long it took. */
  async waitForMode(replica: ScenarioReplica, mode: Mode, timeoutMs: number): Promise<number> {
    const started = Date.now();
    await waitFor(`replica ${replica.index} (${replica.address}) in mode ${mode}`, async () => ((await this.modeOf(replica)) === mode ? true : undefined), timeoutMs);
    this.note(`replica ${replica.index} is ${mode} after ${Date.now() - started} ms`);
    return Date.now() - started;
  }

  /** The rw replicas in read order (the read source first). */
  async rwReplicas(): Promise<ScenarioReplica[]> {
    const status = await this.status();
    return status.replicas.filter((s) => s.mode === 'rw').map((s) => this.replicas.find((r) => r.address === s.address)!);
  }

  async startRebuild(replica: ScenarioReplica, bandwidthBytesPerSecond?: number): Promise<void> {
    const body = { address: replica.address, ...(bandwidthBytesPerSecond === undefined ? {} : { bandwidthBytesPerSecond }) };
    const started = await this.control('POST', '/v1/rebuilds', body);
    if (started.status !== 202) throw new Error(`rebuild of ${replica.address} refused: ${started.status} ${JSON.stringify(started.json)}`);
    this.note(`rebuild of replica ${replica.index} started`);
  }

  async rebuildProgress(replica: ScenarioReplica): Promise<RebuildProgress | undefined> {
    const { json } = await this.control('GET', '/v1/rebuilds');
    return (json as { rebuilds: RebuildProgress[] }).rebuilds.find((r) => r.address === replica.address);
  }

  async waitForRebuild(replica: ScenarioReplica, timeoutMs = 120_000): Promise<RebuildProgress> {
    const done = await waitFor(
      `rebuild of replica ${replica.index}`,
      async () => {
        const r = await this.rebuildProgress(replica);
        if (r?.state === 'failed') throw new Error(`rebuild of replica ${replica.index} failed: ${r.error ?? '?'}`);
        return r?.state === 'done' ? r : undefined;
      },
      timeoutMs,
    );
    this.note(`rebuild of replica ${replica.index} done: ${done.doneBytes} bytes sent, ${done.skippedBytes} matched, source ${done.source ?? '?'}`);
    return done;
  }

  async rebuild(replica: ScenarioReplica, bandwidthBytesPerSecond?: number): Promise<RebuildProgress> {
    await this.startRebuild(replica, bandwidthBytesPerSecond);
    return this.waitForRebuild(replica);
  }

  /** Stop the engine and every replica cleanly (flushing), and close the proxies. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.engine?.stop();
    this.engine = null;
    for (const r of this.replicas) {
      await r.daemon?.stop();
      r.daemon = null;
    }
    await Promise.all(this.replicas.map((r) => (r.proxy === null ? Promise.resolve() : r.proxy.close())));
  }

  /** A stopped replica's flattened data over [0, lengthBytes), read from its files offline. */
  static async flattened(replica: ScenarioReplica, lengthBytes: number): Promise<Uint8Array> {
    const store = await openReplicaStore({ dir: replica.dir, files: new NodeReplicaFiles(), clock: systemClock });
    try {
      return await store.read(0, lengthBytes);
    } finally {
      await store.close();
    }
  }

  /** Every process's output and the scenario log, for failure reports. */
  describe(): string {
    const parts = [`scenario log:\n${this.log.join('\n')}`];
    for (const { label, daemon, tailChars } of this.started) parts.push(`${label} output (tail):\n${daemon.output().slice(-tailChars)}`);
    return parts.join('\n\n');
  }
}
