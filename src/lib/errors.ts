// The base of every typed error at Shorthorn's edges. Callers branch on `code`, never on the
// message; each domain defines its own union of codes (see STYLE.md "Errors").

export class ShorthornError<Code extends string = string> extends Error {
  readonly code: Code;
  constructor(code: Code, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Error codes shared by several layers: I/O outcomes every block layer can report. */
export const IoErrorCode = {
  io: 'io',
  noSpace: 'no_space',
  outOfRange: 'out_of_range',
  invalidArgument: 'invalid_argument',
  closed: 'closed',
  timeout: 'timeout',
  notSupported: 'not_supported',
} as const;
export type IoErrorCode = (typeof IoErrorCode)[keyof typeof IoErrorCode];

export class IoError extends ShorthornError<IoErrorCode> {}

/** Narrow an unknown caught value to an Error without losing it. */
export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
