// The configuration of the fault-injecting disk layer (faulty-replica-files.ts), for tests only:
// a seed, rules that fail, slow, tear or corrupt chosen file operations, whether unsynced writes
// die with the process, and named fault points that crash it. Parsed from JSON with every field
// checked: a config file is input like any other, and a typo must not silently inject nothing.
//
// {
//   "seed": 7,
//   "loseUnsynced": true,
//   "crashAtPoints": ["snapshot:committed"],
//   "rules": [
//     { "op": "write", "type": "eio", "probability": 0.01, "path": ".data", "offsetBytes": 0, "lengthBytes": 1048576 },
//     { "op": "sync", "type": "eio", "after": 3, "count": 1 },
//     { "op": "write", "type": "torn", "after": 200, "count": 1, "tornBytes": 1536 },
//     { "op": "read", "type": "latency", "delayMs": 20, "jitterMs": 10 }
//   ]
// }
import { faultRulesMax } from '../lib/limits.ts';
import { ReplicaError } from './replica-error.ts';

export const faultOps = ['read', 'write', 'sync', 'truncate', 'open', 'rename', 'remove', 'syncDir'] as const;
export type FaultOp = (typeof faultOps)[number];

export const faultTypes = ['eio', 'enospc', 'torn', 'latency', 'corrupt', 'crash'] as const;
/**
 * eio, enospc: the operation fails with that errno and does nothing.
 * torn: a write persists only its first tornBytes, then the process is killed (SIGKILL).
 * latency: the operation waits delayMs ± jitterMs first.
 * corrupt: a read returns its data with bytes flipped (the file is not changed).
 * crash: the process is killed (SIGKILL) before the operation runs.
 */
export type FaultType = (typeof faultTypes)[number];

export interface FaultRule {
  readonly op: FaultOp;
  readonly type: FaultType;
  /** Chance that a matching operation fires the rule (after `after` matches); default 1. */
  readonly probability: number;
  /** Matching operations to let pass before the rule may fire; default 0. */
  readonly after: number;
  /** How many times the rule fires at most; default unlimited. */
  readonly count: number;
  /** Only files whose path contains this (e.g. ".data", "replica.meta"). */
  readonly path: string | null;
  /** Only reads and writes overlapping [offsetBytes, offsetBytes + lengthBytes). */
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  readonly delayMs: number;
  readonly jitterMs: number;
  /** torn: bytes of the write that reach the file (rounded down to whole 512-byte sectors, at least one sector short). */
  readonly tornBytes: number;
}

export interface FaultConfig {
  readonly seed: number;
  /** Writes stay in this process's memory until sync(): a crash (kill -9) loses them, as a power loss would. */
  readonly loseUnsynced: boolean;
  /** Named fault points of multi-step operations (layered-store.ts) at which the process kills itself. */
  readonly crashAtPoints: readonly string[];
  readonly rules: readonly FaultRule[];
}

/** Set in the environment of a process that may inject faults; without it a fault config is refused. */
export const faultInjectionEnvVar = 'SHORTHORN_FAULT_INJECTION';

