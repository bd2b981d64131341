// The API's typed error: a code a script can branch on, an HTTP status, and a sentence saying
// what failed and what to do next. Store and setting errors are translated here, in one place.
import { ShorthornError } from '../lib/errors.ts';
import type { ResourceProblem } from '../control/resources/resource-problem.ts';
import { formatProblems } from '../control/resources/resource-problem.ts';
import { isStoreError, type StoreErrorCode } from '../control/store/resource-store.ts';

export const ApiErrorCode = {
  /** The request cannot be understood: not JSON, wrong query, unknown action. */
  badRequest: 'bad_request',
  /** A name in the URL or body is not a valid resource name. */
  invalidName: 'invalid_name',
  unauthorized: 'unauthorized',
  notFound: 'not_found',
  methodNotAllowed: 'method_not_allowed',
  /** The resource is in a state where this call cannot be done (attached elsewhere, detached, ...). */
  conflict: 'conflict',
  alreadyExists: 'already_exists',
  tooLarge: 'too_large',
  unsupportedMediaType: 'unsupported_media_type',
  /** The body is well-formed JSON but the values are refused; `problems` says which fields. */
  invalid: 'invalid',
  readOnly: 'read_only',
  unavailable: 'unavailable',
  internal: 'internal',
} as const;
export type ApiErrorCode = (typeof ApiErrorCode)[keyof typeof ApiErrorCode];

const statusByCode: Readonly<Record<ApiErrorCode, number>> = {
  bad_request: 400,
  invalid_name: 400,
  unauthorized: 401,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  already_exists: 409,
  too_large: 413,
  unsupported_media_type: 415,
  invalid: 422,
  read_only: 422,
  unavailable: 503,
  internal: 500,
};

export class ApiError extends ShorthornError<ApiErrorCode> {
  readonly status: number;
  readonly problems: readonly ResourceProblem[];
  constructor(code: ApiErrorCode, message: string, options: { cause?: unknown; problems?: readonly ResourceProblem[] } = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = statusByCode[code];
    this.problems = options.problems ?? [];
  }

  static invalid(what: string, problems: readonly ResourceProblem[]): ApiError {
    return new ApiError('invalid', `${what}: ${formatProblems(problems)}`, { problems });
  }
}

/** The JSON body of every error response: Longhorn's `{type, status, code, message}`, plus problems. */
export interface ApiErrorBody {
  readonly type: 'error';
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly problems?: readonly ResourceProblem[];
}

export function errorBody(error: ApiError): ApiErrorBody {
  const body = { type: 'error' as const, status: error.status, code: error.code, message: error.message };
  return error.problems.length === 0 ? body : { ...body, problems: error.problems };
}

const storeCodeMap: Readonly<Record<StoreErrorCode, ApiErrorCode>> = {
  not_found: 'not_found',
  already_exists: 'already_exists',
  conflict: 'conflict',
  invalid: 'invalid',
  gone: 'unavailable',
  lease_held: 'conflict',
  unavailable: 'unavailable',
  closed: 'unavailable',
};

/** An ApiError for anything a handler threw; unknown errors become 500 'internal'. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (isStoreError(error)) return new ApiError(storeCodeMap[error.code], error.message, { cause: error });
  return new ApiError('internal', 'internal error; the server log has the details', { cause: error });
}
