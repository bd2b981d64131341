// Engine and replica processes an earlier run of this node agent started but never recorded: the
// agent spawns a process, then saves its table (processes.json); killed in between (or with the
// save failing), the process runs on and a restarted agent, not knowing it, would start a second
// one for the same replica directory or engine socket. At start-up the agent looks in /proc for
// processes with its own launcher and a data directory on one of its disks (replica) or a socket
// in its socket directory (engine) that its table does not hold, and stops them before its first
// pass. Such a process was never published as started (the status is written after the table),
// though a replica restarted on its old port may have been reached by an engine that knew that
// address; stopping it is what a replica crash is, and the engine rebuilds the replica.
import { readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { nodeInstancesMax } from '../lib/limits.ts';
import type { InstanceKind } from './instance-plan.ts';
import { readProc, type ProcInfo } from './process-table.ts';

export interface StrayScope {
  /** The command that runs `shorthorn` for this agent: [node, ...execArgv, .../shorthorn.js]. */
  readonly launcher: readonly string[];
  /** Absolute paths of this node's disks. */
  readonly diskPaths: readonly string[];
  /** The agent's socket directory (engines' NBD sockets). */
  readonly socketDir: string;
}

/** Which of our kinds this command line is, if it is one this agent would have started. Pure. */
export function ownedInstanceKind(argv: readonly string[], scope: StrayScope): InstanceKind | undefined {
  const { launcher } = scope;
  if (argv.length <= launcher.length || !launcher.every((part, i) => argv[i] === part)) return undefined;
  const kind = argv[launcher.length];
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag, launcher.length);
    return i < 0 ? undefined : argv[i + 1];
  };
  if (kind === 'replica') {
    const dir = value('--dir');
    return dir !== undefined && scope.diskPaths.some((disk) => resolve(dir).startsWith(`${resolve(disk)}/replicas/`)) ? 'replica' : undefined;
  }
  if (kind === 'engine') {
    const socket = value('--nbd-socket');
    return socket !== undefined && resolve(socket).startsWith(`${resolve(scope.socketDir)}/`) ? 'engine' : undefined;
  }
  return undefined;
}

export interface StrayProcess {
  readonly pid: number;
  readonly kind: InstanceKind;
  readonly info: ProcInfo;
}

/** Live processes in /proc that this agent would have started and that are not among `known` pids. */
export async function findStrayProcesses(scope: StrayScope, known: ReadonlySet<number>): Promise<StrayProcess[]> {
  const out: StrayProcess[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (known.has(pid) || pid === process.pid) continue;
    const info = await readProc(pid);
    if (info === undefined || info.state === 'Z' || info.state === 'X') continue;
    const kind = ownedInstanceKind(info.argv, scope);
    if (kind !== undefined) out.push({ pid, kind, info });
    // More than a node can run means something else is wrong; do not act on a flood.
    if (out.length > nodeInstancesMax) break;
  }
  return out;
}

/**
 * Stop the strays: SIGKILL each after checking the pid is still that process, and wait (5 s at
 * most) for it to go, so its port and files are free before the agent's first pass. Returns how
 * many were stopped.
 */
export async function stopStrayProcesses(scope: StrayScope, known: ReadonlySet<number>, log: (message: string) => void): Promise<number> {
  let stopped = 0;
  for (const stray of await findStrayProcesses(scope, known)) {
    const now = await readProc(stray.pid);
    if (now?.startTime !== stray.info.startTime) continue;
    log(`stopping stray ${stray.kind} process pid ${stray.pid} that an earlier run of this agent started but never recorded: ${stray.info.argv.slice(scope.launcher.length).join(' ')}`);
    try {
      process.kill(stray.pid, 'SIGKILL');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
    stopped++;
    for (let i = 0; i < 100; i++) {
      const info = await readProc(stray.pid);
      if (info === undefined || info.startTime !== stray.info.startTime || info.state === 'Z' || info.state === 'X') break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return stopped;
}
