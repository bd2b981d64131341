// Turning an attached volume's NBD URI into a Linux block device on this host, and a mounted
// filesystem, and undoing it. With the kernel `nbd` module and `nbd-client`: /dev/nbdN. Without
// them (containers, hosts without the module): nbdfuse serves the volume as a file on a FUSE
// mount and a loop device sits on that file. Every step is recorded (attachment-state.ts) before
// the next starts, so detach — or the rollback of a failed attach — undoes exactly what was done,
// from the last step back. nbdfuse is started in its own session so it outlives this CLI.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { HostError } from './host-error.ts';
import { hasTool, mountPoints, mustRun, probeSignature, processIdentity, runTool } from './host-tools.ts';
import {
  type AttachmentState,
  type AttachStep,
  removeAttachmentState,
  volumeWorkDir,
  writeAttachmentState,
} from './attachment-state.ts';

export const filesystemFormats = ['ext4'] as const;
export type FilesystemFormat = (typeof filesystemFormats)[number];

export interface DeviceRequest {
  readonly volume: string;
  readonly node: string;
  /** `nbd+unix:///NAME?socket=PATH` from the engine's status. */
  readonly uri: string;
  readonly mountDir?: string;
  readonly format?: FilesystemFormat;
  /** Progress lines for the user ("no filesystem: making ext4"). */
  readonly say: (line: string) => void;
}

/** Deadline for nbdfuse to write its pid file (it does once the FUSE mount is up). */
const nbdfuseStartTimeoutMs = 20_000;
/** Deadline for nbdfuse to exit after SIGTERM. */
const nbdfuseStopTimeoutMs = 10_000;
const pollMs = 50;

