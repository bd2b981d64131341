// Renders the generated parts of docs/resources.md (the kinds with their fields, and the settings
// table) from the definitions, and rewrites them between their markers. Run after changing a
// schema or a setting: `npx tsc -p tsconfig.json && node dist/tools/resource-docs.js`.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { TSchema } from '@sinclair/typebox';
import { kindNames, resourceKinds } from '../src/control/resources/resource-kinds.ts';
import { settingDefinitions } from '../src/control/settings/setting-definitions.ts';
import { settingCategories } from '../src/control/settings/setting-definition.ts';
import { settingNames } from '../src/control/settings/settings.ts';
import { repoRoot } from './tidy.ts';

export const resourceDocsPath = 'docs/resources.md';

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('\n', ' ');
}

/** A short type for a table: `string`, `int (1–10)`, `rwo \| rwx`, `map of …`, `list of …`. */
function typeOf(schema: TSchema): string {
  const anyOf = schema['anyOf'] as TSchema[] | undefined;
  if (anyOf !== undefined) return anyOf.map((option) => `\`${String(option['const'])}\``).join(' \\| ');
  if (schema['const'] !== undefined) return `\`${String(schema['const'])}\``;
  const bounds = (low: number | undefined, high: number | undefined) =>
    low === undefined && high === undefined ? '' : ` (${low === undefined ? '' : String(low)}–${high === undefined ? '' : String(high)})`;
  switch (schema['type']) {
    case 'integer': {
      const minimum = schema['minimum'] as number | undefined;
      const maximum = schema['maximum'] as number | undefined;
      const unit = schema['unit'] === undefined ? '' : ` ${String(schema['unit'])}`;
      return `int${unit}${bounds(minimum, maximum === Number.MAX_SAFE_INTEGER ? undefined : maximum)}`;
    }
    case 'boolean':
      return 'bool';
    case 'string':
      return schema['pattern'] === undefined ? 'string' : 'string (pattern)';
    case 'array':
      return `list of ${typeOf(schema['items'] as TSchema)}`;
    case 'object': {
      const patterns = schema['patternProperties'] as Record<string, TSchema> | undefined;
      const value = patterns === undefined ? undefined : Object.values(patterns)[0];
      if (value !== undefined) return `map of ${value['type'] === 'object' ? 'object' : typeOf(value)}`;
      return 'object';
    }
    default:
      return String(schema['type']);
  }
}

function fieldRows(schema: TSchema, prefix: string): string[] {
  const required = new Set((schema['required'] as string[] | undefined) ?? []);
  return Object.entries((schema['properties'] ?? {}) as Record<string, TSchema>).map(([name, field]) => {
    const defaultText = field['default'] === undefined ? '' : `\`${JSON.stringify(field['default'])}\``;
    const requiredText = required.has(name) ? 'yes' : '';
    return `| \`${prefix}.${name}\` | ${typeOf(field)} | ${requiredText} | ${defaultText} | ${cell(String(field['description'] ?? ''))} |`;
  });
}

export function renderKinds(): string {
  const out = ['| kind | plural | short | what it is |', '| --- | --- | --- | --- |'];
  for (const kind of kindNames) {
    const definition = resourceKinds[kind];
    out.push(`| [${kind}](#${kind.toLowerCase()}) | ${definition.plural} | ${definition.shortNames.join(', ')} | ${cell(definition.description)} |`);
  }
  for (const kind of kindNames) {
    const definition = resourceKinds[kind];
    out.push('', `### ${kind}`, '', cell(definition.description), '');
    out.push('| field | type | required | default | meaning |', '| --- | --- | --- | --- | --- |');
    out.push(...fieldRows(definition.specSchema, 'spec'), ...fieldRows(definition.statusSchema, 'status'));
  }
  return out.join('\n');
}

export function renderSettings(): string {
  const out: string[] = [];
  for (const category of settingCategories) {
    out.push(`#### ${category}`, '', '| setting | type | default | allowed | meaning |', '| --- | --- | --- | --- | --- |');
    for (const name of settingNames) {
      const definition = settingDefinitions[name];
      if (definition.category !== category) continue;
      let allowed = '';
      if (definition.type === 'int') allowed = `${definition.min}–${definition.max} ${definition.unit}`;
      if (definition.type === 'enum') allowed = definition.options.map((option) => `\`${option}\``).join(', ');
      if (definition.type === 'bool') allowed = '`true`, `false`';
      const defaultText = definition.default === '' ? '(empty)' : `\`${String(definition.default)}\``;
      const readOnly = definition.readOnly === true ? ' (read-only)' : '';
      out.push(`| \`${name}\` | ${definition.type} | ${defaultText} | ${allowed} | ${cell(definition.description)}${readOnly} |`);
    }
    out.push('');
  }
  return out.join('\n').trimEnd();
}

/** Replace the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` with `body`. */
export function replaceSection(text: string, name: string, body: string): string {
  const begin = `<!-- ${name}:begin (generated by tools/resource-docs.ts) -->`;
  const end = `<!-- ${name}:end -->`;
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${resourceDocsPath} lacks the markers ${begin} … ${end}`);
  return `${text.slice(0, from + begin.length)}\n${body}\n${text.slice(to)}`;
}

export function renderResourceDocs(current: string): string {
  return replaceSection(replaceSection(current, 'kinds', renderKinds()), 'settings', renderSettings());
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const path = join(repoRoot(dirname(fileURLToPath(import.meta.url))), resourceDocsPath);
  writeFileSync(path, renderResourceDocs(readFileSync(path, 'utf8')));
  console.log(`updated ${path}`);
}
