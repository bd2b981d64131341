// Reading and writing the JSON that Go's encoding/json makes of Longhorn's config structs: keys
// are the Go field names (matched case-insensitively on read, as Go does), int64 fields tagged
// `,string` are decimal strings, and string fields tagged `,string` are double encoded: a JSON
// string holding a quoted JSON string (`"CompressionMethod":"\"lz4\""`). Readers accept both the
// double-encoded and the plain form; writers write what Go writes. Every error names the field.
import { backupLabelCountMax, backupLabelLengthMax } from '../../lib/limits.ts';
import { BackupError, BackupErrorCode } from './backup-error.ts';

export type JsonObject = Readonly<Record<string, unknown>>;

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function fieldError(what: string, field: string, problem: string): BackupError {
  return new BackupError(BackupErrorCode.corrupt, `${what}: field ${field} ${problem}`);
}

/** Decode a whole config file; the caller has bounded its size before reading it. */
export function parseConfigObject(bytes: Uint8Array, what: string, maxBytes: number): JsonObject {
  if (bytes.length > maxBytes) {
    throw new BackupError(BackupErrorCode.tooLarge, `${what}: ${bytes.length} bytes is over the limit of ${maxBytes}`);
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    throw new BackupError(BackupErrorCode.corrupt, `${what}: not valid UTF-8`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw new BackupError(BackupErrorCode.corrupt, `${what}: not JSON (${error.message}); ${bytes.length} bytes`, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BackupError(BackupErrorCode.corrupt, `${what}: not a JSON object`);
  }
  return value as JsonObject;
}

/** The value of Go field `name`: an exact key first, then a case-insensitive match. */
export function goField(object: JsonObject, name: string): unknown {
  if (Object.hasOwn(object, name)) return object[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(object)) if (key.toLowerCase() === lower) return object[key];
  return undefined;
}

/** A plain Go string (absent or null reads as ""). */
export function readString(object: JsonObject, name: string, what: string): string {
  const value = goField(object, name);
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw fieldError(what, name, `must be a string, not ${typeof value}`);
  return value;
}

/** A Go string tagged `,string`: double encoded as Go writes it, or plain as a lenient writer might. */
export function readTaggedString(object: JsonObject, name: string, what: string): string {
  const value = readString(object, name, what);
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    try {
      const inner: unknown = JSON.parse(value);
      if (typeof inner === 'string') return inner;
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      throw fieldError(what, name, `is a badly quoted string: ${value.slice(0, 100)}`);
    }
  }
  return value;
}

/** What Go writes for a string field tagged `,string`. */
export function taggedString(value: string): string {
  return JSON.stringify(value);
}

/** A Go int64 tagged `,string` ("123"); a plain JSON number is accepted too. Absent reads as 0. */
export function readInt64(object: JsonObject, name: string, what: string): number {
  const value = goField(object, name);
  if (value === undefined || value === null) return 0;
  let parsed: number;
  if (typeof value === 'number') parsed = value;
  else if (typeof value === 'string' && /^-?[0-9]{1,20}$/.test(value)) parsed = Number(value);
  else throw fieldError(what, name, `must be an integer or a decimal string, not ${JSON.stringify(value).slice(0, 100)}`);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw fieldError(what, name, `must be a non-negative integer below 2^53, not ${String(value)}`);
  return parsed;
}

export function readBool(object: JsonObject, name: string, what: string): boolean {
  const value = goField(object, name);
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw fieldError(what, name, `must be true or false, not ${typeof value}`);
  return value;
}

/** A Go map[string]string (null reads as empty), bounded in count and length. */
export function readStringMap(object: JsonObject, name: string, what: string): Record<string, string> {
  const value = goField(object, name);
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw fieldError(what, name, 'must be an object of strings');
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > backupLabelCountMax) throw fieldError(what, name, `has ${entries.length} entries, over the limit of ${backupLabelCountMax}`);
  const out: Record<string, string> = {};
  for (const [key, entry] of entries) {
    if (typeof entry !== 'string') throw fieldError(what, `${name}.${key}`, 'must be a string');
    if (key.length > backupLabelLengthMax || entry.length > backupLabelLengthMax) {
      throw fieldError(what, `${name}.${key.slice(0, 100)}`, `is longer than ${backupLabelLengthMax} characters`);
    }
    out[key] = entry;
  }
  return out;
}

/** Go's RFC 3339 UTC time with whole seconds (time.Now().UTC().Format(time.RFC3339)). */
export function goTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** Milliseconds of an RFC 3339 time, or undefined if it is empty or not a time. */
export function parseGoTime(text: string): number | undefined {
  if (text === '') return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}
