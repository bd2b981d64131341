// Starting and stopping the processes a test owns: a daemon is spawned, its output is watched for
// a ready line, and it is stopped by PID (SIGTERM, or SIGKILL for crash tests). Every process a
// test starts is registered, so `stopAll()` in an `after` hook leaves nothing behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '../../..');
export const shorthornBin = join(repoRoot, 'dist/src/bin/shorthorn.js');

export interface Daemon {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The capture groups of the ready pattern. */
  readonly ready: RegExpMatchArray;
  output(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit: a crash. */
  kill9(): Promise<void>;
  exited(): Promise<number | null>;
}

const running = new Set<Daemon>();

export async function startDaemon(options: {
  command?: string;
  args: readonly string[];
  /** A line the daemon prints when it is ready; without one, ready once the process has spawned. */
  readyPattern?: RegExp;
  timeoutMs?: number;
  env?: Record<string, string>;
}): Promise<Daemon> {
  const command = options.command ?? process.execPath;
  const args = options.command === undefined ? ['--enable-source-maps', shorthornBin, ...options.args] : [...options.args];
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  let text = '';
  const exit = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const ready = await new Promise<RegExpMatchArray>((resolveReady, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} not ready after ${options.timeoutMs ?? 20000} ms:\n${text}`));
    }, options.timeoutMs ?? 20000);
    if (options.readyPattern === undefined) {
      child.once('spawn', () => {
        clearTimeout(timer);
        resolveReady(['']);
      });
    }
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      const match = options.readyPattern?.exec(text) ?? null;
      if (match !== null) {
        clearTimeout(timer);
        resolveReady(match);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${command} ${args.join(' ')} exited with ${code} before it was ready:\n${text}`));
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${command} has no pid`);
  const daemon: Daemon = {
    child,
    pid,
    ready,
    output: () => text,
    stop: async () => {
      running.delete(daemon);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exit;
    },
    kill9: async () => {
      running.delete(daemon);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exit;
    },
    exited: () => exit,
  };
  running.add(daemon);
  return daemon;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((d) => d.kill9()));
}

/** Run a command to completion without blocking the event loop; rejects on non-zero exit. */
export function run(
  command: string,
  args: readonly string[],
  options: { input?: Uint8Array; allowFailure?: boolean } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0 && options.allowFailure !== true) {
        reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${stdout}\n${stderr}`));
      } else {
        resolveRun({ code, stdout, stderr });
      }
    });
    child.stdin.end(options.input);
  });
}

/** Wait until `check` returns a value other than undefined, or fail after the deadline. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 20000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delayMs = 10;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delayMs));
    delayMs = Math.min(delayMs * 2, 200);
  }
}

export async function withTempDir<T>(prefix: string, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `shorthorn-${prefix}-`));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
