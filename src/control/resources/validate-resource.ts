// validateResource(kind, value): the typed resource, or every problem with a field path and a
// reason in plain words. The schema check is TypeBox's compiled checker; its errors are turned
// into sentences here, then the kind's own cross-field rules run on schema-valid values.
import { type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { ShorthornError } from '../../lib/errors.ts';
import { timestampPattern } from './common-schemas.ts';
import { nameProblem, resourceNamePattern, type Resource } from './object-meta.ts';
import { formatProblems, type ResourceProblem } from './resource-problem.ts';
import { isKindName, kindNames, resourceKinds, resourceSchema, type KindDefinition, type KindName, type ResourceByKind } from './resource-kinds.ts';

/** More problems than this are summarised; a hostile body must not produce a megabyte of errors. */
const problemsMax = 20;

export type ValidationResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problems: ResourceProblem[] };

export class ResourceValidationError extends ShorthornError<'invalid_resource'> {
  readonly problems: readonly ResourceProblem[];
  constructor(kind: string, problems: readonly ResourceProblem[]) {
    super('invalid_resource', `invalid ${kind}: ${formatProblems(problems)}`);
    this.problems = problems;
  }
}

const compiled = new Map<KindName, TypeCheck<TSchema>>();

function checkerFor(kind: KindName): TypeCheck<TSchema> {
  let checker = compiled.get(kind);
  if (checker === undefined) {
    checker = TypeCompiler.Compile(resourceSchema(kind));
    compiled.set(kind, checker);
  }
  return checker;
}

export function validateResource<K extends KindName>(kind: K, value: unknown): ValidationResult<ResourceByKind[K]>;
export function validateResource(kind: string, value: unknown): ValidationResult<Resource>;
export function validateResource(kind: string, value: unknown): ValidationResult<Resource> {
  if (!isKindName(kind)) {
    return { ok: false, problems: [{ path: 'kind', reason: `unknown kind ${show(kind)}; known kinds are ${kindNames.join(', ')}` }] };
  }
  const checker = checkerFor(kind);
  if (!checker.Check(value)) return { ok: false, problems: schemaProblems(checker, value) };
  const resource = value as Resource;
  const definition = resourceKinds[kind] as unknown as KindDefinition<Resource>;
  const problems = definition.problems?.(resource) ?? [];
  return problems.length === 0 ? { ok: true, value: resource } : { ok: false, problems };
}

/** Like validateResource, but throws ResourceValidationError (code 'invalid_resource'). */
export function assertValidResource<K extends KindName>(kind: K, value: unknown): ResourceByKind[K] {
  const result = validateResource(kind, value);
  if (!result.ok) throw new ResourceValidationError(kind, result.problems);
  return result.value;
}

/**
 * A copy of `value` with schema defaults filled in where fields are missing (frontend blockdev,
 * accessMode rwo, empty selectors, ...). Does not validate; call validateResource afterwards.
 */
export function withDefaults<K extends KindName>(kind: K, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  return Value.Default(resourceSchema(kind), structuredClone(value));
}

function schemaProblems(checker: TypeCheck<TSchema>, value: unknown): ResourceProblem[] {
  const byPath = new Map<string, string>();
  let extra = 0;
  for (const error of checker.Errors(value)) {
    const path = fieldPath(error.path);
    if (byPath.has(path)) continue; // the first reason for a field is the useful one
    if (byPath.size >= problemsMax) {
      extra++;
      if (extra > 1000) break;
      continue;
    }
    byPath.set(path, reasonFor(error));
  }
  const problems = [...byPath].map(([path, reason]) => ({ path, reason }));
  if (extra > 0) problems.push({ path: '', reason: `and ${extra}${extra > 1000 ? '+' : ''} more problems` });
  return problems;
}

