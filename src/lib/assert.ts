// Assertions for broken invariants. An AssertionError is never caught except by a process's
// last-resort handler, which logs and exits so a supervisor restarts us on a known state.

export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

export function assert(condition: boolean, message?: string): asserts condition {
  if (!condition) throw new AssertionError(message ?? 'assertion failed');
}

/** For exhaustive switches over unions: the compiler proves this is unreachable. */
export function unreachable(value: never, what = 'value'): never {
  throw new AssertionError(`unexpected ${what}: ${String(value)}`);
}