function bad(message: string): never {
  throw new ReplicaError('invalid_argument', `Bad fault config: ${message}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKeys(where: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) if (!allowed.includes(key)) bad(`${where}: unknown field ${JSON.stringify(key)}`);
}

function number(where: string, value: unknown, fallback: number, range: { min: number; max: number; integer: boolean }): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < range.min || value > range.max || (range.integer && !Number.isSafeInteger(value))) {
    bad(`${where} must be ${range.integer ? 'an integer' : 'a number'} from ${range.min} to ${range.max}, not ${JSON.stringify(value)}`);
  }
  return value;
}

function oneOf<T extends string>(where: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) bad(`${where} must be one of ${allowed.join(', ')}, not ${JSON.stringify(value)}`);
  return value as T;
}

const ruleKeys = ['op', 'type', 'probability', 'after', 'count', 'path', 'offsetBytes', 'lengthBytes', 'delayMs', 'jitterMs', 'tornBytes'] as const;
const configKeys = ['seed', 'loseUnsynced', 'crashAtPoints', 'rules'] as const;
type Fields<K extends string> = { readonly [key in K]?: unknown };
const big = Number.MAX_SAFE_INTEGER;

function parseRule(where: string, raw: unknown): FaultRule {
  if (!isRecord(raw)) bad(`${where} must be an object`);
  checkKeys(where, raw, ruleKeys);
  const value: Fields<(typeof ruleKeys)[number]> = raw;
  const op = oneOf(`${where}.op`, value.op, faultOps);
  const type = oneOf(`${where}.type`, value.type, faultTypes);
  if (type === 'torn' && op !== 'write') bad(`${where}: torn applies to writes only`);
  if (type === 'corrupt' && op !== 'read') bad(`${where}: corrupt applies to reads only`);
  if (type === 'enospc' && op !== 'write' && op !== 'truncate' && op !== 'open' && op !== 'sync') bad(`${where}: enospc applies to write, truncate, open and sync`);
  if (value.path !== undefined && (typeof value.path !== 'string' || value.path.length === 0 || value.path.length > 256)) {
    bad(`${where}.path must be a non-empty string of at most 256 characters`);
  }
  return {
    op,
    type,
    probability: number(`${where}.probability`, value.probability, 1, { min: 0, max: 1, integer: false }),
    after: number(`${where}.after`, value.after, 0, { min: 0, max: big, integer: true }),
    count: number(`${where}.count`, value.count, big, { min: 1, max: big, integer: true }),
    path: typeof value.path === 'string' ? value.path : null,
    offsetBytes: number(`${where}.offsetBytes`, value.offsetBytes, 0, { min: 0, max: big, integer: true }),
    lengthBytes: number(`${where}.lengthBytes`, value.lengthBytes, big, { min: 1, max: big, integer: true }),
    delayMs: number(`${where}.delayMs`, value.delayMs, type === 'latency' ? 10 : 0, { min: 0, max: 600_000, integer: false }),
    jitterMs: number(`${where}.jitterMs`, value.jitterMs, 0, { min: 0, max: 600_000, integer: false }),
    tornBytes: number(`${where}.tornBytes`, value.tornBytes, 512, { min: 0, max: big, integer: true }),
  };
}

/** Parse and check a fault config (the JSON text of a --fault-config file). */
export function parseFaultConfig(text: string): FaultConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    bad(`not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!isRecord(raw)) bad('the top level must be an object');
  checkKeys('config', raw, configKeys);
  const value: Fields<(typeof configKeys)[number]> = raw;
  const seed = number('seed', value.seed, 0, { min: 0, max: 0xffffffff, integer: true });
  if (value.loseUnsynced !== undefined && typeof value.loseUnsynced !== 'boolean') bad('loseUnsynced must be true or false');
  const points = value.crashAtPoints ?? [];
  if (!Array.isArray(points) || points.length > faultRulesMax || !points.every((p) => typeof p === 'string' && /^[a-z-]+:[a-z-]+$/.test(p))) {
    bad(`crashAtPoints must be at most ${faultRulesMax} names like "snapshot:committed"`);
  }
  const rules = value.rules ?? [];
  if (!Array.isArray(rules) || rules.length > faultRulesMax) bad(`rules must be a list of at most ${faultRulesMax}`);
  return {
    seed,
    loseUnsynced: value.loseUnsynced === true,
    crashAtPoints: points as string[],
    rules: rules.map((rule, i) => parseRule(`rules[${i}]`, rule)),
  };
}

/** Whether an operation on `path` over [offsetBytes, offsetBytes + lengthBytes) is one the rule is about. */
export function ruleMatches(rule: FaultRule, args: { op: FaultOp; path: string; offsetBytes?: number; lengthBytes?: number }): boolean {
  if (rule.op !== args.op) return false;
  if (rule.path !== null && !args.path.includes(rule.path)) return false;
  if (args.offsetBytes === undefined) return true;
  const end = args.offsetBytes + Math.max(1, args.lengthBytes ?? 0);
  return args.offsetBytes < rule.offsetBytes + rule.lengthBytes && end > rule.offsetBytes;
}
