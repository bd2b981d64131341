// Backup target credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINTS, AWS_REGION,
// VIRTUAL_HOSTED_STYLE, ...). The setting backup-target-credential-secret names a secret file
// `<secrets dir>/<name>` of KEY=VALUE lines (Longhorn names a Kubernetes Secret); it must be a
// regular file that neither group nor others can read (mode 0600 or stricter), or it is refused.
// With no secret named, the AWS_* variables of the process's environment are used. Values are
// never logged, put in an error message or returned by the API.
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ShorthornError } from '../../lib/errors.ts';

export type CredentialErrorCode = 'not_found' | 'insecure' | 'invalid';
export class CredentialError extends ShorthornError<CredentialErrorCode> {}

/** Keys passed on from the environment when no secret is named. */
export const credentialKeys = [
  'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINTS', 'AWS_REGION',
  'AWS_CERT', 'VIRTUAL_HOSTED_STYLE', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY',
] as const;

const secretFileSizeMax = 64 * 1024;
const secretNamePattern = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?\/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** KEY=VALUE lines; blank lines and `#` comments skipped. Pure. */
export function parseSecretText(text: string, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const at = line.indexOf('=');
    const key = at > 0 ? line.slice(0, at).trim() : '';
    // Only the line number: the line may hold a secret.
    if (!/^[A-Z][A-Z0-9_]{0,63}$/.test(key)) throw new CredentialError('invalid', `${what}: line ${i + 1} is not KEY=VALUE with an upper-case KEY`);
    out[key] = line.slice(at + 1).trim();
  }
  return out;
}

/** The file a secret name points at; refuses names that could leave the directory. */
export function secretPath(secretsDir: string, name: string): string {
  if (name.length > 253 || !secretNamePattern.test(name) || name.split(/[/.]/).includes('')) {
    throw new CredentialError('invalid', `secret name ${JSON.stringify(name.slice(0, 100))} is not a Kubernetes object name`);
  }
  return join(secretsDir, name);
}

export async function readSecretFile(path: string): Promise<Record<string, string>> {
  let info;
  try {
    info = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new CredentialError('not_found', `secret file ${path} does not exist`, { cause: error });
    throw error;
  }
  if (!info.isFile()) throw new CredentialError('insecure', `secret ${path} is not a regular file`);
  if ((info.mode & 0o077) !== 0) {
    throw new CredentialError('insecure', `secret ${path} has mode ${(info.mode & 0o777).toString(8)}: group and others must not read it (chmod 600)`);
  }
  if (info.size > secretFileSizeMax) throw new CredentialError('invalid', `secret ${path} is ${info.size} bytes; at most ${secretFileSizeMax}`);
  return parseSecretText(await readFile(path, 'utf8'), `secret ${path}`);
}

export interface CredentialSource {
  /** Where named secrets live; undefined: only the environment can be used. */
  readonly secretsDir: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The credentials for the backup-target-credential-secret value `secretName` ('' for none). */
export async function resolveCredentials(source: CredentialSource, secretName: string): Promise<Record<string, string>> {
  if (secretName === '') {
    const out: Record<string, string> = {};
    for (const key of credentialKeys) {
      const value = source.env[key];
      if (value !== undefined && value !== '') out[key] = value;
    }
    return out;
  }
  if (source.secretsDir === undefined) {
    throw new CredentialError('not_found', `backup-target-credential-secret names ${JSON.stringify(secretName)}, but this process has no secrets directory (--secrets-dir)`);
  }
  return readSecretFile(secretPath(source.secretsDir, secretName));
}
