// Running the host programs that turn an NBD URI into a mounted filesystem (nbdfuse, losetup,
// nbd-client, blkid, mkfs.ext4, mount, umount) and reading what the kernel says about processes
// and mounts. Thin I/O: the decisions are in local-device.ts.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { HostError } from './host-error.ts';

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Which Debian package holds each program, for the "install it" hint. */
const packageOf: Readonly<Record<string, string>> = {
  nbdfuse: 'libnbd-bin',
  'nbd-client': 'nbd-client',
  losetup: 'util-linux',
  blkid: 'util-linux',
  mount: 'mount',
  umount: 'mount',
  'mkfs.ext4': 'e2fsprogs',
  fusermount3: 'fuse3',
};

/** Longest a host tool may run: mkfs of a large volume over FUSE is the slowest. */
const toolTimeoutMs = 10 * 60_000;
/** Output kept from a tool, for the error message. */
const toolOutputMax = 64 * 1024;

/** Run `program args` to completion. Resolves with its exit code; rejects only if it cannot run. */
export function runTool(program: string, args: readonly string[]): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: toolTimeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (stdout.length < toolOutputMax) stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < toolOutputMax) stderr += chunk.toString();
    });
    child.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'ENOENT'
          ? new HostError('tool_missing', `${program} is not installed`, { hint: `apt-get install -y ${packageOf[program] ?? program}`, cause: error })
          : new HostError('tool_failed', `cannot run ${program}: ${error.message}`, { cause: error }),
      );
    });
    child.once('close', (code, signal) => resolve({ code: code ?? (signal === null ? 1 : 128), stdout, stderr }));
  });
}

/** Run a tool that must succeed; its stderr becomes the error. */
export async function mustRun(program: string, args: readonly string[], hint?: string): Promise<string> {
  const result = await runTool(program, args);
  if (result.code !== 0) {
    const why = (result.stderr.trim() || result.stdout.trim() || `exit code ${result.code}`).split('\n').slice(0, 5).join('; ');
    throw new HostError('tool_failed', `${program} ${args.join(' ')} failed: ${why}`, hint === undefined ? {} : { hint });
  }
  return result.stdout;
}

/** True when `program` can be found on PATH (`command -v`). */
export async function hasTool(program: string): Promise<boolean> {
  const result = await runTool('sh', ['-c', 'command -v "$0" >/dev/null', program]);
  return result.code === 0;
}

/**
 * A process's identity beyond its pid: its start time (field 22 of /proc/PID/stat) and command
 * line. A pid can be reused after the process ends; pid, start time and command line together
 * cannot. Undefined when no such process runs (or it is a zombie).
 */
export interface ProcessIdentity {
  readonly pid: number;
  readonly startTime: string;
  readonly commandLine: readonly string[];
}

export function processIdentity(pid: number): ProcessIdentity | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name in parentheses may contain spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    const startTime = fields[19];
    if (startTime === undefined) return undefined;
    const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '');
    return { pid, startTime, commandLine };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
    throw error;
  }
}

/** Undo the octal escapes (`\040` for a space) of /proc/self/mountinfo paths. */
function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The mount points (absolute paths) the kernel lists for this process's mount namespace. */
export function mountPoints(): Set<string> {
  const points = new Set<string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const field = line.split(' ')[4];
    if (field !== undefined) points.add(unescapeMountPath(field));
  }
  return points;
}

/** What a block device holds, from `blkid -p`: a filesystem or partition table type, or nothing. */
export async function probeSignature(device: string): Promise<string | undefined> {
  const result = await runTool('blkid', ['-p', '-o', 'export', device]);
  // blkid exits 2 when it finds no signature at all.
  if (result.code === 2) return undefined;
  if (result.code !== 0) throw new HostError('tool_failed', `blkid -p ${device} failed: ${result.stderr.trim() || `exit code ${result.code}`}`);
  const fields = new Map(result.stdout.split('\n').flatMap((line) => {
    const at = line.indexOf('=');
    return at <= 0 ? [] : [[line.slice(0, at), line.slice(at + 1)] as const];
  }));
  const type = fields.get('TYPE') ?? (fields.has('PTTYPE') ? `a ${fields.get('PTTYPE')} partition table` : undefined);
  return type ?? (result.stdout.trim() === '' ? undefined : 'an unknown signature');
}
