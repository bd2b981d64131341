// The node agent's memory across its own restarts: which processes it runs (name, kind, port, pid,
// the kernel's start time of that pid and the exact argv), kept in `<data>/processes.json`. On
// start the agent adopts an entry only if /proc shows the same pid with the same start time and
// command line, so a recycled pid is never mistaken for (or killed as) one of ours.
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ShorthornError } from '../lib/errors.ts';
import { nodeInstancesMax } from '../lib/limits.ts';
import type { InstanceKind } from './instance-plan.ts';

export interface ProcessEntry {
  readonly name: string;
  readonly kind: InstanceKind;
  readonly port: number;
  readonly pid?: number;
  /** Field 22 of /proc/PID/stat: clock ticks after boot; with the pid, a process's identity. */
  readonly startTime?: string;
  readonly argv?: readonly string[];
}

export type ProcessTableErrorCode = 'corrupt';
export class ProcessTableError extends ShorthornError<ProcessTableErrorCode> {}

export const processTableFileName = 'processes.json';

export async function loadProcessTable(dataDir: string): Promise<ProcessEntry[]> {
  const path = join(dataDir, processTableFileName);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ProcessTableError('corrupt', `${path} is not JSON`, { cause: error });
  }
  const entries = (parsed as { entries?: unknown }).entries;
  if (!Array.isArray(entries) || entries.length > nodeInstancesMax) {
    throw new ProcessTableError('corrupt', `${path} has no entries list of at most ${nodeInstancesMax}`);
  }
  return entries.map((value: unknown, i) => checkEntry(value, `${path} entry ${i}`));
}

function checkEntry(value: unknown, where: string): ProcessEntry {
  const e = value as Record<string, unknown>;
  const ok =
    typeof e === 'object' && e !== null &&
    typeof e['name'] === 'string' &&
    (e['kind'] === 'replica' || e['kind'] === 'engine') &&
    Number.isInteger(e['port']) &&
    (e['pid'] === undefined || Number.isInteger(e['pid'])) &&
    (e['startTime'] === undefined || typeof e['startTime'] === 'string') &&
    (e['argv'] === undefined || (Array.isArray(e['argv']) && e['argv'].every((a) => typeof a === 'string')));
  if (!ok) throw new ProcessTableError('corrupt', `${where} is malformed: ${JSON.stringify(value).slice(0, 200)}`);
  return value as ProcessEntry;
}

/** Write the table atomically: a crash leaves the old table or the new one. */
export async function saveProcessTable(dataDir: string, entries: readonly ProcessEntry[]): Promise<void> {
  const path = join(dataDir, processTableFileName);
  const temp = `${path}.tmp`;
  const file = await open(temp, 'w');
  try {
    await file.writeFile(JSON.stringify({ version: 1, entries }, null, 1));
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
  const dir = await open(dataDir, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export interface ProcInfo {
  readonly startTime: string;
  /** R, S, D, Z, T, … (field 3 of /proc/PID/stat). */
  readonly state: string;
  readonly argv: readonly string[];
}

/** What /proc says about a pid, or undefined when there is no such process. */
export async function readProc(pid: number): Promise<ProcInfo | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = rest[0];
    const startTime = rest[19];
    if (state === undefined || startTime === undefined) return undefined;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    const argv = cmdline.split('\0');
    if (argv.at(-1) === '') argv.pop();
    return { startTime, state, argv };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw error;
  }
}

/** True when `pid` is still the live process the entry recorded (not a zombie, not a reused pid). */
export function isSameProcess(entry: ProcessEntry, info: ProcInfo | undefined): boolean {
  if (info === undefined || info.state === 'Z' || info.state === 'X') return false;
  if (entry.startTime !== info.startTime) return false;
  const argv = entry.argv ?? [];
  return argv.length === info.argv.length && argv.every((arg, i) => arg === info.argv[i]);
}
