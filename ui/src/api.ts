// Calls to the Shorthorn API from the browser: the token from the login page goes in the
// Authorization header of every call; errors become ApiCallError with the API's `code` and
// `message`, so pages show the server's own sentence. The token lives in sessionStorage: it is
// gone when the tab closes and never sent anywhere but this origin.
import type { CollectionView, ResourceView } from '../../src/api/resource-view.ts';

const tokenKey = 'shorthorn-token';

export class ApiCallError extends Error {
  readonly status: number;
  readonly code: string;
  readonly problems: readonly { path: string; reason: string }[];
  constructor(status: number, code: string, message: string, problems: readonly { path: string; reason: string }[] = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.problems = problems;
  }
}

export function savedToken(): string | undefined {
  return sessionStorage.getItem(tokenKey) ?? undefined;
}

export function saveToken(token: string): void {
  sessionStorage.setItem(tokenKey, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(tokenKey);
}

/** Listeners told when a call comes back 401 (the token changed): the app shows the login page. */
const unauthorizedListeners = new Set<() => void>();
export function onUnauthorized(listener: () => void): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

export async function apiCall<T>(method: string, path: string, body?: unknown, token = savedToken()): Promise<T> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  } catch (error) {
    throw new ApiCallError(0, 'network', `Cannot reach the Shorthorn API: ${(error as Error).message}`);
  }
  const text = await response.text();
  let parsed: unknown = undefined;
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ApiCallError(response.status, 'bad_response', `The API answered ${method} ${path} with ${response.status} and a body that is not JSON`);
    }
  }
  if (!response.ok) {
    const error = (parsed ?? {}) as { code?: string; message?: string; problems?: { path: string; reason: string }[] };
    if (response.status === 401) for (const listener of unauthorizedListeners) listener();
    throw new ApiCallError(response.status, error.code ?? 'unknown', error.message ?? `${method} ${path} failed with ${response.status}`, error.problems ?? []);
  }
  return parsed as T;
}

/** A collection whose items the caller knows the type of. */
export type Collection<T> = Omit<CollectionView, 'data'> & { readonly data: readonly T[] };

export const getCollection = <T extends ResourceView = ResourceView>(path: string): Promise<Collection<T>> => apiCall<Collection<T>>('GET', path);

/** POST /v1/volumes/NAME?action=X */
export const volumeAction = <T = ResourceView>(volume: string, action: string, input: object = {}): Promise<T> =>
  apiCall<T>('POST', `/v1/volumes/${encodeURIComponent(volume)}?action=${action}`, input);

/** Check a token and get the stream cookie (EventSource cannot send the header). */
export async function logIn(token: string): Promise<void> {
  await apiCall('POST', '/v1/session', undefined, token);
  saveToken(token);
}

export async function logOut(): Promise<void> {
  try {
    await apiCall('DELETE', '/v1/session');
  } finally {
    forgetToken();
  }
}

export function errorText(error: unknown): string {
  if (error instanceof ApiCallError) {
    // The message often says the reason already; repeat only what it does not.
    const problems = error.problems.filter((p) => !error.message.includes(p.reason)).map((p) => `${p.path}: ${p.reason}`).join('; ');
    return problems === '' ? error.message : `${error.message} (${problems})`;
  }
  return error instanceof Error ? error.message : String(error);
}