/** The parts of an `nbd+unix:///EXPORT?socket=PATH` URI; other forms are refused. */
export function parseNbdUnixUri(uri: string): { exportName: string; socket: string } | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    // Not a URL at all: the caller reports it.
    return undefined;
  }
  const socket = url.searchParams.get('socket');
  if (url.protocol !== 'nbd+unix:' || socket === null || !socket.startsWith('/')) return undefined;
  return { exportName: decodeURIComponent(url.pathname.replace(/^\//, '')), socket };
}

/** Is the kernel NBD client usable here? Both the module and the `nbd-client` program are needed. */
export async function kernelNbdAvailable(): Promise<boolean> {
  return existsSync('/sys/module/nbd') && existsSync('/dev/nbd0') && (await hasTool('nbd-client'));
}

async function delay(ms: number): Promise<void> {
  await new Promise((resolveDelay) => setTimeout(resolveDelay, ms));
}

class StepLog {
  private state: AttachmentState;
  constructor(state: AttachmentState) {
    this.state = state;
    writeAttachmentState(state);
  }
  add(step: AttachStep): void {
    this.state = { ...this.state, steps: [...this.state.steps, step] };
    writeAttachmentState(this.state);
  }
  get current(): AttachmentState {
    return this.state;
  }
}

/** Start nbdfuse detached; resolves once its FUSE mount is up (it writes the pid file then). */
async function startNbdfuse(volume: string, uri: string): Promise<AttachStep & { kind: 'nbdfuse' }> {
  const workDir = volumeWorkDir(volume);
  const fuseDir = join(workDir, 'fuse');
  const pidFile = join(workDir, 'nbdfuse.pid');
  mkdirSync(fuseDir, { recursive: true, mode: 0o700 });
  rmSync(pidFile, { force: true });
  const logFd = openSync(join(workDir, 'nbdfuse.log'), 'a', 0o600);
  const child = spawn('nbdfuse', ['-P', pidFile, fuseDir, uri], { detached: true, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  let ended: string | undefined;
  child.once('exit', (code, signal) => (ended = signal ?? `exit code ${code ?? '?'}`));
  const spawned = await new Promise<number>((resolveSpawn, reject) => {
    child.once('spawn', () => resolveSpawn(child.pid ?? 0));
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT'
          ? new HostError('tool_missing', 'nbdfuse is not installed', { hint: 'apt-get install -y libnbd-bin fuse3', cause: error })
          : new HostError('tool_failed', `cannot start nbdfuse: ${error.message}`, { cause: error }),
      ),
    );
  });
  const deadline = Date.now() + nbdfuseStartTimeoutMs;
  for (;;) {
    if (ended !== undefined) {
      const log = readFileSync(join(workDir, 'nbdfuse.log'), 'utf8').trim().split('\n').slice(-3).join('; ');
      throw new HostError('tool_failed', `nbdfuse ${uri} ended (${ended}): ${log}`, { hint: 'is /dev/fuse there and the fuse3 package installed?' });
    }
    if (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '') break;
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new HostError('timeout', `nbdfuse did not mount ${fuseDir} within ${nbdfuseStartTimeoutMs} ms`);
    }
    await delay(pollMs);
  }
  child.unref();
  const identity = processIdentity(spawned);
  if (identity === undefined) throw new HostError('tool_failed', `nbdfuse (pid ${spawned}) ended right after it mounted ${fuseDir}`);
  return { kind: 'nbdfuse', pid: spawned, startTime: identity.startTime, fuseDir };
}

/** The first /dev/nbdN that no client holds (no /sys/block/nbdN/pid). */
function freeNbdDevice(): string {
  const names = readdirSync('/sys/block').filter((name) => /^nbd\d+$/.test(name)).sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
  const free = names.find((name) => !existsSync(`/sys/block/${name}/pid`));
  if (free === undefined) throw new HostError('busy', 'every /dev/nbdN is in use', { hint: 'detach a volume, or load the module with more devices: modprobe nbd nbds_max=64' });
  return `/dev/${free}`;
}

/** Make the device: nbd-client where the kernel module exists, else nbdfuse + losetup. */
async function attachDevice(request: DeviceRequest, log: StepLog): Promise<string> {
  const target = parseNbdUnixUri(request.uri);
  if (target === undefined) throw new HostError('refused', `cannot make a device of ${request.uri}: only nbd+unix:// URIs are supported`);
  if (!existsSync(target.socket)) {
    throw new HostError('refused', `the volume's NBD socket ${target.socket} is not on this host`, {
      hint: `run this command on the host of node ${request.node}`,
    });
  }
  if (await kernelNbdAvailable()) {
    const device = freeNbdDevice();
    await mustRun('nbd-client', ['-unix', target.socket, device, '-N', target.exportName]);
    log.add({ kind: 'nbd-client', device });
    return device;
  }
  request.say('the kernel nbd module is not loaded here: using nbdfuse + a loop device (with the module, nbd-client would give /dev/nbdN)');
  const fuse = await startNbdfuse(request.volume, request.uri);
  log.add(fuse);
  const backingFile = join(fuse.fuseDir, 'nbd');
  const device = (await mustRun('losetup', ['--find', '--show', backingFile], 'are loop devices available? ls /dev/loop*')).trim();
  log.add({ kind: 'loop', device, backingFile });
  return device;
}

async function mountDevice(request: DeviceRequest & { mountDir: string }, device: string, log: StepLog): Promise<void> {
  const dir = resolve(request.mountDir);
  if (mountPoints().has(dir)) throw new HostError('busy', `${dir} is a mount point already`, { hint: 'choose another directory, or unmount it first' });
  mkdirSync(dir, { recursive: true });
  if (readdirSync(dir).length > 0) {
    throw new HostError('refused', `${dir} is not empty: mounting over it would hide its files`, { hint: 'use an empty or new directory' });
  }
  const signature = await probeSignature(device);
  if (signature === undefined) {
    if (request.format === undefined) {
      throw new HostError('refused', `${device} (volume ${request.volume}) has no filesystem`, {
        hint: `add --format ext4 to make one (it is only ever made on a device with no filesystem), or use --device without --mount`,
      });
    }
    request.say(`volume ${request.volume} has no filesystem: making ${request.format} on ${device}`);
    await mustRun(`mkfs.${request.format}`, ['-q', device]);
  } else if (request.format !== undefined) {
    request.say(`volume ${request.volume} already holds ${signature}: not formatting (a filesystem is never made over data)`);
  }
  await mustRun('mount', [device, dir]);
  log.add({ kind: 'mount', device, dir });
}

/**
 * Make the volume a device (and mount it). On failure, what was done is undone and the error
 * thrown; if the undo fails too, the record stays for `volume detach`.
 */
export async function setUpDevice(request: DeviceRequest): Promise<AttachmentState> {
  const log = new StepLog({ version: 1, volume: request.volume, node: request.node, uri: request.uri, createdAt: new Date().toISOString(), steps: [] });
  try {
    const device = await attachDevice(request, log);
    if (request.mountDir !== undefined) await mountDevice({ ...request, mountDir: request.mountDir }, device, log);
    return log.current;
  } catch (error) {
    try {
      await tearDownDevice(log.current, request.say);
    } catch (undoError) {
      request.say(`could not undo it all (${undoError instanceof Error ? undoError.message : String(undoError)}); \`shorthorn volume detach ${request.volume}\` retries`);
    }
    throw error;
  }
}

async function stopNbdfuse(step: AttachStep & { kind: 'nbdfuse' }): Promise<void> {
  const identity = processIdentity(step.pid);
  // Only signal the process we started: same pid, same start time, still nbdfuse on our dir.
  const ours = identity !== undefined && identity.startTime === step.startTime && identity.commandLine.includes(step.fuseDir);
  if (ours) {
    process.kill(step.pid, 'SIGTERM');
    const deadline = Date.now() + nbdfuseStopTimeoutMs;
    while (processIdentity(step.pid)?.startTime === step.startTime) {
      if (Date.now() > deadline) throw new HostError('timeout', `nbdfuse (pid ${step.pid}) did not exit within ${nbdfuseStopTimeoutMs} ms of SIGTERM`, { hint: `kill -9 ${step.pid}, then detach again` });
      await delay(pollMs);
    }
  }
  // nbdfuse unmounts on SIGTERM; if it was killed hard, its mount is left behind.
  if (mountPoints().has(step.fuseDir)) await mustRun('fusermount3', ['-u', step.fuseDir]);
  const workDir = resolve(step.fuseDir, '..');
  rmdirSync(step.fuseDir);
  for (const file of ['nbdfuse.pid', 'nbdfuse.log']) rmSync(join(workDir, file), { force: true });
  rmdirSync(workDir);
}

async function undoStep(step: AttachStep, say: (line: string) => void): Promise<void> {
  switch (step.kind) {
    case 'mount': {
      if (!mountPoints().has(step.dir)) return;
      const result = await runTool('umount', [step.dir]);
      if (result.code !== 0) {
        if (/busy/i.test(result.stderr)) {
          throw new HostError('busy', `umount ${step.dir} failed: ${result.stderr.trim()}`, {
            hint: `a process uses ${step.dir} (\`fuser -vm ${step.dir}\` shows which; a shell cd'ed into it counts): stop it and detach again`,
          });
        }
        throw new HostError('tool_failed', `umount ${step.dir} failed: ${result.stderr.trim() || `exit code ${result.code}`}`);
      }
      return;
    }
    case 'loop': {
      const name = basename(step.device);
      const backing = `/sys/block/${name}/loop/backing_file`;
      // Detach the loop device only while it still sits on our file: it may have been freed and reused.
      if (!existsSync(backing)) return;
      if (readFileSync(backing, 'utf8').trim() !== step.backingFile) {
        say(`${step.device} no longer sits on ${step.backingFile}: left alone`);
        return;
      }
      await mustRun('losetup', ['--detach', step.device]);
      return;
    }
    case 'nbd-client':
      await mustRun('nbd-client', ['-d', step.device]);
      return;
    case 'nbdfuse':
      await stopNbdfuse(step);
      return;
    default: {
      const never: never = step;
      throw new HostError('bad_state', `unknown step ${JSON.stringify(never)}`);
    }
  }
}

/** Undo every recorded step, last first, rewriting the record after each; then drop the record. */
export async function tearDownDevice(state: AttachmentState, say: (line: string) => void): Promise<void> {
  let steps = [...state.steps];
  while (steps.length > 0) {
    const step = steps[steps.length - 1]!;
    await undoStep(step, say);
    steps = steps.slice(0, -1);
    writeAttachmentState({ ...state, steps });
  }
  removeAttachmentState(state.volume);
}
