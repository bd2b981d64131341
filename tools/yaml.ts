// A small YAML emitter for generated manifests: block style, two-space indent, strings quoted
// (as JSON, which YAML reads) whenever a plain scalar could be misread. Only what JSON can hold.

const plainString = /^[A-Za-z_/][A-Za-z0-9_ ./()-]*$/;
const plainKey = /^[A-Za-z_][A-Za-z0-9_./-]*$/;
/** Words YAML 1.1 readers take for booleans or null. */
const ambiguous = new Set(['y', 'n', 'yes', 'no', 'on', 'off', 'true', 'false', 'null', '~']);

function scalar(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`cannot write ${value} as YAML`);
    return String(value);
  }
  if (typeof value === 'string') {
    return plainString.test(value) && !ambiguous.has(value.toLowerCase()) && !value.endsWith(' ') ? value : JSON.stringify(value);
  }
  throw new TypeError(`cannot write a ${typeof value} as YAML`);
}

function key(name: string): string {
  return plainKey.test(name) && !ambiguous.has(name.toLowerCase()) ? name : JSON.stringify(name);
}

function isCollection(value: unknown): value is object {
  return typeof value === 'object' && value !== null && (Array.isArray(value) ? value.length > 0 : Object.keys(value).length > 0);
}

function inline(value: unknown): string {
  if (Array.isArray(value)) return '[]';
  if (typeof value === 'object' && value !== null) return '{}';
  return scalar(value);
}

function lines(value: unknown, indent: string, out: string[]): void {
  if (Array.isArray(value)) {
    for (const item of value) {
      if (isCollection(item) && !Array.isArray(item)) {
        const nested: string[] = [];
        lines(item, `${indent}  `, nested);
        const first = nested[0] ?? '';
        out.push(`${indent}- ${first.slice(indent.length + 2)}`, ...nested.slice(1));
      } else if (isCollection(item)) {
        out.push(`${indent}-`);
        lines(item, `${indent}  `, out);
      } else {
        out.push(`${indent}- ${inline(item)}`);
      }
    }
    return;
  }
  for (const [name, item] of Object.entries(value as Record<string, unknown>)) {
    if (item === undefined) continue;
    if (isCollection(item)) {
      out.push(`${indent}${key(name)}:`);
      lines(item, Array.isArray(item) ? indent : `${indent}  `, out);
    } else {
      out.push(`${indent}${key(name)}: ${inline(item)}`);
    }
  }
}

/** One YAML document for a JSON-shaped value (an object at the top). */
export function toYaml(value: Readonly<Record<string, unknown>>): string {
  const out: string[] = [];
  lines(value, '', out);
  return `${out.join('\n')}\n`;
}
