// The API's bearer token: made once, when a data directory is first used, and kept in it with
// mode 0600 so only the owner (root on a node) can read it. Compared in constant time.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ShorthornError } from '../lib/errors.ts';

export const apiTokenFileName = 'api-token';

export class ApiTokenError extends ShorthornError<'token_unreadable' | 'token_malformed'> {}

const tokenPattern = /^[0-9a-f]{64}$/;

/** Read DATA/api-token, creating it (exclusively, mode 0600) when absent. */
export async function ensureApiToken(dataDir: string): Promise<string> {
  const path = join(dataDir, apiTokenFileName);
  const token = randomBytes(32).toString('hex');
  try {
    // 'wx': only the first process to get here writes; a concurrent second one reads its token.
    const handle = await open(path, 'wx', 0o600);
    try {
      await handle.writeFile(`${token}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return token;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return readApiToken(path);
}

/** Read a token file (the CLI's --token-file). */
export async function readApiToken(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ApiTokenError('token_unreadable', `Cannot read the API token from ${path}: ${(error as Error).message}`, { cause: error });
  }
  const token = text.trim();
  if (!tokenPattern.test(token)) {
    throw new ApiTokenError('token_malformed', `${path} does not hold an API token (64 hex characters); delete it and restart the API to make a new one`);
  }
  return token;
}

/** Constant-time comparison of a presented token with the real one. */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
