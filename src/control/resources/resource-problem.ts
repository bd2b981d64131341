// One reason a resource is refused: where (a field path such as `spec.numberOfReplicas`) and why,
// in plain words. Shared by the schema check and the per-kind rules.

export interface ResourceProblem {
  readonly path: string;
  readonly reason: string;
}

/** `path: reason; path: reason` — for error messages and logs. */
export function formatProblems(problems: readonly ResourceProblem[]): string {
  return problems.map((problem) => (problem.path === '' ? problem.reason : `${problem.path}: ${problem.reason}`)).join('; ');
}
