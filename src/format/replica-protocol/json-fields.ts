// Checked reads of JSON payloads from the wire. Each helper throws a FieldError naming the field;
// the decoders catch only FieldError at their boundary and return it as a value, so a hostile
// payload becomes an error reply, never an exception that escapes the codec.
import { labelCountMax, labelLengthMax, nameLengthMax } from '../../lib/limits.ts';

export class FieldError extends Error {
  override readonly name = 'FieldError';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** Parse a bounded JSON payload into an object. The caller has checked the length already. */
export function parseJsonObject(payload: Uint8Array, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    throw new FieldError(`${what} payload is not valid UTF-8`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw new FieldError(`${what} payload is not JSON: ${error.message}`);
  }
  return asObject(value, what);
}

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function asObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FieldError(`${what} must be an object`);
  }
  return value as Record<string, unknown>;
}

export function asArray(value: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(value)) throw new FieldError(`${what} must be an array`);
  if (value.length > max) throw new FieldError(`${what} has ${value.length} items; at most ${max}`);
  return value as unknown[];
}

export function asString(value: unknown, what: string, maxLength: number): string {
  if (typeof value !== 'string') throw new FieldError(`${what} must be a string`);
  if (value.length > maxLength) throw new FieldError(`${what} is ${value.length} characters; at most ${maxLength}`);
  return value;
}

export function asBoolean(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw new FieldError(`${what} must be a boolean`);
  return value;
}

/** A non-negative safe integer, at most `max`. */
export function asCount(value: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new FieldError(`${what} must be a non-negative integer`);
  }
  if (value > max) throw new FieldError(`${what} is ${value}; at most ${max}`);
  return value;
}

/** Names of volumes and snapshots: they become file names, so no separators, no leading dot. */
const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function isValidName(value: string): boolean {
  return value.length >= 1 && value.length <= nameLengthMax && namePattern.test(value);
}

export function asName(value: unknown, what: string): string {
  const text = asString(value, what, nameLengthMax);
  if (!isValidName(text)) {
    throw new FieldError(`${what} ${JSON.stringify(text)} is not a name (1-${nameLengthMax} of A-Z a-z 0-9 . _ -, not starting with . _ -)`);
  }
  return text;
}

/** A layer name: a snapshot name, or null for the writable head. */
export function asLayerName(value: unknown, what: string): string | null {
  return value === null ? null : asName(value, what);
}

export function asLabels(value: unknown, what: string): Record<string, string> {
  const object = asObject(value, what);
  const entries = Object.entries(object);
  if (entries.length > labelCountMax) throw new FieldError(`${what} has ${entries.length} labels; at most ${labelCountMax}`);
  const labels: Record<string, string> = {};
  for (const [key, entry] of entries) {
    if (key.length === 0 || key.length > labelLengthMax) throw new FieldError(`${what} key of length ${key.length}`);
    labels[key] = asString(entry, `${what}.${key}`, labelLengthMax);
  }
  return labels;
}

export function field(object: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}