/** `/spec/disks/d1/tags/0` → `spec.disks.d1.tags[0]`. */
export function fieldPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (/^[0-9]+$/.test(segment)) out += `[${segment}]`;
    else if (/^[A-Za-z_][-A-Za-z0-9_]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

function show(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return `${typeof value} ${show(value)}`;
}

const tib = 1024 ** 4;
const gib = 1024 ** 3;
function withUnit(schema: TSchema, n: number): string {
  if (schema['unit'] !== 'bytes') return schema['unit'] === undefined ? String(n) : `${n} ${String(schema['unit'])}`;
  if (n >= tib && n % tib === 0) return `${n} bytes (${n / tib} TiB)`;
  if (n >= gib && n % gib === 0) return `${n} bytes (${n / gib} GiB)`;
  return `${n} bytes`;
}

function patternReason(schema: TSchema, value: unknown): string {
  const pattern = schema['pattern'] as string | undefined;
  if (pattern === resourceNamePattern && typeof value === 'string') return nameProblem(value) ?? 'is not a valid name';
  if (pattern === timestampPattern) return `${show(value)} is not an RFC 3339 time such as 2024-05-01T12:00:00Z`;
  return `${show(value)} does not match ${pattern ?? 'the expected form'}`;
}

function unionReason(schema: TSchema, value: unknown): string {
  const options = (schema['anyOf'] as TSchema[] | undefined)?.map((option) => option['const'] as unknown);
  if (options !== undefined && options.every((option) => typeof option === 'string')) {
    return `${show(value)} is not one of ${options.join(', ')}`;
  }
  return `${show(value)} is not an accepted value`;
}

function additionalPropertyReason(error: ValueError): string {
  const patterns = error.schema['patternProperties'] as object | undefined;
  if (patterns === undefined) return 'unknown field';
  // A map (disks, replicaModeMap, ...) whose key is refused, not an unknown field.
  const key = error.path.split('/').pop()?.replaceAll('~1', '/').replaceAll('~0', '~') ?? '';
  const pattern = Object.keys(patterns)[0];
  return pattern === resourceNamePattern ? `key: ${nameProblem(key) ?? 'not a valid name'}` : `key ${show(key)} does not match ${pattern ?? '?'}`;
}

type Wording = (schema: TSchema, value: unknown) => string;
const tooLarge: Wording = (schema, value) =>
  `${withUnit(schema, value as number)} is too large; at most ${withUnit(schema, schema['maximum'] as number)}`;
const tooSmall: Wording = (schema, value) =>
  `${withUnit(schema, value as number)} is too small; at least ${withUnit(schema, schema['minimum'] as number)}`;
const notMultiple: Wording = (schema, value) => `${String(value)} is not a multiple of ${String(schema['multipleOf'])}`;

/**
 * Sentences for the error types our schemas can produce. TypeBox has ~60 error types; any other
 * falls back to TypeBox's own message.
 */
const wordings: Partial<Record<ValueErrorType, Wording>> = {
  [ValueErrorType.ObjectRequiredProperty]: () => 'is required',
  [ValueErrorType.Object]: (_, value) => `must be an object, not ${typeName(value)}`,
  [ValueErrorType.ObjectMaxProperties]: (schema, value) =>
    `has ${Object.keys(value as object).length} entries; at most ${String(schema['maxProperties'])} allowed`,
  [ValueErrorType.Array]: (_, value) => `must be a list, not ${typeName(value)}`,
  [ValueErrorType.ArrayMaxItems]: (schema, value) => `has ${(value as unknown[]).length} items; at most ${String(schema['maxItems'])} allowed`,
  [ValueErrorType.ArrayMinItems]: (schema, value) => `has ${(value as unknown[]).length} items; at least ${String(schema['minItems'])} needed`,
  [ValueErrorType.String]: (_, value) => `must be a string, not ${typeName(value)}`,
  [ValueErrorType.StringMaxLength]: (schema, value) => `is ${(value as string).length} characters; at most ${String(schema['maxLength'])} allowed`,
  [ValueErrorType.StringMinLength]: (schema) =>
    schema['minLength'] === 1 ? 'must not be empty' : `must be at least ${String(schema['minLength'])} characters`,
  [ValueErrorType.StringPattern]: patternReason,
  [ValueErrorType.Integer]: (_, value) =>
    typeof value === 'number' && Number.isFinite(value) ? `${value} is not a whole number` : `must be a whole number, not ${typeName(value)}`,
  [ValueErrorType.Number]: (_, value) => `must be a number, not ${typeName(value)}`,
  [ValueErrorType.IntegerMaximum]: tooLarge,
  [ValueErrorType.NumberMaximum]: tooLarge,
  [ValueErrorType.IntegerMinimum]: tooSmall,
  [ValueErrorType.NumberMinimum]: tooSmall,
  [ValueErrorType.IntegerMultipleOf]: notMultiple,
  [ValueErrorType.NumberMultipleOf]: notMultiple,
  [ValueErrorType.Boolean]: (_, value) => `must be true or false, not ${typeName(value)}`,
  [ValueErrorType.Literal]: (schema, value) => `must be ${show(schema['const'])}, not ${show(value)}`,
  [ValueErrorType.Union]: unionReason,
};

function reasonFor(error: ValueError): string {
  const { schema, value } = error;
  // Names get nameProblem's sentence whichever of length or pattern failed first.
  if (schema['pattern'] === resourceNamePattern && typeof value === 'string') {
    const problem = nameProblem(value);
    if (problem !== null) return problem;
  }
  if (error.type === ValueErrorType.ObjectAdditionalProperties) return additionalPropertyReason(error);
  return wordings[error.type]?.(schema, value) ?? error.message;
}
