// Labels a user gives (volume create `labels`, snapshotCreate `labels`) must be ones Kubernetes
// would accept, so the same resources can be CRDs: key `[prefix/]name` with a DNS-subdomain
// prefix of at most 253 characters and a name of at most 63 (alphanumerics, `-`, `_`, `.`,
// alphanumeric at both ends); value empty or like a name. A key such as `../x` is refused here
// rather than stored.
import type { ResourceProblem } from '../control/resources/resource-problem.ts';

const namePattern = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const prefixPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const nameLengthMax = 63;
const prefixLengthMax = 253;

function keyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > prefixLengthMax || !prefixPattern.test(prefix))) {
    return `key prefix ${JSON.stringify(prefix.slice(0, 80))} must be a DNS subdomain of at most ${prefixLengthMax} characters`;
  }
  if (name.length > nameLengthMax || !namePattern.test(name)) {
    return `key ${JSON.stringify(key.slice(0, 80))} must be [prefix/]name with a name of 1 to ${nameLengthMax} letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Problems with user-given labels; non-object values are left to the schema check. */
export function labelProblems(labels: unknown, path: string): ResourceProblem[] {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) return [];
  const problems: ResourceProblem[] = [];
  for (const [key, value] of Object.entries(labels)) {
    const why = keyProblem(key);
    if (why !== undefined) problems.push({ path: `${path}.${key.slice(0, 80)}`, reason: why });
    else if (typeof value === 'string' && value !== '' && (value.length > nameLengthMax || !namePattern.test(value))) {
      problems.push({ path: `${path}.${key}`, reason: `value must be empty or 1 to ${nameLengthMax} letters, digits, '-', '_' or '.', starting and ending with a letter or digit` });
    }
  }
  return problems;
}
