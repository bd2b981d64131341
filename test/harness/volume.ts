// A replicated volume made of real processes for end-to-end tests: N `shorthorn replica` daemons
// on fixed loopback ports (so a killed replica comes back at the same address), one
// `shorthorn engine` serving NBD on a unix socket, and helpers to reach it with real clients.
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run, startDaemon, waitFor, type Daemon } from './daemon.ts';
import { freePort } from './free-port.ts';
import { dataProcessEnv } from '../../src/lib/data-process-env.ts';

export interface ReplicaProcess {
  readonly dir: string;
  readonly address: string;
  daemon: Daemon;
}

export async function startReplica(options: { dir: string; sizeBytes: number; volume: string; port?: number }): Promise<ReplicaProcess> {
  const port = options.port ?? (await freePort());
  const daemon = await startDaemon({
    args: ['replica', '--dir', options.dir, '--size', String(options.sizeBytes), '--volume', options.volume, '--listen', `127.0.0.1:${port}`],
    readyPattern: /listening on (\S+)/,
    env: dataProcessEnv(process.env['NODE_OPTIONS']),
  });
  return { dir: options.dir, address: `127.0.0.1:${port}`, daemon };
}

/** Restart a replica process on its directory and address (after a kill). */
export async function restartReplica(replica: ReplicaProcess, options: { sizeBytes: number; volume: string }): Promise<void> {
  const port = Number(replica.address.split(':')[1]);
  const again = await startReplica({ dir: replica.dir, port, ...options });
  replica.daemon = again.daemon;
}

export interface EngineProcess {
  readonly daemon: Daemon;
  readonly socket: string;
  readonly uri: string;
  readonly controlUrl: string;
}

export async function startEngineProcess(options: {
  volume: string;
  sizeBytes: number;
  replicas: readonly string[];
  socket: string;
  extraArgs?: readonly string[];
}): Promise<EngineProcess> {
  const args = ['engine', '--name', options.volume, '--size', String(options.sizeBytes), '--nbd-socket', options.socket];
  for (const address of options.replicas) args.push('--replica', address);
  const daemon = await startDaemon({
    args: [...args, ...(options.extraArgs ?? [])],
    readyPattern: /control on (\S+)/,
    env: dataProcessEnv(process.env['NODE_OPTIONS']),
  });
  const control = daemon.ready[1] ?? '';
  return {
    daemon,
    socket: options.socket,
    uri: `nbd+unix:///${options.volume}?socket=${options.socket}`,
    controlUrl: `http://${control}`,
  };
}

export interface EngineStatusJson {
  readonly generation: number;
  readonly epoch: number;
  readonly replicas: readonly { address: string; mode: 'rw' | 'wo' | 'err'; lastError: string | null }[];
}

export async function engineStatus(engine: EngineProcess): Promise<EngineStatusJson> {
  const response = await fetch(`${engine.controlUrl}/v1/status`);
  if (!response.ok) throw new Error(`engine status: HTTP ${response.status}`);
  return (await response.json()) as EngineStatusJson;
}

export interface Cluster {
  readonly volume: string;
  readonly sizeBytes: number;
  readonly replicas: ReplicaProcess[];
  engine: EngineProcess;
}

export async function startCluster(options: { dir: string; volume: string; sizeBytes: number; replicaCount: number }): Promise<Cluster> {
  const replicas: ReplicaProcess[] = [];
  for (let i = 0; i < options.replicaCount; i++) {
    const dir = join(options.dir, `replica-${i}`);
    await mkdir(dir, { recursive: true });
    replicas.push(await startReplica({ dir, sizeBytes: options.sizeBytes, volume: options.volume }));
  }
  const engine = await startEngineProcess({
    volume: options.volume,
    sizeBytes: options.sizeBytes,
    replicas: replicas.map((r) => r.address),
    socket: join(options.dir, 'nbd.sock'),
  });
  return { volume: options.volume, sizeBytes: options.sizeBytes, replicas, engine };
}

export interface LoopAttachment {
  readonly device: string;
  readonly fuseDir: string;
  detach(): Promise<void>;
}

/** nbdfuse exposes the export as a file; losetup turns it into /dev/loopN. */
export async function attachLoop(uri: string, fuseDir: string): Promise<LoopAttachment> {
  await mkdir(fuseDir, { recursive: true });
  const fuse = await startDaemon({ command: 'nbdfuse', args: [fuseDir, uri], timeoutMs: 10000 });
  const file = join(fuseDir, 'nbd');
  await waitFor('nbdfuse to expose the export', async () => {
    try {
      return (await stat(file)).size > 0 ? true : undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  });
  const device = (await run('losetup', ['-f', '--show', file])).stdout.trim();
  return {
    device,
    fuseDir,
    detach: async () => {
      await run('losetup', ['-d', device], { allowFailure: true });
      await run('fusermount3', ['-u', fuseDir], { allowFailure: true });
      await fuse.stop();
    },
  };
}
