// Checking request bodies and action inputs against TypeBox schemas, with problems in the same
// `{ path, reason }` shape resource validation gives. Checkers are compiled once per schema.
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import type { ResourceProblem } from '../control/resources/resource-problem.ts';
import { fieldPath } from '../control/resources/validate-resource.ts';
import { ApiError } from './api-error.ts';

const problemsMax = 20;
const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();

function checkerFor(schema: TSchema): TypeCheck<TSchema> {
  let checker = compiled.get(schema);
  if (checker === undefined) {
    checker = TypeCompiler.Compile(schema);
    compiled.set(schema, checker);
  }
  return checker;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value) ?? typeof value;
  return `${typeof value} ${text.length > 40 ? `${text.slice(0, 40)}…` : text}`;
}

const wordings: Partial<Record<ValueErrorType, (error: ValueError) => string>> = {
  [ValueErrorType.ObjectAdditionalProperties]: () => 'unknown field',
  [ValueErrorType.ObjectRequiredProperty]: () => 'is required',
  [ValueErrorType.Object]: ({ value }) => `must be an object, not ${describe(value)}`,
  [ValueErrorType.String]: ({ value }) => `must be a string, not ${describe(value)}`,
  [ValueErrorType.Boolean]: ({ value }) => `must be true or false, not ${describe(value)}`,
  [ValueErrorType.Integer]: ({ value }) => `must be a whole number, not ${describe(value)}`,
  [ValueErrorType.IntegerMaximum]: ({ schema, value }) => `${describe(value)} is too large; at most ${String(schema['maximum'])}`,
  [ValueErrorType.IntegerMinimum]: ({ schema, value }) => `${describe(value)} is too small; at least ${String(schema['minimum'])}`,
  [ValueErrorType.StringMaxLength]: ({ schema, value }) => `is ${(value as string).length} characters; at most ${String(schema['maxLength'])} allowed`,
  [ValueErrorType.StringPattern]: ({ schema, value }) => `${describe(value)} does not match ${String(schema['pattern'])}`,
};

function reason(error: ValueError): string {
  return wordings[error.type]?.(error) ?? error.message;
}

/** Problems of `value` against `schema`, at most 20 (a hostile body must not yield megabytes). */
export function inputProblems(schema: TSchema, value: unknown): ResourceProblem[] {
  const checker = checkerFor(schema);
  if (checker.Check(value)) return [];
  const byPath = new Map<string, string>();
  for (const error of checker.Errors(value)) {
    if (byPath.size >= problemsMax) break;
    const path = fieldPath(error.path);
    if (!byPath.has(path)) byPath.set(path, reason(error));
  }
  return [...byPath].map(([path, why]) => ({ path, reason: why }));
}

/** The value typed by the schema, or an ApiError 'invalid' naming every problem. */
export function checkInput<T>(schema: TSchema, value: unknown, what: string): T {
  const problems = inputProblems(schema, value);
  if (problems.length > 0) throw ApiError.invalid(what, problems);
  return value as T;
}

/** A JSON body as a plain object: an absent body is `{}`; anything else that is not an object is 400. */
export function bodyObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || body === '') return {};
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError('bad_request', `the request body must be a JSON object, not ${describe(body)}`);
  }
  return body as Record<string, unknown>;
}
